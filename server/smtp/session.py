"""One SMTP connection: aiosmtpd's state machine with fdbmail's rules.

aiosmtpd reads command lines, dispatches them and does STARTTLS.  We override what it gets
wrong or does not do: EHLO keywords (PIPELINING, ENHANCEDSTATUSCODES), MAIL and RCPT
parsing (the null reverse-path ``<>``, SMTPUTF8 addresses, strict parameters), DATA framing
(no smuggling, see :mod:`.wire.data`), enhanced status codes on its own replies
(:mod:`.replies`), per-connection command limits (aiosmtpd keeps them in a class attribute
shared by every connection), connection limits, DATA timeouts and log lines with a
connection id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
from dataclasses import dataclass, field

from asyncio import sslproto

from aiosmtpd.smtp import SMTP, Envelope, TLSSetupException, syntax
from prometheus_client import Counter, Gauge

from server.directory.base import Principal
from server.node.service import Connection
from server.sasl import encode_challenge
from server.smtp.auth import AUTH_FAILURES, MECHANISMS, REGISTRY, SaslMechanisms
from server.smtp.handler import Recipient, SenderInfo, SmtpHandler, Transaction
from server.smtp.limits import Limits, tarpit_delay
from server.smtp.logs import ConnectionLog, connection_context, new_connection_id
from server.smtp.replies import enhance
from server.smtp.wire.bdat import BdatSyntaxError, check_text, parse_bdat
from server.smtp.wire.data import DataDecoder, DataProblem
from server.smtp.wire.dsn import DsnParamError, mail_dsn, rcpt_dsn
from server.smtp.wire.params import check_mail_params
from server.smtp.wire.path import PathArgument, PathError, parse_mail, parse_rcpt

log = logging.getLogger(__name__)

CONNECTIONS = Counter(
    "fdbmail_smtp_connections_total",
    "Connections by listener and result (accepted, or the limit that refused them).",
    ("listener", "result"),
)
OPEN_CONNECTIONS = Gauge(
    "fdbmail_smtp_open_connections", "Connections open now, by listener.", ("listener",))

# RFC 4954 section 4: an AUTH command line may have 12288 octets.
AUTH_LINE = 12288
# What each MAIL parameter may add to the 512 octets (RFC 1870 section 3: SIZE 26;
# RFC 6152 (via RFC 1652): BODY 14; RFC 6531 section 3.4: SMTPUTF8 10; RFC 4954 section 5:
# AUTH 500; RFC 3461 sections 4.4 and 4.3: ENVID 100, RET 10; RCPT's NOTIFY 30 and
# ORCPT 500, sections 4.1 and 4.2, fit in the same room).
MAIL_EXTRA = 26 + 14 + 10 + 500 + 100 + 10
# Octets of a BDAT chunk read at a time (the chunk's size is the client's word).
_CHUNK_READ = 64 * 1024
_READER_LIMIT = 64 * 1024
# Replies that may wait for the next ones while pipelined commands are pending; any other
# (greeting, 220 before TLS, 235, 334, 354, 421, 221) is sent at once.
_DEFERRABLE = frozenset({"250", "251", "252", "450", "451", "452", "501", "530", "550",
                         "552", "553", "554", "555"})


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """The [smtp] settings one connection needs."""

    hostname: str
    max_message_size: int = 52_428_800
    max_recipients: int = 100
    max_line_length: int = 0
    max_command_length: int = 512
    normalize_bare_line_endings: bool = False
    smtputf8: bool = True
    timeout: float = 300.0
    data_timeout: float = 600.0
    delivery_timeout: float = 300.0
    handshake_timeout: float = 10.0
    max_bad_commands: int = 20
    auth_require_tls: bool = True
    mx_auth: bool = False
    check_from: bool = True
    max_unknown_recipients: int = 20
    unknown_recipient_tarpit_after: int = 3
    unknown_recipient_delay: float = 1.0


@dataclass(frozen=True, slots=True)
class ListenerContext:
    """Everything shared by the connections of one listener."""

    kind: str                       # "mx", "submission", "submissions"
    options: SessionOptions
    handler: SmtpHandler
    limits: Limits
    starttls: ssl.SSLContext | None     # offered by STARTTLS (None on implicit TLS)
    implicit_tls: ssl.SSLContext | None = None  # the handshake at connect (port 465)
    sessions: set[SmtpSession] = field(default_factory=set)    # open connections

    @property
    def offers_auth(self) -> bool:
        return self.kind != "mx" or self.options.mx_auth


class TxEnvelope(Envelope):
    """aiosmtpd's envelope with our transaction beside it."""

    def __init__(self) -> None:
        super().__init__()
        self.tx: Transaction | None = None
        self.chunks: bytearray | None = None    # BDAT's octets so far (RFC 3030)


class SmtpSession(SaslMechanisms, SMTP):
    line_length_limit = _READER_LIMIT      # StreamReader limit; our limits are checked below

    def __init__(self, ctx: ListenerContext, conn: Connection | None = None) -> None:
        """``conn``: the node admitted this connection already (it is given back with
        ``conn.end()``); without it the session counts itself in ``ctx.limits``."""
        opts = ctx.options
        require_tls = opts.auth_require_tls and not ctx.implicit_tls
        self.conn_id = new_connection_id()
        with connection_context(self.conn_id):
            self._init_aiosmtpd(ctx)
        self._auth_require_tls = require_tls
        self.ctx = ctx
        self.log = ConnectionLog(log, self.conn_id)
        self.peer_ip = "unknown"
        self._conn = conn
        self._admitted = False
        self._handshake: asyncio.Task[None] | None = None   # implicit TLS, before serving
        self._greeted = False
        self._bad_commands = 0
        self._unknown_recipients = 0
        self._delivering: asyncio.Future[str] | None = None
        self._pending = bytearray()                 # replies not sent yet (PIPELINING)
        self._last_data = 0.0                        # loop time octets last arrived
        self._data_deadline: float | None = None     # while reading DATA: its time limit
        self._deadline = 0.0                         # loop time the connection times out
        self._armed: float | None = None             # when the live timer fires, if any
        base = opts.max_command_length - 2           # aiosmtpd measures without CRLF
        self.command_size_limits: collections.defaultdict[str, int] = \
            collections.defaultdict(lambda: base)
        self.command_size_limits.update(MAIL=base + MAIL_EXTRA, RCPT=base + MAIL_EXTRA,
                                        AUTH=AUTH_LINE)
        self.command_size_limit = base

    def _init_aiosmtpd(self, ctx: ListenerContext) -> None:
        opts = ctx.options
        super().__init__(
            ctx.handler,
            data_size_limit=opts.max_message_size or None,
            enable_SMTPUTF8=opts.smtputf8,
            decode_data=False,
            hostname=opts.hostname,
            ident="ESMTP fdbmail",
            tls_context=ctx.starttls,
            timeout=opts.timeout,
            auth_required=ctx.kind != "mx",
            auth_require_tls=True,  # the real value is set after: aiosmtpd warns otherwise
            auth_exclude_mechanism=() if ctx.offers_auth else MECHANISMS,
            loop=asyncio.get_running_loop(),
        )

    # -- connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is not None:          # the TLS layer after STARTTLS
            super().connection_made(transport)
            return
        # Counted at accept, before any TLS handshake: a connection that never completes
        # one holds a descriptor as long as any other (issue 10, item 13).
        peer = transport.get_extra_info("peername")
        self.peer_ip = str(peer[0]) if isinstance(peer, tuple) else "unknown"
        refused = None if self._conn is not None else self.ctx.limits.admit(self.peer_ip)
        CONNECTIONS.labels(self.ctx.kind, refused or "accepted").inc()
        if refused is not None:
            self.ctx.limits.log_refusal(self.ctx.kind, self.peer_ip, refused)
            assert isinstance(transport, asyncio.WriteTransport)
            if self.ctx.implicit_tls is None:    # a TLS port gets no plaintext
                transport.write(f"421 4.7.0 {self.hostname} Too many connections, try "
                                "again later\r\n".encode())
            transport.close()
            return
        self._admitted = True
        self.ctx.sessions.add(self)
        OPEN_CONNECTIONS.labels(self.ctx.kind).inc()
        if self.ctx.implicit_tls is not None:
            self._handshake = self.loop.create_task(self._implicit_tls(transport))
            return
        self._serve(transport)

    def _serve(self, transport: asyncio.BaseTransport) -> None:
        self.log.info("connection from %s on %s", self.peer_ip, self.ctx.kind)
        with connection_context(self.conn_id):      # inherited by the session task
            super().connection_made(transport)

    async def _implicit_tls(self, raw: asyncio.BaseTransport) -> None:
        """The handshake of an implicit-TLS connection, bounded in time; then the session."""
        assert self.ctx.implicit_tls is not None
        try:
            secure = await self.loop.start_tls(
                raw, self, self.ctx.implicit_tls, server_side=True,  # type: ignore[arg-type]
                ssl_handshake_timeout=self.ctx.options.handshake_timeout or None)
        except (Exception, asyncio.CancelledError) as e:
            self.ctx.limits.refusals.log(
                logging.INFO, "tls_handshake", "TLS handshake on %s from %s failed: %s",
                self.ctx.kind, self.peer_ip, _describe(e))
            raw.close()
            self._end()
            return
        finally:
            self._handshake = None
        if not self._admitted or secure is None:   # closed meanwhile (node shutdown)
            return
        self._serve(secure)

    def _end(self) -> bool:
        """Give back the connection's place in the limits; False if already done."""
        if not self._admitted:
            return False
        self._admitted = False
        self.ctx.sessions.discard(self)
        if self._conn is not None:
            self._conn.end()
        else:
            self.ctx.limits.release(self.peer_ip)
        OPEN_CONNECTIONS.labels(self.ctx.kind).dec()
        return True

    def connection_lost(self, error: Exception | None) -> None:
        if self.session is None:     # never served: refused, or its TLS handshake failed
            self._end()
            return
        if not self._end():
            return
        self.log.info("connection closed")
        with connection_context(self.conn_id):
            super().connection_lost(error)

    def eof_received(self) -> bool | None:
        with connection_context(self.conn_id):
            return super().eof_received()

    def data_received(self, data: bytes) -> None:
        self._last_data = self.loop.time()
        super().data_received(data)

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd's, moved lazily: it runs on every command, and cancelling and
        scheduling a timer each time cost ~3% of a busy worker.  The deadline is a
        number; the one live timer is replaced only when the deadline comes earlier,
        and when it fires before a later deadline (:meth:`_timer`) it waits out the
        rest.  The connection times out exactly when it did."""
        now = self.loop.time()
        self._deadline = now + (duration or self._timeout_duration)
        if self._armed is not None and self._armed <= self._deadline:
            return
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        self._timeout_handle = self.loop.call_later(self._deadline - now, self._timer)
        self._armed = self._deadline

    def _timer(self) -> None:
        self._armed = None
        now = self.loop.time()
        if now < self._deadline:                # moved since the timer was set
            self._timeout_handle = self.loop.call_later(self._deadline - now, self._timer)
            self._armed = self._deadline
            return
        self._timeout_cb()

    def _timeout_cb(self) -> None:
        if self._data_deadline is not None:
            # DATA: idle means no octets for `timeout`, not a read that has not returned
            now = self.loop.time()
            idle_left = self._last_data + self.ctx.options.timeout - now
            if idle_left > 0 and now < self._data_deadline:
                self._reset_timeout(max(0.001, min(idle_left, self._data_deadline - now)))
                return
        self.log.info("timeout, closing the connection")
        with connection_context(self.conn_id):
            super()._timeout_cb()  # type: ignore[no-untyped-call]

    def _create_envelope(self) -> Envelope:
        return TxEnvelope()

    def _reset_transaction(self) -> None:
        self.envelope = self._create_envelope()

    def current_tx(self) -> Transaction | None:
        # (a method: aiosmtpd runs inspect.getmembers() on the session before it is ready)
        envelope = self.envelope
        return envelope.tx if isinstance(envelope, TxEnvelope) else None

    def tls_version(self) -> str | None:
        transport = self.transport
        obj = transport.get_extra_info("ssl_object") if transport is not None else None
        if isinstance(obj, ssl.SSLObject | ssl.SSLSocket):
            return obj.version() or "TLS"
        return None

    def principal(self) -> Principal | None:
        assert self.session is not None
        data = self.session.auth_data
        return data if self.session.authenticated and isinstance(data, Principal) else None

    def sender_info(self) -> SenderInfo:
        assert self.session is not None
        return SenderInfo(self.ctx.kind, self.conn_id, self.peer_ip,
                          self.session.host_name or "", bool(self.session.extended_smtp),
                          self.tls_version(), self.principal())

    async def shut_down(self) -> None:
        """Node shutdown: let a delivery in progress finish and answer, then say 421."""
        if self._handshake is not None:
            self._handshake.cancel()
            return
        delivering = self._delivering
        if delivering is not None:
            await asyncio.wait([delivering])
            await asyncio.sleep(0)      # let the session push the reply to DATA
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._pending += f"421 4.3.2 {self.hostname} Shutting down\r\n".encode()
                self._writer.write(bytes(self._pending))
                self._pending.clear()
            self.transport.close()

    async def close_with(self, reply: str) -> None:
        await self.push(reply)
        if self.transport is not None:
            self.transport.close()

    # -- replies ---------------------------------------------------------------------

    async def push(self, status: str | bytes) -> None:
        if isinstance(status, bytes):
            status = status.decode("utf-8", "surrogateescape")
        if not self._greeted:               # the greeting has no enhanced code
            self._greeted = True
        else:
            status = enhance(status)
            if status[:3] in ("500", "501", "503"):
                self._bad_commands += 1
        self._pending += status.encode("utf-8", "surrogateescape") + b"\r\n"
        limit = self.ctx.options.max_bad_commands
        if limit and self._bad_commands >= limit and self.transport is not None:
            self._bad_commands = -1_000_000          # say goodbye only once
            self._pending += b"421 4.7.0 Too many errors, closing connection\r\n"
            await self._flush()
            self.transport.close()
            return
        if status[:3] not in _DEFERRABLE or not self._more_commands():
            await self._flush()

    def _more_commands(self) -> bool:
        """Whether a whole command line is already buffered (the client pipelines).  Then
        replies wait and leave together, in one packet (RFC 2920 section 3.2)."""
        buffer = getattr(self._reader, "_buffer", None)   # aiosmtpd uses it too
        return isinstance(buffer, bytearray) and b"\n" in buffer

    async def _flush(self) -> None:
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            self._writer.write(data)
            await self._writer.drain()

    async def _push_lines(self, lines: list[str]) -> None:
        """A multi-line reply as given (EHLO)."""
        self._pending += "".join(
            f"{line[:3]}{'-' if i < len(lines) - 1 else ' '}{line[4:]}\r\n"
            for i, line in enumerate(lines)).encode("utf-8")
        await self._flush()

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):   # the client's doing: no traceback
            cause = error.__cause__ or error
            self.log.info("STARTTLS handshake from %s failed: %s", self.peer_ip,
                          _describe(cause))
            return "454 4.7.0 TLS not available"     # (not sent: the connection closes)
        self.log.error("session error", exc_info=error)
        return "451 4.3.0 Internal error, try again later"

    @syntax("STARTTLS", when="tls_context")     # (HELP lists it, as aiosmtpd's)
    async def smtp_STARTTLS(self, arg: str) -> None:
        """aiosmtpd's, with the handshake bounded by tls_handshake_timeout."""
        if arg:
            await self.push("501 5.5.4 Syntax: STARTTLS")
            return
        if not self.tls_context:
            await self.push("454 4.7.0 TLS not available")
            return
        await self.push("220 2.0.0 Ready to start TLS")
        waiter = self.loop.create_future()
        self._tls_protocol = sslproto.SSLProtocol(
            self.loop, self, self.tls_context, waiter, server_side=True,
            ssl_handshake_timeout=self.ctx.options.handshake_timeout or None,  # type: ignore[arg-type]
        )
        self._original_transport = self.transport
        assert self._original_transport is not None
        self._original_transport.set_protocol(self._tls_protocol)
        self.transport = self._tls_protocol._app_transport
        self._tls_protocol.connection_made(self._original_transport)
        try:
            await waiter
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise TLSSetupException() from error

    async def sasl_response(self, challenge: bytes) -> bytes | None:
        """A SASL challenge and the client's response line (without its line ending),
        which may be as long as an AUTH command (RFC 4954 section 4); a longer one gets
        500 and is read to its end, so none of it is taken for a command (then None)."""
        await self.push(b"334 " + encode_challenge(challenge))
        line = bytearray()
        too_long = False
        while True:
            try:
                chunk = await self._reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as e:
                chunk = await self._reader.read(e.consumed)
            except asyncio.IncompleteReadError as e:
                chunk = e.partial
                if not chunk:
                    raise ConnectionResetError("connection closed during AUTH") from None
            if not too_long:
                line += chunk
                too_long = len(line) > AUTH_LINE + 2
            if chunk.endswith(b"\n"):
                break
        if too_long:
            await self.push("500 5.5.2 SASL response line too long")
            return None
        return bytes(line).rstrip(b"\r\n")

    # -- HELO, EHLO, AUTH ------------------------------------------------------------

    async def smtp_HELO(self, hostname: str) -> None:
        if not hostname:
            await self.push("501 5.5.4 Syntax: HELO hostname")
            return
        self._reset_transaction()
        assert self.session is not None
        self.session.extended_smtp = False
        self.session.host_name = hostname
        await self._push_lines([f"250 {self.hostname}"])

    async def smtp_EHLO(self, hostname: str) -> None:
        if not hostname:
            await self.push("501 5.5.4 Syntax: EHLO hostname")
            return
        self._reset_transaction()
        assert self.session is not None
        self.session.extended_smtp = True
        self.session.host_name = hostname
        opts = self.ctx.options
        lines = [f"250 {self.hostname}", "250 PIPELINING"]
        if opts.max_message_size:
            lines.append(f"250 SIZE {opts.max_message_size}")
        lines += ["250 8BITMIME", "250 ENHANCEDSTATUSCODES", "250 CHUNKING",
                  "250 BINARYMIME", "250 DSN"]
        if opts.smtputf8:
            lines.append("250 SMTPUTF8")
        if self.tls_context and not self._tls_protocol:
            lines.append("250 STARTTLS")
        usable = REGISTRY.usable(plaintext_allowed=not self._auth_require_tls
                                 or bool(self._tls_protocol))
        if self.ctx.offers_auth and usable:
            lines.append("250 AUTH " + " ".join(usable))
        await self._push_lines(lines)

    async def smtp_AUTH(self, arg: str) -> None:
        if not self.ctx.offers_auth:
            await self.push("502 5.5.1 AUTH not available on this port")
            return
        if self.ctx.limits.auth_blocked(self.peer_ip):
            self.log.warning("AUTH refused: too many failures from %s", self.peer_ip)
            await self.close_with("421 4.7.0 Too many authentication failures, try later")
            return
        if self.current_tx() is not None:
            await self.push("503 5.5.1 AUTH not allowed during a mail transaction")
            return
        args = (arg or "").split()
        if (not args or len(args) > 2 or args[0].upper() not in MECHANISMS) and \
                self._auth_offered_now():
            # a malformed AUTH (no or an unknown mechanism) is a failed attempt too
            AUTH_FAILURES.labels(self.ctx.kind, "none", "malformed").inc()
            self.ctx.limits.auth_failed(self.peer_ip)
        await super().smtp_AUTH(arg)

    def _auth_offered_now(self) -> bool:
        assert self.session is not None
        return bool(self.session.extended_smtp) and not self.session.authenticated and (
            not self._auth_require_tls or bool(self._tls_protocol))

    # -- MAIL, RCPT ------------------------------------------------------------------

    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("MAIL"):
            return
        if self.current_tx() is not None:
            await self.push("503 5.5.1 Nested MAIL command")
            return
        assert self.session is not None and isinstance(self.envelope, TxEnvelope)
        try:
            path = parse_mail(arg or "")
            reply = self._check_mail_params(path)
        except PathError as e:
            reply = e.reply
        if reply is None:
            reply = await self.ctx.handler.check_sender(self.sender_info(), path)
        if reply is None:
            try:
                dsn = mail_dsn(path.params)
            except DsnParamError as e:
                reply = e.reply
        if reply is None:
            body = (path.params.get("BODY") or "7BIT").upper()
            self.envelope.tx = Transaction(path.address, utf8="SMTPUTF8" in path.params,
                                           body=body, ret=dsn.ret, envid=dsn.envid)
            self.envelope.mail_from = path.address or "<>"
            self.envelope.smtp_utf8 = self.envelope.tx.utf8
            reply = "250 2.1.0 Sender OK"
            self.log.info("MAIL FROM:<%s>", path.address)
        await self.push(reply)

    def _check_mail_params(self, path: PathArgument) -> str | None:
        assert self.session is not None
        return check_mail_params(path, extended=bool(self.session.extended_smtp),
                                 smtputf8=self.ctx.options.smtputf8,
                                 max_size=self.ctx.options.max_message_size,
                                 binarymime=True, dsn=True)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("RCPT"):
            return
        tx = self.current_tx()
        if tx is None:
            await self.push("503 5.5.1 Need MAIL command first")
            return
        if self.ctx.limits.harvest_blocked(self.peer_ip):
            self.log.warning("RCPT refused: too many unknown recipients from %s",
                             self.peer_ip)
            await self.close_with("421 4.7.0 Too many unknown recipients, try later")
            return
        if len(tx.recipients) >= self.ctx.options.max_recipients:
            await self.push("452 4.5.3 Too many recipients")
            return
        try:
            path = parse_rcpt(arg or "")
        except PathError as e:
            await self.push(e.reply)
            return
        unknown = [p for p in path.params if p not in ("NOTIFY", "ORCPT")]
        if unknown:
            await self.push(f"555 5.5.4 RCPT parameter {unknown[0]} not supported")
            return
        try:
            dsn = rcpt_dsn(path.params)
        except DsnParamError as e:
            await self.push(e.reply)
            return
        if not path.is_ascii and not tx.utf8:
            await self.push("553 5.6.7 Non-ASCII address needs SMTPUTF8")
            return
        decision = await self.ctx.handler.check_recipient(self.sender_info(), path)
        if decision.accepted:
            tx.recipients.append(Recipient(path.address, decision.principals,
                                           dsn.notify, dsn.orcpt))
            assert self.envelope is not None
            self.envelope.rcpt_tos.append(path.address)
        self.log.info("RCPT TO:<%s>: %s", path.address, decision.reply[:9])
        if decision.reply.startswith("550 5.1.1"):
            await self._unknown_recipient(decision.reply)
            return
        await self.push(decision.reply)

    async def _unknown_recipient(self, reply: str) -> None:
        """Directory harvest: each "no such user" counts for the session and the IP, and
        after a few it is answered ever more slowly (issue 10, item 15)."""
        opts = self.ctx.options
        self._unknown_recipients += 1
        self.ctx.limits.unknown_recipient(self.peer_ip)
        delay = tarpit_delay(self._unknown_recipients, opts.unknown_recipient_tarpit_after,
                             opts.unknown_recipient_delay)
        if delay:
            await self._flush()
            await _sleep(delay)
        limit = opts.max_unknown_recipients
        if limit and self._unknown_recipients >= limit:
            self.log.warning("closing: %d unknown recipients", self._unknown_recipients)
            self._pending += (reply + "\r\n").encode("utf-8", "surrogateescape")
            await self.close_with("421 4.7.0 Too many unknown recipients, closing connection")
            return
        await self.push(reply)

    async def smtp_RSET(self, arg: str) -> None:
        if arg:
            await self.push("501 5.5.4 Syntax: RSET")
            return
        self._reset_transaction()
        await self.push("250 2.0.0 OK")

    async def smtp_VRFY(self, arg: str) -> None:
        await self.push("252 2.5.0 Cannot VRFY user, but will accept message for delivery")

    # -- DATA ------------------------------------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        tx = self.current_tx()
        if tx is None:
            await self.push("503 5.5.1 Need MAIL command first")
            return
        if not tx.recipients:
            await self.push("554 5.5.1 No valid recipients")    # RFC 2920 section 3.1
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        assert isinstance(self.envelope, TxEnvelope)
        if tx.body == "BINARYMIME" or self.envelope.chunks is not None:
            # RFC 3030 section 3: BINARYMIME only with BDAT; section 2: no DATA after BDAT
            self._reset_transaction()
            await self.push("503 5.5.1 BDAT required (BODY=BINARYMIME or BDAT begun); "
                            "transaction reset")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        opts = self.ctx.options
        decoder = DataDecoder(max_size=opts.max_message_size, max_line=opts.max_line_length,
                              normalize=opts.normalize_bare_line_endings)
        await self._read_data(decoder)
        result = decoder.result()
        self._reset_transaction()
        await self._accept(tx, result.content, result.size, result.problem, "DATA")

    async def _accept(self, tx: Transaction, content: bytes, size: int,
                      problem: DataProblem | None, command: str) -> None:
        """The end of a message (DATA or BDAT LAST): refused, or delivered (durable)
        before the 250."""
        opts = self.ctx.options
        if problem is not None:
            self.ctx.handler.refused(self.ctx.kind, problem.value)
            self.log.info("%s refused (%s, %d octets)", command, problem.value, size)
            await self.push(_DATA_REPLIES[problem].format(opts.max_message_size))
            return
        info = self.sender_info()
        if opts.check_from and info.principal is not None:
            refusal = self.ctx.handler.check_authors(info, content)
            if refusal is not None:
                self.ctx.handler.refused(self.ctx.kind, "author_not_owned")
                self.log.info("DATA refused: From:/Sender: not owned by %s",
                              info.principal.name)
                await self.push(refusal)
                return
        # The delivery runs to its end even if the client goes away meanwhile: it is
        # idempotent, and the client, not having seen our reply, will send it again.
        delivery = asyncio.ensure_future(self.ctx.handler.deliver(info, tx, content))
        self._delivering = delivery
        self._reset_timeout(opts.delivery_timeout + opts.timeout)   # no idle close meanwhile
        try:
            reply = await asyncio.wait_for(asyncio.shield(delivery),
                                           opts.delivery_timeout or None)
        except TimeoutError:
            self.log.error("delivery still running after %.0f s; answering 451",
                           opts.delivery_timeout)
            self.ctx.handler.refused(self.ctx.kind, "delivery_timeout", result="tempfail")
            reply = "451 4.3.0 Delivery is taking too long, try again later"
        finally:
            self._delivering = None
            self._reset_timeout()
        self.log.info("%s %d octets for %d recipients: %s", command, size,
                      len(tx.recipients), reply)
        await self.push(reply)

    # -- BDAT (RFC 3030) -------------------------------------------------------------

    async def smtp_BDAT(self, arg: str | None) -> None:
        """A chunk of the message (RFC 3030 section 2).  Its octets are read whatever
        the reply (they are not commands); a chunk refused fails the transaction, and
        the chunks the client pipelined after it get 503 (no transaction) and are read
        and dropped.  A malformed size leaves the chunk's end unknown: 501 and close."""
        try:
            cmd = parse_bdat(arg or "")
        except BdatSyntaxError:
            self.ctx.handler.refused(self.ctx.kind, "bdat_syntax")
            self.log.info("BDAT with a malformed size %r: closing", (arg or "")[:40])
            await self.push("501 5.5.4 Syntax: BDAT chunk-size [LAST]")
            await self.close_with("421 4.5.0 BDAT chunk size unknown, closing connection")
            return
        assert self.session is not None and isinstance(self.envelope, TxEnvelope)
        envelope = self.envelope
        tx = envelope.tx
        opts = self.ctx.options
        received = len(envelope.chunks or b"")
        refusal: str | None = None
        if not self.session.host_name:
            refusal = "503 5.5.1 Send EHLO first"
        elif self._auth_required and not self.session.authenticated:
            refusal = "530 5.7.0 Authentication required"
        elif tx is None:
            refusal = "503 5.5.1 Need MAIL command first"
        elif not tx.recipients:
            refusal = "554 5.5.1 No valid recipients"      # RFC 2920 section 3.1
        elif opts.max_message_size and received + cmd.size > opts.max_message_size:
            self.ctx.handler.refused(self.ctx.kind, DataProblem.TOO_BIG.value)
            refusal = _DATA_REPLIES[DataProblem.TOO_BIG].format(opts.max_message_size)
        chunk = await self._read_chunk(cmd.size, keep=refusal is None)
        if refusal is not None or tx is None:
            if tx is not None:
                self._reset_transaction()       # the transaction failed (section 2)
            self.log.info("BDAT %d%s refused: %s", cmd.size, " LAST" * cmd.last,
                          refusal)
            await self.push(refusal or "503 5.5.1 Need MAIL command first")
            return
        if envelope.chunks is None:
            envelope.chunks = bytearray()
        envelope.chunks += chunk
        if not cmd.last:
            await self.push(f"250 2.0.0 {cmd.size} octets received")
            return
        content = bytes(envelope.chunks)
        self._reset_transaction()
        problem = None
        if tx.body != "BINARYMIME":
            content, problem = check_text(content, max_line=opts.max_line_length,
                                          normalize=opts.normalize_bare_line_endings)
        await self._accept(tx, content, len(content), problem, "BDAT")

    async def _read_chunk(self, size: int, *, keep: bool) -> bytes:
        """``size`` octets of a BDAT chunk (kept, or read and dropped), with DATA's
        time limits; a connection closed meanwhile ends the session (nothing stored)."""
        opts = self.ctx.options
        now = self.loop.time()
        self._last_data = now
        self._data_deadline = now + opts.data_timeout
        self._reset_timeout(max(0.001, min(opts.timeout, opts.data_timeout)))
        out = bytearray()
        left = size
        try:
            while left:
                try:
                    piece = await self._reader.readexactly(min(left, _CHUNK_READ))
                except asyncio.IncompleteReadError:
                    raise ConnectionResetError("connection closed during BDAT") from None
                left -= len(piece)
                if keep:
                    out += piece
        finally:
            self._data_deadline = None
        self._reset_timeout()
        return bytes(out)

    async def _read_data(self, decoder: DataDecoder) -> None:
        """Feed the decoder up to the terminator; timeouts close the connection, which
        cancels this task (nothing is stored, nothing acknowledged).

        Reads run up to the next CRLF "." CRLF (or 64 KiB), not line by line, and never
        past the terminator: what follows it is the client's next command.  When the
        octets read so far end with the start of a terminator (say CRLF), exactly the
        octets that would complete it are read next: the decoder, fed the same octets,
        decides where the data ends (``server.smtp.wire.data``)."""
        loop = self.loop
        opts = self.ctx.options
        now = loop.time()
        self._last_data = now
        self._data_deadline = now + opts.data_timeout
        self._reset_timeout(max(0.001, min(opts.timeout, opts.data_timeout)))
        reader = self._reader
        tail = b"\r\n"    # the DATA command's CRLF: the data starts at a line start
        try:
            while not decoder.done:
                started = _terminator_started(tail)
                try:
                    if started:
                        chunk = await reader.readexactly(len(_TERMINATOR) - started)
                    else:
                        chunk = await reader.readuntil(_TERMINATOR)
                except asyncio.LimitOverrunError as e:
                    chunk = await reader.read(e.consumed)
                except asyncio.IncompleteReadError:
                    raise ConnectionResetError("connection closed during DATA") from None
                if not chunk:
                    raise ConnectionResetError("connection closed during DATA")
                if decoder.feed(chunk) != len(chunk):  # cannot happen: see the docstring
                    self.log.error("DATA read past its end; closing the connection")
                    raise ConnectionResetError("DATA read past its end")
                tail = (tail + chunk)[-4:] if len(chunk) < 4 else chunk[-4:]
        finally:
            self._data_deadline = None
        self._reset_timeout()


_TERMINATOR = b"\r\n.\r\n"
_sleep = asyncio.sleep      # the tarpit's (tests replace it)


def _describe(error: BaseException) -> str:
    """One line about a failed handshake (no traceback: it is the client's doing)."""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    if isinstance(error, ssl.SSLError):
        return error.reason or error.__class__.__name__
    return str(error) or error.__class__.__name__


def _terminator_started(tail: bytes) -> int:
    """How many octets of a terminator ``tail`` ends with (0 to 4)."""
    for n in (4, 3, 2, 1):
        if tail.endswith(_TERMINATOR[:n]):
            return n
    return 0


_DATA_REPLIES: dict[DataProblem, str] = {
    DataProblem.TOO_BIG: "552 5.3.4 Message size exceeds fixed maximum of {} octets",
    DataProblem.LINE_TOO_LONG: "500 5.5.2 Line too long (RFC 5321 section 4.5.3.1.6)",
    DataProblem.BARE_LINE_ENDING: "550 5.6.0 Bare CR or LF in message (RFC 5321 section "
                                  "2.3.8); lines must end with CRLF",
}
