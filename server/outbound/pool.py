"""Idle SMTP client connections of one delivery worker, kept for the next message to the
same next hop (RFC 5321 section 3.3: a client may begin a new transaction on a connection
once the previous one is done; it sends RSET first here, which also shows the connection is
still alive).  Keyed by hop: the host's name, address, port and whether it is a relay (which
decides AUTH).  At most ``per_hop`` idle connections per key; each is closed (QUIT) after
``idle_seconds`` unused, and all of them when the worker stops.  A connection that errored
is never given back (the client closes it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from server.outbound.client import SmtpConnection

log = logging.getLogger(__name__)

PoolKey = tuple[str, str, int, bool]       # hop name, address, port, relay

CONNECTIONS = Counter(
    "fdbmail_outbound_connections_total",
    "Connections used for delivery attempts, by how they were had (new, reused).",
    ("how",),
)
IDLE = Gauge("fdbmail_outbound_idle_connections",
             "Idle outbound connections kept for reuse in this process.")

_QUIT_TIMEOUT = 5.0


class ConnectionPool:
    def __init__(self, idle_seconds: float, per_hop: int) -> None:
        self.idle_seconds = idle_seconds
        self.per_hop = per_hop
        self._idle: dict[PoolKey, list[tuple[SmtpConnection, asyncio.TimerHandle]]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.per_hop > 0 and self.idle_seconds > 0 and not self._closed

    def idle(self) -> int:
        return sum(len(v) for v in self._idle.values())

    def take(self, key: PoolKey) -> SmtpConnection | None:
        """The most recently used idle connection to ``key``, now the caller's; or None."""
        entries = self._idle.get(key)
        if not entries:
            return None
        conn, timer = entries.pop()
        timer.cancel()
        if not entries:
            del self._idle[key]
        IDLE.set(self.idle())
        return conn

    def give(self, key: PoolKey, conn: SmtpConnection) -> bool:
        """Keep ``conn`` (its transaction done) for the next message to ``key``; False when
        it is not kept (pool full or off): the caller ends it."""
        entries = self._idle.setdefault(key, [])
        if not self.enabled or len(entries) >= self.per_hop:
            if not entries:
                del self._idle[key]
            return False
        timer = asyncio.get_running_loop().call_later(self.idle_seconds, self._expire, key,
                                                      conn)
        entries.append((conn, timer))
        IDLE.set(self.idle())
        return True

    def _expire(self, key: PoolKey, conn: SmtpConnection) -> None:
        entries = self._idle.get(key, [])
        for i, (c, _) in enumerate(entries):
            if c is conn:
                del entries[i]
                break
        else:
            return
        if not entries:
            self._idle.pop(key, None)
        IDLE.set(self.idle())
        self._quit_later(conn)

    def _quit_later(self, conn: SmtpConnection) -> None:
        task = asyncio.create_task(quit_and_close(conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """QUIT and close every idle connection; keep none from now on."""
        self._closed = True
        for entries in self._idle.values():
            for conn, timer in entries:
                timer.cancel()
                self._quit_later(conn)
        self._idle.clear()
        IDLE.set(0)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


async def quit_and_close(conn: SmtpConnection) -> None:
    """End a connection politely (RFC 5321 section 4.1.1.10), whatever the server says."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(conn.cmd("QUIT"), _QUIT_TIMEOUT)
    conn.close()
