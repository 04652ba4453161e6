"""MTA-STS (RFC 8461): whether a domain's mail must go over verified TLS to the MX
hosts its policy names.

- :func:`parse_record` reads the ``_mta-sts.<domain>`` TXT record (section 3.1),
  :func:`parse_policy` the policy text (section 3.2), :func:`mx_matches` an MX pattern
  (section 4.1); they do no I/O.
- :class:`PolicySource` finds a domain's policy: the TXT record through the outbound
  resolver, the policy from ``https://mta-sts.<domain>/.well-known/mta-sts.txt``
  (httpx; no redirects, a size cap, a timeout, ``text/plain`` only, the certificate
  verified against the system CA store or ``[outbound] tls_ca_file``), cached in the
  store for every node (:mod:`fdb_layers.mtasts`) until its ``max_age``.

The policy host's address comes from the same resolver as the MX hosts; the
connection goes to that address with the host name as SNI and for the certificate."""

from __future__ import annotations

import ipaddress
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpx
from prometheus_client import Counter

from fdb_layers.mail import Engine, transact
from fdb_layers.mtasts import CachedPolicy, get_policy, set_policy
from server.outbound.client import HopFailed
from server.outbound.routing import Hop
from server.outbound.settings import OutboundSettings

log = logging.getLogger(__name__)

POLICIES = Counter(
    "fdbmail_outbound_mta_sts_policy_total",
    "MTA-STS policy look-ups by result: none (no policy), cached, fetched, failed (no "
    "usable policy could be fetched and none was cached).",
    ("result",),
)
FAILURES = Counter(
    "fdbmail_outbound_mta_sts_failures_total",
    "Deliveries that did not meet a domain's MTA-STS policy, by the policy's mode "
    "(enforce: deferred; testing: delivered anyway) and reason (mx_mismatch, tls).",
    ("mode", "reason"),
)

ENFORCE, TESTING, NONE = "enforce", "testing", "none"
MAX_POLICY_BYTES = 65_536       # RFC 8461 section 3.3 suggests 64 KiB
MAX_MAX_AGE = 31_557_600        # RFC 8461 section 3.2
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
_MX_PATTERN = re.compile(r"(\*\.)?([A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*"
                         r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?")


class PolicyError(ValueError):
    """A TXT record or policy text that does not follow RFC 8461."""


@dataclass(frozen=True, slots=True)
class Policy:
    mode: str                       # enforce, testing or none
    mx: tuple[str, ...]             # patterns (RFC 8461 section 4.1), lower-case
    max_age: int

    def matches(self, host: str) -> bool:
        return any(mx_matches(p, host) for p in self.mx)


def parse_record(texts: list[str]) -> str | None:
    """The policy id of a domain's TXT records (RFC 8461 section 3.1), each record's
    strings already joined; None when no record starts with ``v=STSv1``.  More than one
    such record, or a bad one, is an error (the domain then has no usable record)."""
    found = [t for t in texts if re.match(r"v=STSv1\s*(;|$)", t)]
    if not found:
        return None
    if len(found) > 1:
        raise PolicyError("more than one STSv1 TXT record")
    fields: dict[str, str] = {}
    for part in found[0].split(";")[1:]:
        part = part.strip(" \t")
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not _FIELD_NAME.fullmatch(key):
            raise PolicyError(f"bad field {part[:40]!r}")
        fields.setdefault(key, value)
    policy_id = fields.get("id", "")
    if not _ID.fullmatch(policy_id):
        raise PolicyError("the record has no valid id")
    return policy_id


def parse_policy(text: str) -> Policy:
    """A policy (RFC 8461 section 3.2): ``key: value`` lines (CRLF or LF); the first of
    duplicated fields counts, except ``mx`` which may repeat; unknown fields are
    ignored."""
    fields: dict[str, str] = {}
    mx: list[str] = []
    for line in re.split(r"\r?\n", text):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(key):
            raise PolicyError(f"bad line {line[:60]!r}")
        value = value.strip(" \t")
        if key == "mx":
            if not _MX_PATTERN.fullmatch(value):
                raise PolicyError(f"bad mx pattern {value[:60]!r}")
            mx.append(value.lower().rstrip("."))
        else:
            fields.setdefault(key, value)
    if fields.get("version") != "STSv1":
        raise PolicyError("version is not STSv1")
    mode = fields.get("mode", "")
    if mode not in (ENFORCE, TESTING, NONE):
        raise PolicyError(f"bad mode {mode[:20]!r}")
    max_age = fields.get("max_age", "")
    if not (max_age.isascii() and max_age.isdigit() and len(max_age) <= 10
            and int(max_age) <= MAX_MAX_AGE):
        raise PolicyError("bad max_age")
    if mode != NONE and not mx:
        raise PolicyError("no mx in an enforce or testing policy")
    return Policy(mode, tuple(mx), int(max_age))


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 section 4.1: the host name itself, or ``*.`` and exactly one more
    leftmost label."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return host == pattern


def tls_context(settings: OutboundSettings) -> ssl.SSLContext:
    """Verifying context: the system CA store, or ``tls_ca_file``."""
    return ssl.create_default_context(cafile=settings.tls_ca_file or None)


class PolicySource:
    """Policies of destination domains, through the cache in the store."""

    def __init__(self, engine: Engine, settings: OutboundSettings,
                 resolver: dns.asyncresolver.Resolver,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.settings = settings
        self.resolver = resolver
        self.clock = clock
        self.context = tls_context(settings)

    async def policy(self, domain: str) -> Policy | None:
        """The policy to apply to ``domain`` now, None when there is none (RFC 8461
        section 5.1: a fresh cached policy stands while the TXT id is unchanged, and
        when the TXT record or the fetch fails)."""
        domain = domain.lower().rstrip(".")
        now = self.clock()
        cached = await transact(self.engine, get_policy, domain)
        if cached is not None and not cached.fresh(now):
            cached = None
        try:
            policy_id = await self._record(domain)
        except (PolicyError, dns.exception.DNSException) as e:
            log.info("MTA-STS record of %s unusable: %s", domain, e)
            policy_id = None
        if policy_id is None or (cached is not None and cached.policy_id == policy_id):
            POLICIES.labels("cached" if cached else "none").inc()
            return self._parsed(cached)
        try:
            text = await self._fetch(domain)
            policy = parse_policy(text)
        except (PolicyError, httpx.HTTPError, ssl.SSLError, OSError, _FetchError) as e:
            log.warning("MTA-STS policy of %s not fetched: %s", domain, e)
            POLICIES.labels("cached" if cached else "failed").inc()
            return self._parsed(cached)
        await transact(self.engine, set_policy, domain,
                       CachedPolicy(policy_id, text, now, policy.max_age))
        POLICIES.labels("fetched").inc()
        return policy

    @staticmethod
    def _parsed(cached: CachedPolicy | None) -> Policy | None:
        return None if cached is None else parse_policy(cached.text)

    async def _record(self, domain: str) -> str | None:
        try:
            answer = await self.resolver.resolve(f"_mta-sts.{domain}", "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        texts = [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        return parse_record(texts)

    async def _fetch(self, domain: str) -> str:
        """The policy text (RFC 8461 section 3.3): HTTPS GET, 200 only (no redirects),
        ``text/plain``, at most :data:`MAX_POLICY_BYTES`."""
        host = f"mta-sts.{domain}"
        address = await self._address(host)
        literal = f"[{address}]" if ":" in address else address
        url = f"https://{literal}:{self.settings.mta_sts_port}/.well-known/mta-sts.txt"
        timeout = self.settings.mta_sts_timeout
        async with httpx.AsyncClient(verify=self.context, follow_redirects=False,
                                     timeout=timeout, trust_env=False) as client:
            async with client.stream("GET", url, headers={"Host": host},
                                     extensions={"sni_hostname": host}) as response:
                if response.status_code != 200:
                    raise _FetchError(f"HTTP status {response.status_code}")
                ctype = response.headers.get("content-type", "")
                if ctype.split(";")[0].strip().lower() != "text/plain":
                    raise _FetchError(f"content type {ctype[:60]!r} is not text/plain")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_POLICY_BYTES:
                        raise _FetchError(f"policy longer than {MAX_POLICY_BYTES} octets")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise _FetchError("policy is not UTF-8") from None

    async def _address(self, host: str) -> str:
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(host, rdtype)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException as e:
                raise _FetchError(f"address of {host}: {type(e).__name__}") from None
            for r in answer:
                return str(ipaddress.ip_address(str(r)))
        raise _FetchError(f"{host} has no address")


class _FetchError(Exception):
    pass


Attempt = Callable[[Hop, "ssl.SSLContext | None"], Awaitable[dict[str, str]]]


async def send_under_policy(domain: str, policy: Policy | None, context: ssl.SSLContext,
                            hops: list[Hop], attempt: Attempt) -> dict[str, str]:
    """Try ``hops`` in turn as ``policy`` says (RFC 8461 section 5): enforce: only the
    MX hosts it names, each over TLS verified with ``context`` (else the next host; a
    temporary failure when none took it); testing: every host, a failed check logged
    and counted, then the host is tried again without it.  Each recipient's reply, or
    :class:`HopFailed` from the last host tried."""
    if policy is not None and policy.mode == NONE:
        policy = None
    if policy is not None:
        matching = [h for h in hops if policy.matches(h.name)]
        if len(matching) < len(hops):
            FAILURES.labels(policy.mode, "mx_mismatch").inc()
            log.warning("MTA-STS (%s) of %s: MX hosts %s not in its policy", policy.mode,
                        domain, ", ".join(h.name for h in hops if h not in matching))
        if policy.mode == ENFORCE:
            hops = matching
            if not hops:
                raise HopFailed(f"451 4.7.5 no MX host of {domain} matches its MTA-STS "
                                "policy", tls=True)
    last = HopFailed("451 4.4.1 no next hop")
    for hop in hops:        # RFC 5321 section 5.1: the next MX on failure
        checked = policy is not None and policy.matches(hop.name)
        try:
            return await attempt(hop, context if checked else None)
        except HopFailed as e:
            if e.permanent:
                raise
            last = e
            if not (e.tls and policy is not None):
                continue
            FAILURES.labels(policy.mode, "tls").inc()
            log.warning("MTA-STS (%s) of %s: %s", policy.mode, domain, e.reply)
        if policy is not None and policy.mode == TESTING:
            try:
                return await attempt(hop, None)
            except HopFailed as e:
                if e.permanent:
                    raise
                last = e
    raise last
