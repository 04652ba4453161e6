"""Connection limits of one node, for every service: open connections (over the whole
node and per client IP) and new connections per IP per minute.  "Per IP" means per
address for IPv4 and per network (/64 by default) for IPv6.

A node's listeners count here when they accept, before any TLS handshake (a connection
that never completes one holds a descriptor as long as any other).  Counters live in
memory: a node's limits are a droppable cache (DESIGN.md), so a client spread over N
nodes gets N times the budget; the load balancer's own limits cover the rest.  Time
comes from an injected clock so tests need not sleep.  Protocol policies built on the
same counters (SMTP's failed AUTH and recipient harvest) live with their protocol.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

log = logging.getLogger(__name__)

CONNECTION_WINDOW = 60.0
_MAX_TRACKED_IPS = 100_000
# Refused connections and failed TLS handshakes are logged at most once per interval
# and reason; the lines left out meanwhile are counted in the next one.
REFUSAL_LOG_INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class ConnectionLimitSettings:
    max_connections: int = 1000
    max_connections_per_ip: int = 20
    connection_rate_per_ip: int = 120       # per CONNECTION_WINDOW
    ipv6_prefix: int = 64                   # IPv6 clients are counted by this network


def client_key(ip: str, ipv6_prefix: int = 64) -> str:
    """What a per-IP limit counts: the address, or for IPv6 its /``ipv6_prefix`` network
    (one client is given a /64 and may use every address in it)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if ipv6_prefix < 128:
            return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)


class Window:
    """Event times per key within a sliding window, for at most ``capacity`` keys.

    When the table is full, expired keys go first, then the keys with fewer than
    ``protect`` events (the oldest first): a key that reached its limit is never
    forgotten to make room, so flooding the table with new addresses un-blocks nobody.
    If every key is at its limit, a new key is not tracked until room is made."""

    def __init__(self, window: float, clock: Clock, capacity: int | None = None) -> None:
        self._window = window
        self._clock = clock
        self._capacity = capacity or _MAX_TRACKED_IPS
        self._events: dict[str, deque[float]] = {}
        self.protect = 0

    def __len__(self) -> int:
        return len(self._events)

    def count(self, key: str) -> int:
        events = self._events.get(key)
        if events is None:
            return 0
        cutoff = self._clock() - self._window
        while events and events[0] <= cutoff:
            events.popleft()
        if not events:
            del self._events[key]
            return 0
        return len(events)

    def add(self, key: str) -> None:
        if key not in self._events and len(self._events) >= self._capacity:
            self._prune()
            if len(self._events) >= self._capacity:
                return
        events = self._events.setdefault(key, deque())
        events.append(self._clock())
        if self.protect and len(events) > self.protect:    # more is never needed
            events.popleft()

    def _prune(self) -> None:
        for key in list(self._events):
            self.count(key)
        room = self._capacity * 3 // 4
        if len(self._events) <= room:
            return
        for key in [k for k, e in self._events.items()
                    if not self.protect or len(e) < self.protect]:
            del self._events[key]
            if len(self._events) <= room:
                return


class BoundedLog:
    """Log lines of one kind at a bounded rate: the first per ``interval`` and reason is
    written, the others are counted and their number is written with the next one.  A
    flood of refused connections costs a line per interval, not one per connection."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter,  # type: ignore[type-arg]
                 clock: Clock, interval: float = REFUSAL_LOG_INTERVAL) -> None:
        self._log = logger
        self._clock = clock
        self._interval = interval
        self._next: dict[str, float] = {}      # reason -> when the next line may be written
        self._left_out: dict[str, int] = {}

    def log(self, level: int, reason: str, msg: str, *args: object) -> bool:
        """Write ``msg % args`` unless a line of this reason was written less than an
        interval ago; whether it was written."""
        now = self._clock()
        if now < self._next.get(reason, float("-inf")):
            self._left_out[reason] = self._left_out.get(reason, 0) + 1
            return False
        self._next[reason] = now + self._interval
        left_out = self._left_out.pop(reason, 0)
        if left_out:
            msg += " (and %d more of these in the last %.0f s)"
            args += (left_out, self._interval)
        self._log.log(level, msg, *args)
        return True


class ConnectionLimits:
    """Shared by every listener of a node (and, with worker processes, counted by the main
    process for all of them)."""

    def __init__(self, settings: ConnectionLimitSettings,
                 clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self._open: dict[str, int] = {}
        self._open_total = 0
        self._connections = Window(CONNECTION_WINDOW, clock)
        self.refusals = BoundedLog(log, clock)

    @property
    def open_connections(self) -> int:
        return self._open_total

    def admit(self, ip: str) -> str | None:
        """Count a new connection; None if admitted (then call :meth:`release` at its end),
        else the reason it is refused (a metric label)."""
        s = self.settings
        ip = self.key(ip)
        if s.max_connections and self._open_total >= s.max_connections:
            return "max_connections"
        if s.max_connections_per_ip and self._open.get(ip, 0) >= s.max_connections_per_ip:
            return "max_connections_per_ip"
        if s.connection_rate_per_ip:
            if self._connections.count(ip) >= s.connection_rate_per_ip:
                return "connection_rate"
            self._connections.add(ip)
        self._open[ip] = self._open.get(ip, 0) + 1
        self._open_total += 1
        return None

    def log_refusal(self, listener: str, ip: str, reason: str) -> None:
        self.refusals.log(logging.WARNING, reason, "refused connection on %s from %s: %s",
                          listener, ip, reason)

    def release(self, ip: str) -> None:
        ip = self.key(ip)
        left = self._open.get(ip, 0) - 1
        if left > 0:
            self._open[ip] = left
        else:
            self._open.pop(ip, None)
        self._open_total = max(0, self._open_total - 1)

    def key(self, ip: str) -> str:
        return client_key(ip, self.settings.ipv6_prefix)


# Descriptors a process needs besides its connections (store, blobs, directory,
# logs, listeners, control sockets).
DESCRIPTOR_RESERVE = 128


def fit_descriptors(max_connections: int) -> int:
    """The max_connections this process can hold open: raise its soft descriptor limit
    toward the hard one if needed, and if still short, lower max_connections (with a
    WARNING) so that refusing connections, not running out of descriptors, is what
    happens under a flood."""
    try:
        import resource
    except ImportError:       # not on this platform
        return max_connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = (max_connections or 0) + DESCRIPTOR_RESERVE
    if max_connections and soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if not max_connections or soft == resource.RLIM_INFINITY or soft >= want:
        return max_connections
    fitted = max(1, soft - DESCRIPTOR_RESERVE)
    log.warning("[limits] max_connections %d needs %d descriptors, the limit is %d (ulimit "
                "-n): at most %d connections are served", max_connections, want, soft, fitted)
    return fitted
