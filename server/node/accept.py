"""Accepting connections for the node's listeners: bind, accept, apply the connection
limits, answer an over-limit connection with its service's refusal, and hand an admitted
one on (to its handler in this process, or to a worker process: see :mod:`.pool`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
from collections.abc import Callable

from server.net.limits import ConnectionLimits
from server.net.listen import bind, bound_address
from server.node.service import Connection, Listener, TlsMode

log = logging.getLogger(__name__)

# Hands an admitted connection on: (listener, connection id, peer IP, socket) -> whether
# it was taken (if not, the connection is refused with reason "no_worker").  The socket
# is closed by the caller after the call either way (a taker dups what it keeps).
HandOver = Callable[[Listener, str, str, socket.socket], bool]


class Acceptor:
    """The listening sockets of every service, and the limits they are admitted by."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.sockets: dict[str, socket.socket] = {}
        self.listeners: dict[str, Listener] = {}
        self._open: dict[str, int] = {}      # per listener, for Listener.max_connections
        self._tasks: list[asyncio.Task[None]] = []
        self._ids = itertools.count(1)

    @property
    def addresses(self) -> dict[str, tuple[str, int]]:
        """Each TCP listener's bound (host, port)."""
        found = {}
        for name, sock in self.sockets.items():
            where = bound_address(sock)
            if not where.is_unix:
                found[name] = (where.host, where.port)
        return found

    def bind(self, listeners: list[Listener]) -> None:
        for listener in listeners:
            if listener.name in self.listeners:
                raise ValueError(f"two listeners are named {listener.name!r}")
            self.sockets[listener.name] = bind(listener.address)
            if listener.address.is_unix and listener.unix_mode is not None:
                os.chmod(listener.address.path, listener.unix_mode)
            self.listeners[listener.name] = listener
            self._open[listener.name] = 0

    def start(self, hand_over: HandOver, served_by: str = "") -> None:
        for name, sock in self.sockets.items():
            listener = self.listeners[name]
            self._tasks.append(asyncio.create_task(self._accept(listener, sock, hand_over),
                                                   name=f"accept-{name}"))
            log.info("%s listening on %s%s", name, bound_address(sock), served_by)

    async def _accept(self, listener: Listener, sock: socket.socket,
                      hand_over: HandOver) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(sock)
            except OSError as e:  # EMFILE and the like: wait, do not spin
                log.warning("accept on %s failed: %s", listener.name, e)
                await asyncio.sleep(0.1)
                continue
            with contextlib.closing(conn):
                ip = str(peer[0]) if isinstance(peer, tuple) else "local"
                self._admit(listener, conn, ip, hand_over)

    def _admit(self, listener: Listener, conn: socket.socket, ip: str,
               hand_over: HandOver) -> None:
        if listener.max_connections and self._open[listener.name] >= listener.max_connections:
            self.refuse(listener, conn, ip, "max_connections")
            return
        refused = self.limits.admit(ip) if listener.node_limits else None
        if refused is not None:
            self.refuse(listener, conn, ip, refused)
            return
        self._open[listener.name] += 1
        conn_id = str(next(self._ids))
        if not hand_over(listener, conn_id, ip, conn):
            self.release(listener.name, ip)
            self.refuse(listener, conn, ip, "no_worker")

    def refuse(self, listener: Listener, conn: socket.socket, ip: str, reason: str) -> None:
        listener.refused(ip, reason)
        self.limits.log_refusal(listener.name, ip, reason)
        if listener.tls is not TlsMode.IMPLICIT:  # a TLS port gets no plaintext
            with contextlib.suppress(OSError):
                conn.send(listener.refusal(reason))

    def release(self, listener: str, ip: str) -> None:
        """A connection admitted on ``listener`` from ``ip`` ended."""
        known = self.listeners.get(listener)
        if known is None or known.node_limits:
            self.limits.release(ip)
        if self._open.get(listener, 0) > 0:
            self._open[listener] -= 1

    async def close(self) -> None:
        """Stop accepting and close the listening sockets."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for sock in self.sockets.values():
            where = bound_address(sock)
            sock.close()
            if where.is_unix:
                with contextlib.suppress(OSError):
                    os.unlink(where.path)
        self.sockets.clear()


async def serve_connection(listener: Listener, conn: Connection, sock: socket.socket) -> None:
    """Run ``listener``'s handler on an accepted socket in this process."""
    loop = asyncio.get_running_loop()
    protocol = listener.handler(conn)
    try:
        # no ssl=: an implicit-TLS handler does its handshake itself, bounded in time
        await loop.connect_accepted_socket(lambda: protocol, sock)
    except Exception as e:  # a peer already gone
        log.info("connection on %s not served: %s", listener.name, e)
        sock.close()
        conn.end()


class LocalServer:
    """The services' connections served in this process (``[server] workers = 0``)."""

    def __init__(self, acceptor: Acceptor) -> None:
        self.acceptor = acceptor
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.acceptor.start(self._hand_over)

    def _hand_over(self, listener: Listener, conn_id: str, ip: str,
                   sock: socket.socket) -> bool:
        ended = False

        def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                self.acceptor.release(listener.name, ip)

        mine = socket.socket(fileno=sock.detach())
        task = asyncio.get_running_loop().create_task(
            serve_connection(listener, Connection(listener.name, conn_id, ip, end), mine))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True
