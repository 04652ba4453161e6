"""Where a destination domain's mail goes: a per-domain route, the relay host, or
the domain's MX hosts (RFC 5321 section 5.1: MX by preference, else the domain's own
A/AAAA as an implicit MX; a null MX, RFC 7505, means the domain takes no mail).

Lookups use dnspython against ``[outbound] resolver``; the answer is a list of
:class:`Hop` (a host name and its addresses, in the order to try them)."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver

from server.outbound.settings import OutboundSettings


@dataclass(frozen=True, slots=True)
class Hop:
    """One next hop: ``name`` for TLS and logs, ``addresses`` to connect to in order;
    ``relay``: a configured relay or route (AUTH may be used there)."""

    name: str
    addresses: tuple[str, ...]
    port: int
    relay: bool = False


class RouteError(Exception):
    """No next hop: ``permanent`` (bounce) or not (try again later); ``status``
    the enhanced status code (RFC 3463) for the DSN."""

    def __init__(self, message: str, *, permanent: bool, status: str) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status

    @property
    def reply(self) -> str:
        code = "550" if self.permanent else "451"
        return f"{code} {self.status} {self}"


def parse_host_port(value: str, default_port: int) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` (default port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, sep, port = value.rpartition(":")
    if not sep or ":" in host:      # no port, or a bare IPv6 address
        return value, default_port
    return host, int(port)


def make_resolver(settings: OutboundSettings) -> dns.asyncresolver.Resolver:
    if not settings.resolver:
        return dns.asyncresolver.Resolver()
    host, port = parse_host_port(settings.resolver, 53)
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    resolver.lifetime = 10.0
    return resolver


def routes(settings: OutboundSettings) -> dict[str, str]:
    """``[outbound] routes`` as domain -> host:port (lower-case domains)."""
    out = {}
    for entry in settings.routes:
        domain, _, hop = entry.partition("=")
        out[domain.strip().lower().rstrip(".")] = hop.strip()
    return out


class Router:
    """Next hops for destination domains (one per worker; no cache of its own:
    dnspython's resolver may be given one)."""

    def __init__(self, settings: OutboundSettings,
                 resolver: dns.asyncresolver.Resolver | None = None,
                 mx_ports: Mapping[str, int] | None = None) -> None:
        self.settings = settings
        self.resolver = resolver or make_resolver(settings)
        self.routes = routes(settings)
        # tests: MX hosts that all resolve to 127.0.0.1, each on a port of its own
        self.mx_ports = dict(mx_ports or {})

    async def hops(self, domain: str) -> list[Hop]:
        """The hops to try for ``domain``, best first; raises :class:`RouteError`."""
        domain = domain.lower().rstrip(".")
        configured = self.routes.get(domain) or self.settings.relay
        if configured:
            host, port = parse_host_port(configured, 25)
            return [Hop(host, await self._addresses(host), port, relay=True)]
        try:
            answer = await self.resolver.resolve(domain, "MX")
            records = sorted(answer, key=lambda r: (r.preference, random.random()))
        except dns.resolver.NXDOMAIN:
            raise RouteError(f"domain {domain} does not exist", permanent=True,
                             status="5.1.2") from None
        except dns.resolver.NoAnswer:
            records = []
        except dns.exception.DNSException as e:
            raise RouteError(f"MX lookup for {domain} failed: {type(e).__name__}",
                             permanent=False, status="4.4.3") from None
        if len(records) == 1 and str(records[0].exchange) == ".":   # RFC 7505 section 3
            raise RouteError(f"domain {domain} accepts no mail (null MX)", permanent=True,
                             status="5.1.10")
        names = [str(r.exchange).rstrip(".") for r in records if str(r.exchange) != "."]
        if not records:
            names = [domain]        # implicit MX (RFC 5321 section 5.1)
        hops = []
        for name in names:
            try:
                hops.append(Hop(name, await self._addresses(name),
                                self.mx_ports.get(name, self.settings.port)))
            except RouteError:
                continue            # try the other MX hosts
        if not hops:
            raise RouteError(f"no address for the mail hosts of {domain}", permanent=False,
                             status="4.4.4")
        return hops

    async def _addresses(self, host: str) -> tuple[str, ...]:
        try:
            return (str(ipaddress.ip_address(host)),)
        except ValueError:
            pass
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                found.extend(str(r) for r in await self.resolver.resolve(host, rdtype))
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException as e:
                raise RouteError(f"address lookup for {host} failed: {type(e).__name__}",
                                 permanent=False, status="4.4.3") from None
        if not found:
            raise RouteError(f"host {host} has no address", permanent=False, status="4.4.4")
        return tuple(found)
