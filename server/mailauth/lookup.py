"""DNS for the checks: one dnspython resolver (``[outbound] resolver``, the same the
delivery workers use), every lookup bounded by ``[mailauth] dns_timeout``.  The
libraries (dkimpy, pyspf) are synchronous and take a lookup function:
the checks run in a thread (:mod:`.verify`), and a DNS failure becomes
:class:`DnsTempError` -- temperror in the results, never a lost message."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import spf

from server.outbound.routing import parse_host_port

MAX_TXT = 4096          # octets of TXT text kept per name (a DKIM key is < 1 KB)


class DnsTempError(Exception):
    """A lookup that timed out or failed (SERVFAIL, refused): try again later."""


def make_resolver(address: str, timeout: float) -> dns.resolver.Resolver:
    """``address``: host:port, or empty for the system's resolv.conf."""
    if address:
        host, port = parse_host_port(address, 53)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout
    resolver.timeout = timeout
    return resolver


class Lookup:
    def __init__(self, resolver: dns.resolver.Resolver, timeout: float) -> None:
        self.resolver = resolver
        self.timeout = timeout

    def query(self, name: str, rdtype: str,
              timeout: float | None = None) -> dns.resolver.Answer | None:
        """The answer; None for NXDOMAIN or no record of the type."""
        lifetime = min(self.timeout, timeout) if timeout else self.timeout
        try:
            return self.resolver.resolve(name, rdtype, lifetime=lifetime, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except (dns.exception.Timeout, dns.resolver.NoNameservers,
                dns.resolver.LifetimeTimeout) as e:
            raise DnsTempError(f"DNS {rdtype} {name}: {type(e).__name__}") from None
        except dns.exception.DNSException as e:     # a bad name: as if not there
            if isinstance(e, (dns.name.LabelTooLong, dns.name.NameTooLong,
                              dns.name.EmptyLabel)):
                return None
            raise DnsTempError(f"DNS {rdtype} {name}: {type(e).__name__}") from None

    def txt(self, name: str, timeout: float | None = None) -> list[bytes]:
        """Each TXT record's strings joined (RFC 7208 section 3.3, RFC 6376 3.6.2.2)."""
        answer = self.query(name, "TXT", timeout)
        if answer is None:
            return []
        return [b"".join(r.strings)[:MAX_TXT] for r in answer]

    # --- the libraries' lookup functions ----------------------------------------
    def dkim_txt(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``: the first TXT record, or None."""
        import dkim

        text = name.decode() if isinstance(name, bytes) else name
        try:
            records = self.txt(text.rstrip("."), timeout)
        except DnsTempError as e:
            raise dkim.DnsTimeoutError(str(e)) from None
        return records[0] if records else None


# --- pyspf: its lookups go through spf.DNSLookup, a module global ---------------------
_CURRENT: contextvars.ContextVar[Lookup] = contextvars.ContextVar("spf_lookup")


def _spf_lookup(name: str, qtype: str, tcpfallback: bool = True,
                timeout: float = 30) -> list[tuple[tuple[str, str], object]]:
    """pyspf's ``DNSLookup`` through the current :class:`Lookup` (pyspf's own
    dnspython version, with our resolver and TempError on failures)."""
    lookup = _CURRENT.get(None)
    if lookup is None:      # not one of our checks: pyspf's own lookup
        return _PYSPF_LOOKUP(name, qtype, tcpfallback, timeout)  # type: ignore[no-any-return]
    try:
        answer = lookup.query(name, qtype, timeout)
    except DnsTempError as e:
        raise spf.TempError(str(e)) from None
    out: list[tuple[tuple[str, str], object]] = []
    for rdata in answer or ():
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            out.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            out.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), rdata.strings))
    return out


_PYSPF_LOOKUP = spf.DNSLookup
spf.DNSLookup = _spf_lookup


@contextmanager
def spf_lookups(lookup: Lookup) -> Iterator[None]:
    token = _CURRENT.set(lookup)
    try:
        yield
    finally:
        _CURRENT.reset(token)
