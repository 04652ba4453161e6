"""The checks on mail from outside: SPF, DKIM (each signature), DMARC, ARC, and the
verdict the ``[mailauth] dmarc_policy`` setting makes of them.

:class:`Checker` is the SMTP handler's seam: it never raises, and never waits longer
than its bound -- a DNS failure or a check cut short gives temperror, and the
message is accepted (RFC 7489 section 6.6.2: a temporary failure is no failure)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass, replace

import dkim
from prometheus_client import Counter, Histogram

from server.config import Config, ConfigError
from server.mailauth.checks import (
    ACCEPT,
    QUARANTINE,
    REJECT,
    ArcResult,
    DkimResult,
    DmarcResult,
    SpfResult,
    Verdict,
)
from server.mailauth.dmarc import check_dmarc
from server.mailauth.lookup import Lookup, make_resolver
from server.mailauth.message import header_fields
from server.mailauth.results import header, strip_ours
from server.mailauth.settings import MailauthSettings
from server.mailauth.spf import check_spf
from server.outbound.settings import OutboundSettings

log = logging.getLogger(__name__)
_DKIMPY_LOG = logging.getLogger(__name__ + ".dkimpy")  # dkimpy's own lines (ERROR for a
# failed signature: a result, not our error; filter it by name)

CHECKS = Counter(
    "fdbmail_mailauth_checks_total",
    "Inbound authentication checks by method (spf, dkim, dmarc, arc) and result "
    "(RFC 8601 words: pass, fail, none, temperror ...).",
    ("method", "result"),
)
ACTIONS = Counter("fdbmail_mailauth_actions_total",
                  "Inbound messages by what the checks made of them (accept, quarantine, "
                  "reject).", ("action",))
CHECK_SECONDS = Histogram(
    "fdbmail_mailauth_check_duration_seconds",
    "Time to run every check on one inbound message.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

MAX_SIGNATURES = 5      # DKIM signatures verified per message (more: not evaluated)
MIN_RSA_BITS = 1024     # RFC 8301 section 3.2


def check_dkim(lookup: Lookup, message: bytes) -> tuple[DkimResult, ...]:
    """Every DKIM-Signature (up to MAX_SIGNATURES), in order (RFC 6376 section 6)."""
    count = sum(1 for n, _ in header_fields(message) if n.strip().lower() == b"dkim-signature")
    out = []
    for idx in range(min(count, MAX_SIGNATURES)):
        d = dkim.DKIM(message, minkey=MIN_RSA_BITS, timeout=int(max(1, lookup.timeout)),
                      logger=_DKIMPY_LOG)
        key = _KeyLookup(lookup)
        try:
            ok = d.verify(idx=idx, dnsfunc=key)
            # dkimpy answers False for a DNS failure or a missing key as for a bad
            # signature: the lookup tells them apart (RFC 6376 section 6.1.2)
            if ok:
                result, reason = "pass", ""
            elif key.temporary:
                result, reason = "temperror", key.temporary
            elif key.missing:
                result, reason = "permerror", "no key for signature"
            else:
                result, reason = "fail", "signature did not verify"
        except dkim.DnsTimeoutError as e:
            result, reason = "temperror", str(e)
        except dkim.ValidationError as e:   # a changed body is a failed signature
            result = "fail" if "body hash mismatch" in str(e) else "permerror"
            reason = str(e)
        except dkim.DKIMException as e:     # no key, a bad tag ... (RFC 6376 6.1.1)
            result, reason = "permerror", str(e)
        except Exception as e:          # a library failure on odd input: not a pass
            result, reason = "permerror", type(e).__name__
        fields = d.signature_fields or {}
        out.append(DkimResult(result, _text(fields.get(b"d")), _text(fields.get(b"s")),
                              _text(fields.get(b"a")), reason))
    return tuple(out)


class _KeyLookup:
    """dkimpy's ``dnsfunc`` for one verification, remembering what went wrong."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.temporary = ""
        self.missing = False

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        try:
            found = self.lookup.dkim_txt(name, timeout)
        except dkim.DnsTimeoutError as e:
            self.temporary = str(e)
            raise
        self.missing = found is None
        return found


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")[:255]
    return ""


def check_arc(lookup: Lookup, message: bytes) -> ArcResult:
    """The ARC chain's validation status (RFC 8617 section 5.2), with dkimpy."""
    if not any(n.strip().lower() == b"arc-seal" for n, _ in header_fields(message)):
        return ArcResult("none")
    try:
        cv, _results, comment = dkim.arc_verify(message, dnsfunc=lookup.dkim_txt,
                                                timeout=int(max(1, lookup.timeout)))
    except dkim.DnsTimeoutError as e:
        return ArcResult("fail", f"temporary: {e}")
    except Exception as e:
        return ArcResult("fail", type(e).__name__)
    result = cv.decode() if isinstance(cv, bytes) else str(cv or "none")
    return ArcResult(result if result in ("none", "pass", "fail") else "fail",
                     "" if comment == "success" else str(comment or ""))


def decide(verdict: Verdict, mode: str) -> str:
    """What the DMARC result calls for under ``[mailauth] dmarc_policy``."""
    if verdict.dmarc.result != "fail" or mode == "report":
        return ACCEPT
    if verdict.dmarc.policy == "reject":
        return REJECT if mode == "honour" else QUARANTINE
    if verdict.dmarc.policy == "quarantine":
        return QUARANTINE
    return ACCEPT


@dataclass(frozen=True, slots=True)
class Checked:
    """What the handler stores: ``message`` with forged results removed, the
    ``header`` to prepend, and the ``verdict`` (None: a trusted client, not checked)."""

    message: bytes
    header: bytes
    verdict: Verdict | None

    @property
    def action(self) -> str:
        return ACCEPT if self.verdict is None else self.verdict.action


class Checker:
    def __init__(self, settings: MailauthSettings, resolver: str, authserv_id: str) -> None:
        self.settings = settings
        self.authserv_id = settings.authserv_id or authserv_id
        self.lookup = Lookup(make_resolver(resolver, settings.dns_timeout),
                             settings.dns_timeout)
        # the longest the checks may take: SPF's bound, then the DKIM, ARC and DMARC
        # lookups (each bounded; a few per signature)
        self.bound = settings.spf_timeout + settings.dns_timeout * (3 * MAX_SIGNATURES + 8)
        try:
            self.trusted = [ipaddress.ip_network(n, strict=False)
                            for n in settings.trusted_networks]
        except ValueError as e:
            raise ConfigError(f"[mailauth] trusted_networks: {e}") from None

    def is_trusted(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(_plain_ip(ip))
        except ValueError:
            return False
        return any(address in n for n in self.trusted)

    def _run(self, message: bytes, ip: str, helo: str, mail_from: str) -> Verdict:
        spf = check_spf(self.lookup, ip, mail_from, helo, self.settings.spf_timeout)
        signatures = check_dkim(self.lookup, message)
        dmarc = check_dmarc(self.lookup, message, spf, signatures)
        arc = check_arc(self.lookup, message)
        verdict = Verdict(spf, signatures, dmarc, arc)
        return replace(verdict, action=decide(verdict, self.settings.dmarc_policy))

    def _failed(self, mail_from: str, helo: str, reason: str) -> Verdict:
        domain = mail_from.rpartition("@")[2].lower() if mail_from else helo.lower()
        return Verdict(SpfResult("temperror", domain, helo, reason), (),
                       DmarcResult("temperror", reason=reason), ArcResult("none"))

    async def check(self, message: bytes, ip: str, helo: str, mail_from: str) -> Checked:
        """Never raises: a failure of the checks themselves is temperror (logged)."""
        ip = _plain_ip(ip)
        if self.is_trusted(ip):
            return Checked(strip_ours(message, [self.authserv_id]), b"", None)
        started = time.perf_counter()
        try:
            verdict = await asyncio.wait_for(
                asyncio.to_thread(self._run, message, ip, helo, mail_from), self.bound)
        except TimeoutError:
            verdict = self._failed(mail_from, helo, "checks timed out")
        except Exception:
            log.exception("mail authentication checks failed")
            verdict = self._failed(mail_from, helo, "checks failed")
        CHECK_SECONDS.observe(time.perf_counter() - started)
        CHECKS.labels("spf", verdict.spf.result).inc()
        for d in verdict.dkim or (DkimResult("none"),):
            CHECKS.labels("dkim", d.result).inc()
        CHECKS.labels("dmarc", verdict.dmarc.result).inc()
        CHECKS.labels("arc", verdict.arc.result).inc()
        ACTIONS.labels(verdict.action).inc()
        stripped = strip_ours(message, [self.authserv_id])
        return Checked(stripped, header(self.authserv_id, verdict), verdict)


def _plain_ip(ip: str) -> str:
    """An IPv4-mapped IPv6 address (a dual-stack listener's peer) as IPv4, which SPF's
    ip4 mechanisms match (RFC 7208 section 5.6)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


def inbound_checker(config: Config, hostname: str) -> Checker | None:
    """The checker of the MX listener, unless ``[mailauth] check_inbound`` is off; its
    DNS resolver is ``[outbound] resolver`` (one resolver setting for the node)."""
    settings = config.get(MailauthSettings)
    if not settings.check_inbound:
        return None
    return Checker(settings, config.get(OutboundSettings).resolver, hostname)
