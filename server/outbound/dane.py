"""DANE for SMTP (RFC 7672): TLSA records of MX hosts, trusted only when the resolver
says they are DNSSEC-validated (the AD bit of ``[outbound] resolver``, which must be a
validating resolver on a trusted path, e.g. unbound on loopback).

- :meth:`Dane.lookup` finds the usable TLSA records of ``_25._tcp.<mx host>`` when the
  domain's MX RRset and the TLSA RRset are secure (RFC 7672 section 2.2); a lookup that
  fails (SERVFAIL: bogus data) is a temporary failure for that host.
- :func:`check_chain` matches the server's certificate chain against them (RFC 7672
  section 3.1): DANE-EE(3), the leaf's full certificate or SPKI, any name and dates;
  DANE-TA(2), a certificate of the chain that matches is the trust anchor, the chain
  from the leaf to it is verified for the MX host name; matching types exact(0),
  SHA-256(1), SHA-512(2).  Other usages are unusable: with only those, TLS is still
  required but not authenticated (RFC 7672 section 2.2)."""

from __future__ import annotations

import datetime
import hashlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.resolver
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from prometheus_client import Counter

from server.outbound.client import HopFailed
from server.outbound.routing import Hop

log = logging.getLogger(__name__)

DANE_RESULTS = Counter(
    "fdbmail_outbound_dane_total",
    "DANE checks of MX hosts by result: verified, unauthenticated (only unusable TLSA "
    "records: TLS required), mismatch (no TLSA record matched: not delivered), "
    "lookup_failed (TLSA look-up failed: not delivered).",
    ("result",),
)

DANE_TA, DANE_EE = 2, 3
_ENCODING_DER = 2       # _ssl.ENCODING_DER (public as ssl.ENCODING_DER only later)


class DaneLookupError(Exception):
    """The TLSA look-up failed (not: there is none): the host gets no mail now."""


@dataclass(frozen=True, slots=True)
class Tlsa:
    usage: int
    selector: int
    mtype: int
    data: bytes


@dataclass(frozen=True, slots=True)
class HostTlsa:
    """The secure TLSA RRset of one MX host: ``usable`` records (may be empty: TLS
    is still required)."""

    host: str
    usable: tuple[Tlsa, ...]


def _digest(mtype: int, data: bytes) -> bytes | None:
    if mtype == 0:
        return data
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return None


def _selected(cert: x509.Certificate, selector: int) -> bytes:
    if selector == 0:
        return cert.public_bytes(serialization.Encoding.DER)
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def _matches(record: Tlsa, cert: x509.Certificate) -> bool:
    return _digest(record.mtype, _selected(cert, record.selector)) == record.data


def check_chain(tlsa: HostTlsa, chain_der: list[bytes]) -> str | None:
    """None when the chain (leaf first) is authenticated by ``tlsa``'s usable records,
    else why not."""
    if not tlsa.usable:
        return None
    if not chain_der:
        return "no certificate"
    chain = [x509.load_der_x509_certificate(c) for c in chain_der]
    leaf = chain[0]
    for record in tlsa.usable:
        if record.usage == DANE_EE and _matches(record, leaf):
            return None     # RFC 7672 section 3.1.1: no name or date checks
    for record in tlsa.usable:
        if record.usage != DANE_TA:
            continue
        for anchor in chain[1:] or chain:
            if not _matches(record, anchor):
                continue
            try:        # RFC 7672 section 3.1.2 and 3.2.2: the chain, for the MX name
                PolicyBuilder().store(Store([anchor])).time(
                    datetime.datetime.now(datetime.UTC)).build_server_verifier(
                    x509.DNSName(tlsa.host)).verify(leaf, chain[1:])
                return None
            except (VerificationError, ValueError) as e:
                log.info("DANE-TA chain of %s not valid: %s", tlsa.host, e)
    return f"no TLSA record of {tlsa.host} matches its certificate"


def peer_chain(ssl_object: ssl.SSLObject) -> list[bytes]:
    """The certificates the server sent, leaf first.  Python 3.11 has no public API
    for the chain (3.13's ``get_unverified_chain``): the C object's method is used
    where it exists, else the leaf alone (DANE-EE still works)."""
    inner = getattr(ssl_object, "_sslobj", None)
    get_chain = getattr(inner, "get_unverified_chain", None)
    if get_chain is not None:
        chain = get_chain() or []
        return [c.public_bytes(_ENCODING_DER) for c in chain]
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def unverified_context() -> ssl.SSLContext:
    """TLS without the CA store (DANE authenticates instead, after the handshake)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Dane:
    """TLSA look-ups through the outbound resolver, asking for the AD bit."""

    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self.resolver = resolver
        self.resolver.flags = dns.flags.RD | dns.flags.AD      # RFC 6840 section 5.7

    async def _secure(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        """The answer when validated (AD), None when there is none or it is insecure."""
        try:
            answer = await self.resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return None
        if answer.response is None or not answer.response.flags & dns.flags.AD:
            return None
        return answer if answer.rrset is not None else None

    async def secure_mx(self, domain: str) -> bool:
        """Whether ``domain``'s MX RRset is DNSSEC-validated (RFC 7672 section 2.2.1)."""
        try:
            return await self._secure(domain, "MX") is not None
        except dns.exception.DNSException:
            return False

    async def lookup(self, host: str) -> HostTlsa | None:
        """The secure TLSA RRset of MX host ``host``, None when it has none (or it is
        insecure); :class:`DaneLookupError` when the look-up fails."""
        try:
            answer = await self._secure(f"_25._tcp.{host}", "TLSA")
        except dns.exception.DNSException as e:
            raise DaneLookupError(f"TLSA look-up for {host} failed: "
                                  f"{type(e).__name__}") from None
        if answer is None or answer.rrset is None:
            return None
        usable = tuple(Tlsa(r.usage, r.selector, r.mtype, bytes(r.cert)) for r in answer.rrset
                       if r.usage in (DANE_TA, DANE_EE) and r.selector in (0, 1)
                       and r.mtype in (0, 1, 2))
        return HostTlsa(host, usable)


def checker(tlsa: HostTlsa) -> Callable[[ssl.SSLObject], str | None]:
    """``check_peer`` for :func:`server.outbound.client.send`, counting outcomes."""

    def check(ssl_object: ssl.SSLObject) -> str | None:
        try:
            refused = check_chain(tlsa, peer_chain(ssl_object))
        except Exception as e:      # a certificate cryptography cannot read
            refused = f"certificate of {tlsa.host} unreadable: {type(e).__name__}"
        DANE_RESULTS.labels("mismatch" if refused else
                            "verified" if tlsa.usable else "unauthenticated").inc()
        return refused

    return check


Attempt = Callable[[Hop, "ssl.SSLContext | None", "Callable[[ssl.SSLObject], str | None] | None"],
                   Awaitable[dict[str, str]]]


async def send_with_dane(dane: Dane, domain: str, hops: list[Hop],
                         attempt: Attempt) -> dict[str, str] | None:
    """Try ``hops`` in turn under DANE (RFC 7672): a host with secure TLSA records only
    over TLS its records authenticate, one without as usual, one whose look-up failed
    not at all.  None when the MX RRset is insecure or no host has TLSA records (DANE
    does not apply; MTA-STS may).  Each recipient's reply, or :class:`HopFailed` from
    the last host tried."""
    if not await dane.secure_mx(domain):
        return None
    found: list[HostTlsa | DaneLookupError | None] = []
    for hop in hops:
        try:
            found.append(await dane.lookup(hop.name))
        except DaneLookupError as e:
            found.append(e)
    if all(f is None for f in found):
        return None
    last = HopFailed("451 4.4.1 no next hop")
    for hop, tlsa in zip(hops, found, strict=True):     # RFC 5321 section 5.1
        if isinstance(tlsa, DaneLookupError):
            DANE_RESULTS.labels("lookup_failed").inc()
            log.warning("DANE: %s", tlsa)
            last = HopFailed(f"451 4.7.5 {tlsa}", tls=True)
            continue
        try:
            if tlsa is None:
                return await attempt(hop, None, None)
            return await attempt(hop, unverified_context(), checker(tlsa))
        except HopFailed as e:
            if e.permanent:
                raise
            if e.tls:
                log.warning("DANE of %s: %s", domain, e.reply)
            last = e
    raise last
