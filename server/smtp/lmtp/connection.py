"""An LMTP connection as an ``asyncio.Protocol``: octets in, replies out.

:class:`LmtpConnection` is built with an :class:`LmtpContext` and the node's
:class:`~server.node.service.Connection` (the LMTP service's connection handler).  It
owns no policy: it frames lines and data (:mod:`.wire`, :mod:`server.smtp.wire.data`),
hands commands to the session (:mod:`.session`), and writes the answers.

PIPELINING (RFC 2920 section 3.2): replies are buffered while more commands are already
waiting, and written together before the connection waits for input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge

from server.node.service import Connection
from server.smtp.handler import SmtpHandler
from server.smtp.logs import connection_context, new_connection_id
from server.smtp.wire.data import DataDecoder

from .session import LISTENER, Answer, LmtpOptions, LmtpSession, Next
from .wire import TOO_LONG, CommandReader, Malformed, parse_command

log = logging.getLogger(__name__)

CONNECTIONS = Counter("fdbmail_lmtp_connections_total", "LMTP connections accepted.")
OPEN_CONNECTIONS = Gauge("fdbmail_lmtp_open_connections", "LMTP connections open now.")

_HIGH_WATER = 1 << 20   # buffered octets at which reading pauses until the session catches up


@dataclass(frozen=True, slots=True)
class LmtpContext:
    """Everything the connections of one LMTP listener share."""

    options: LmtpOptions
    handler: SmtpHandler
    connections: set[LmtpConnection] = field(default_factory=set)


class LmtpConnection(asyncio.Protocol):
    def __init__(self, ctx: LmtpContext, conn: Connection | None = None) -> None:
        """``conn``: the node's connection (given back with ``conn.end()`` when this one
        is over)."""
        self.ctx = ctx
        self.conn = conn
        self.conn_id = new_connection_id().replace("smtp-", "lmtp-", 1)
        self.session = LmtpSession(ctx.options, ctx.handler, self.conn_id)
        self.reader = CommandReader(ctx.options.max_command_length)
        self.transport: asyncio.Transport | None = None
        self._input = asyncio.Event()       # octets arrived, or the connection ended
        self._eof = False
        self._paused = False
        self._out = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._busy: asyncio.Future[Answer] | None = None    # a command being answered
        self._bad = 0

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.session.peer_ip = str(peer[0])
        CONNECTIONS.inc()
        OPEN_CONNECTIONS.inc()
        self.ctx.connections.add(self)
        self.session.log.info("LMTP connection from %s", self.session.peer_ip)
        with connection_context(self.conn_id):
            self._task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        self._input.set()
        if len(self.reader) > _HIGH_WATER and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._input.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._input.set()
        if self in self.ctx.connections:
            self.ctx.connections.discard(self)
            OPEN_CONNECTIONS.dec()
            self.session.log.info("LMTP connection closed")
        if self._task is not None and self._busy is None:
            self._task.cancel()
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.end()

    # -- the loop --------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            self._say(self.session.greeting())
            while await self._one_command():
                pass
        except TimeoutError:
            self.session.log.info("LMTP connection idle; closing")
            self._say(f"421 4.4.2 {self.ctx.options.hostname} Timeout, closing connection")
        except ConnectionError:
            self.session.log.info("LMTP connection gone")
        except asyncio.CancelledError:
            pass
        except Exception:
            self.session.log.exception("LMTP session error")
            self._say("421 4.3.0 Internal error, closing connection")
        finally:
            self._flush()
            if self.transport is not None:
                self.transport.close()

    async def _one_command(self) -> bool:
        line = await self._next_line()
        if line is None:
            return False
        if line == TOO_LONG:
            return self._error("500 5.5.2 Line too long")
        assert isinstance(line, bytes)
        cmd = parse_command(line)
        if isinstance(cmd, Malformed):
            return self._error(cmd.reply)
        answer = await self._guarded(self.session.command(cmd))
        for reply in answer.replies:
            if reply[:3] not in ("500", "501", "503"):
                self._say(reply)
            elif not self._error(reply):
                return False
        if answer.next is Next.CLOSE:
            return False
        if answer.next is Next.DATA:
            opts = self.ctx.options
            decoder = DataDecoder(max_size=opts.max_message_size)
            await self._read_data(decoder)
            answer = await self._guarded(self.session.end_of_data(decoder.result()))
            for reply in answer.replies:
                self._say(reply)
        return True

    async def _guarded(self, work: Coroutine[Any, Any, Answer]) -> Answer:
        """Answer a command; it runs to its end even if the connection goes away (a
        delivery is idempotent), and the node's shutdown waits for it."""
        future = asyncio.ensure_future(work)
        self._busy = future
        try:
            return await asyncio.shield(future)
        finally:
            self._busy = None

    def _error(self, reply: str) -> bool:
        """A syntax or sequence error; False once there were too many (then closed)."""
        self._say(reply)
        self._bad += 1
        limit = self.ctx.options.max_bad_commands
        if limit and self._bad >= limit:
            self._say("421 4.7.0 Too many errors, closing connection")
            return False
        return True

    async def _next_line(self) -> bytes | str | None:
        while True:
            line = self.reader.next_line()
            if line is not None:
                return line
            if not await self._wait_input():
                return None

    async def _wait_input(self) -> bool:
        """Flush the replies and wait for octets; False at the end of the connection."""
        if self._eof:
            return False
        self._flush()
        self._input.clear()
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        await asyncio.wait_for(self._input.wait(), self.ctx.options.timeout or None)
        return len(self.reader) > 0 or not self._eof

    async def _read_data(self, decoder: DataDecoder) -> None:
        """Feed the decoder up to the terminator; what follows it is the next command."""
        while not decoder.done:
            chunk = self.reader.take()
            if chunk:
                used = decoder.feed(chunk)
                if used < len(chunk):
                    self.reader.give_back(chunk[used:])
                continue
            if not await self._wait_input():
                raise ConnectionResetError("connection closed during DATA")

    # -- output ----------------------------------------------------------------------

    def _say(self, reply: str) -> None:
        self._out += reply.encode("utf-8", "surrogateescape") + b"\r\n"
        if not self.reader.has_line():
            self._flush()

    def _flush(self) -> None:
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(bytes(self._out))
        self._out.clear()

    async def shut_down(self) -> None:
        """Node shutdown: let a command being answered (a delivery) finish and answer,
        then say 421 and close."""
        busy = self._busy
        if busy is not None:
            await asyncio.wait([busy])
            for _ in range(10):         # let the session write the replies
                if self._busy is not busy:
                    break
                await asyncio.sleep(0)
        if self._task is not None:
            self._task.cancel()
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._say(f"421 4.3.2 {self.ctx.options.hostname} Shutting down")
                self._flush()
            self.transport.close()


__all__ = ["LISTENER", "LmtpConnection", "LmtpContext"]
