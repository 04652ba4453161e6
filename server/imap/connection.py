"""An IMAP connection as an ``asyncio.Protocol``: I/O, TLS and timeouts only.

Octets go to the session (:mod:`server.imap.session`), which leaves its responses in
``session.out`` and asks for STARTTLS or a close through ``session.action``.  Implicit
TLS does its handshake before the greeting; STARTTLS after its tagged OK (what the
client sent meanwhile was dropped by the session, RFC 9051 section 6.2.1).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import zlib
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from server.net.ids import connection_context, new_connection_id
from server.node.service import Connection

from .session import Action, Session, SessionContext, State
from .session.auth import compress_started, tls_started
from .session.idle import IDLE_TIMEOUT, wait_for_change

log = logging.getLogger(__name__)

CONNECTIONS = Counter("fdbmail_imap_connections_total", "IMAP connections served.")
OPEN_CONNECTIONS = Gauge("fdbmail_imap_open_connections", "IMAP connections open now.")

_HIGH_WATER = 1 << 20     # buffered octets at which reading pauses until the session catches up
HANDSHAKE_TIMEOUT = 30.0
_INFLATE_CHUNK = 1 << 16  # octets inflated at a time: a deflate bomb never sits in memory


class Deflate:
    """COMPRESS=DEFLATE (RFC 4978 section 4): raw deflate (no zlib header) both ways, each
    write ended with a sync flush so that the client can read it at once."""

    def __init__(self) -> None:
        self._out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._in = zlib.decompressobj(-15)
        self._tail = b""            # compressed input not inflated yet

    def compress(self, data: bytes) -> bytes:
        return self._out.compress(data) + self._out.flush(zlib.Z_SYNC_FLUSH)

    def add(self, data: bytes) -> None:
        self._tail += data

    @property
    def pending(self) -> bool:
        return bool(self._tail)

    def inflate(self) -> bytes:
        """At most _INFLATE_CHUNK octets of what was added; raises zlib.error on garbage."""
        data, self._tail = self._tail, b""
        out = self._in.decompress(data, _INFLATE_CHUNK)
        self._tail = self._in.unconsumed_tail
        if self._in.eof:
            raise zlib.error("the client ended its deflate stream")
        return out


@dataclass(frozen=True, slots=True)
class ListenerContext:
    """What the connections of one IMAP listener share."""

    session: SessionContext
    tls_context: ssl.SSLContext | None
    implicit_tls: bool
    login_timeout: float
    timeout: float
    connections: set[ImapConnection] = field(default_factory=set)


class ImapConnection(asyncio.Protocol):
    def __init__(self, ctx: ListenerContext, conn: Connection | None = None) -> None:
        self.ctx = ctx
        self.conn = conn
        self.conn_id = conn.conn_id if conn is not None else new_connection_id("imap")
        self.session = Session(ctx.session, tls=ctx.implicit_tls, conn_id=self.conn_id,
                               peer_ip=conn.peer_ip if conn is not None else "")
        self.transport: asyncio.Transport | None = None
        self._input = asyncio.Event()
        self._pending = bytearray()
        self._eof = False
        self._paused = False
        self._task: asyncio.Task[None] | None = None
        self._ended = False
        self._writable = asyncio.Event()
        self._writable.set()
        self.session.drain = self._drain
        self._deflate: Deflate | None = None

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        first = self.transport is None
        self.transport = transport
        if not first:
            return            # the TLS transport after a handshake: the task goes on
        if not self.session.peer_ip:
            peer = transport.get_extra_info("peername")
            self.session.peer_ip = str(peer[0]) if isinstance(peer, tuple) else ""
        CONNECTIONS.inc()
        OPEN_CONNECTIONS.inc()
        self.ctx.connections.add(self)
        with connection_context(self.conn_id):
            self._task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self._pending += data
        self._input.set()
        if len(self._pending) > _HIGH_WATER and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._input.set()
        return None

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._writable.set()
        self._input.set()
        self._end()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self in self.ctx.connections:
            self.ctx.connections.discard(self)
            OPEN_CONNECTIONS.dec()
        if self.conn is not None:
            self.conn.end()

    # -- the loop ------------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            if self.ctx.implicit_tls:
                if not await self._start_tls():
                    return
            self._write(self.session.greeting())
            while not self._eof or self._pending or self._inflating:
                if not self._pending and not self._inflating:
                    await self._wait_input()
                    if self.session.action is Action.CLOSE:   # a BYE pushed during IDLE
                        return
                    continue
                data = bytes(self._pending)
                self._pending.clear()
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                if self._deflate is not None:
                    self._deflate.add(data)
                    data = self._deflate.inflate()
                self.session.feed(data)
                await self._run_session()
                if self.session.action is Action.CLOSE:
                    return
        except zlib.error:
            log.info("IMAP client sent bad deflate data (%s)", self.conn_id)
            self._write(b"* BYE Bad compressed data\r\n")
        except TimeoutError:
            self._write(b"* BYE Autologout; idle for too long\r\n")
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("IMAP connection %s failed", self.conn_id)
            self._write(b"* BYE Internal error\r\n")
        finally:
            if self.transport is not None:
                self.transport.close()
            self._end()

    async def _run_session(self) -> None:
        while True:
            await self.session.run()
            self._flush_session()
            if self.session.action is Action.STARTTLS:
                self._pending.clear()       # nothing sent before the handshake is kept
                if not await self._start_tls():
                    self.session.action = Action.CLOSE
                    return
                tls_started(self.session)
                continue
            if self.session.action is Action.COMPRESS:
                self._deflate = Deflate()
                self._deflate.add(compress_started(self.session))
                self.session.feed(self._deflate.inflate())
                continue
            return

    @property
    def _inflating(self) -> bool:
        return self._deflate is not None and self._deflate.pending

    async def _wait_input(self) -> None:
        # IDLE, or NOTIFY's events between commands (RFC 5465 section 3)
        if self.session.idling is not None or self.session.notifying is not None:
            await self._wait_idle()
            return
        authenticated = self.session.state is not State.NOT_AUTHENTICATED
        timeout = self.ctx.timeout if authenticated else self.ctx.login_timeout
        self._input.clear()
        await asyncio.wait_for(self._input.wait(), timeout)

    async def _wait_idle(self) -> None:
        """Input, or a change to push (RFC 2177); the IDLE autologout after 30 minutes."""
        self._input.clear()
        change = asyncio.ensure_future(wait_for_change(self.session))
        got_input = asyncio.ensure_future(self._input.wait())
        try:
            done, _ = await asyncio.wait({change, got_input}, timeout=IDLE_TIMEOUT,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            change.cancel()
            got_input.cancel()
        if not done:
            raise TimeoutError
        if change in done and not change.cancelled():
            change.result()
        self._flush_session()

    async def _start_tls(self) -> bool:
        assert self.transport is not None and self.ctx.tls_context is not None
        loop = asyncio.get_running_loop()
        try:
            secure = await loop.start_tls(self.transport, self, self.ctx.tls_context,
                                          server_side=True,
                                          ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        except (Exception, asyncio.CancelledError) as e:
            log.info("IMAP TLS handshake failed (%s): %s", self.conn_id, e)
            if self.transport is not None:
                self.transport.close()
            return False
        if secure is None:
            return False
        self.transport = secure
        return True

    def _flush_session(self) -> None:
        out, self.session.out = self.session.out, []
        if out:
            self._write(b"".join(out))

    async def _drain(self) -> None:
        """Flush the session's responses mid-command; wait while the transport's buffer is
        above its high-water mark (asyncio's pause_writing / resume_writing)."""
        self._flush_session()
        await self._writable.wait()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self._deflate is not None:
                data = self._deflate.compress(data)
            self.transport.write(data)

    async def shut_down(self) -> None:
        """The node stops: ``* BYE`` and close."""
        self._write(self.session.shutdown_message())
        if self.transport is not None:
            self.transport.close()
        if self._task is not None:
            self._task.cancel()
