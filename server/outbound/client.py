"""One delivery attempt to one next hop (asyncio streams): connect to each address
in turn, EHLO (HELO if refused), STARTTLS when offered, AUTH PLAIN at a relay,
SIZE/8BITMIME/SMTPUTF8 checks, MAIL/RCPT/DATA (BDAT for a binary message, RFC 3030);
the DSN parameters passed on where DSN is offered (RFC 3461 section 5.2.1); one reply
per recipient."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mailtext.smtp import is_text, xtext_encode
from server.outbound.pool import CONNECTIONS, ConnectionPool, PoolKey
from server.outbound.routing import Hop
from server.outbound.wire import Reply, ReplySyntaxError, dot_stuff, parse_reply_line

log = logging.getLogger(__name__)

_MAX_REPLY_LINES = 100


class _Stale(Exception):
    """A kept connection that no longer takes a transaction: RSET went unanswered (the
    server closed it, or forgot it) or got no 250.  Nothing of the message was sent."""


class HopFailed(Exception):
    """This host cannot take the message now (connection, greeting, TLS, a reply
    to the whole transaction): try the next one; ``reply`` says why."""

    def __init__(self, reply: str, *, permanent: bool = False, tls: bool = False) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent
        self.tls = tls          # required TLS failed (MTA-STS, DANE)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    helo: str
    connect_timeout: float
    timeout: float
    tls_verify: bool
    username: str = ""
    password: str = ""
    require_tls_for_auth: bool = True
    rset_timeout: float = 10.0      # RSET on a reused connection (see _reuse)


@dataclass(frozen=True, slots=True)
class DsnOptions:
    """The message's DSN parameters (RFC 3461 section 4), for a hop that offers DSN."""

    envid: str = ""
    ret: str = ""
    notify: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # by address
    orcpt: Mapping[str, str] = field(default_factory=dict)   # "type;address", decoded
    relayed: set[str] = field(default_factory=set)  # filled: sent to a hop without DSN


class SmtpConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.tls = False
        self.ext: dict[str, str] = {}       # the extensions offered (EHLO)

    async def reply(self, within: float | None = None) -> Reply:
        lines: list[str] = []
        while len(lines) < _MAX_REPLY_LINES:
            line = await asyncio.wait_for(self.reader.readline(), within or self.timeout)
            if not line:
                raise HopFailed("451 4.4.2 connection closed by the remote host")
            try:
                code, more, text = parse_reply_line(line)
            except ReplySyntaxError as e:
                raise HopFailed(f"451 4.5.0 {e}") from None
            lines.append(text)
            if not more:
                return Reply(code, tuple(lines))
        raise HopFailed("451 4.5.0 reply too long")

    async def cmd(self, line: str, within: float | None = None) -> Reply:
        """``line`` sent; its reply within ``within`` seconds (default: the connection's)."""
        self.writer.write(line.encode("utf-8") + b"\r\n")
        await asyncio.wait_for(self.writer.drain(), within or self.timeout)
        return await self.reply(within)

    def close(self) -> None:
        self.writer.close()


def _extensions(reply: Reply) -> dict[str, str]:
    out = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.partition(" ")
        out[keyword.upper()] = params
    return out


def _tls_context(verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if not verify:                      # opportunistic TLS (RFC 7435)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def send(hop: Hop, options: ClientOptions, sender: str, recipients: Sequence[str],
               body: bytes, dsn: DsnOptions | None = None, *,
               require_tls: ssl.SSLContext | None = None,
               check_peer: Callable[[ssl.SSLObject], str | None] | None = None,
               pool: ConnectionPool | None = None,
               ) -> dict[str, str]:
    """Deliver ``body`` to ``recipients`` through ``hop``; each recipient's reply
    (2xx delivered, 4xx deferred, 5xx refused).  Raises :class:`HopFailed` when no
    address of the hop took the transaction.  ``require_tls``: STARTTLS is required,
    with this context verifying the certificate for ``hop.name`` (MTA-STS);
    ``check_peer``: after the handshake, a reason to refuse the server's certificates
    (DANE), or None.  ``pool``: idle connections to reuse and to give this one back to
    when its transaction went without error (not with ``require_tls`` or ``check_peer``,
    whose connections are checked each time)."""
    if require_tls is not None or check_peer is not None:
        pool = None
    dsn = dsn or DsnOptions()
    last = HopFailed("451 4.4.1 no address to connect to")
    for address in hop.addresses:
        key: PoolKey = (hop.name, address, hop.port, hop.relay)
        if pool is not None:
            try:
                reused = await _reuse(pool, key, hop, sender, recipients, body, dsn,
                                      options.rset_timeout)
            except HopFailed as e:
                if e.permanent:
                    raise
                last = e
                continue
            if reused is not None:
                return reused
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, hop.port), options.connect_timeout)
        except (OSError, TimeoutError) as e:
            last = HopFailed(f"451 4.4.1 cannot connect to {hop.name}[{address}]:{hop.port}: "
                             f"{type(e).__name__}")
            continue
        CONNECTIONS.labels("new").inc()
        conn = SmtpConnection(reader, writer, options.timeout)
        kept = False
        try:
            conn.ext = await _open(conn, hop, options, require_tls, check_peer)
            results = await _transaction(conn, hop, sender, recipients, body, dsn)
            kept = _give_back(pool, key, conn, results)
            if not kept:
                await _quit(conn)
            return results
        except HopFailed as e:
            if e.permanent:
                raise
            last = e
        except ssl.SSLCertVerificationError as e:
            if require_tls is None:     # tls_verify: as any failed connection
                last = HopFailed(f"451 4.4.2 connection to {hop.name}[{address}] failed: "
                                 f"{type(e).__name__}")
            else:
                last = HopFailed(f"451 4.7.5 certificate of {hop.name}[{address}] not "
                                 f"valid: {e.verify_message}", tls=True)
        except (OSError, TimeoutError, ssl.SSLError) as e:
            last = HopFailed(f"451 4.4.2 connection to {hop.name}[{address}] failed: "
                             f"{type(e).__name__}")
        finally:
            if not kept:
                conn.close()
    raise last


async def _reuse(pool: ConnectionPool, key: PoolKey, hop: Hop, sender: str,
                 recipients: Sequence[str], body: bytes, dsn: DsnOptions,
                 rset_timeout: float) -> dict[str, str] | None:
    """The transaction on an idle connection to ``key`` that still answers RSET with 250
    within ``rset_timeout`` seconds; None when there is none (one that does not answer in
    time is closed: a fresh one is made).
    A transaction that fails on it raises :class:`HopFailed` as on a fresh connection (it
    is not tried again here: its message may have been taken).  A connection that errored
    is closed, never given back."""
    while (conn := pool.take(key)) is not None:
        kept = False
        try:
            try:
                results = await _transaction(conn, hop, sender, recipients, body, dsn,
                                             rset=rset_timeout)
            except _Stale:
                continue
            except (OSError, TimeoutError, ssl.SSLError) as e:
                raise HopFailed(f"451 4.4.2 connection to {hop.name}[{key[1]}] failed: "
                                f"{type(e).__name__}") from None
            kept = _give_back(pool, key, conn, results)
            if not kept:
                await _quit(conn)
            return results
        finally:
            if not kept:
                conn.close()
    return None


def _give_back(pool: ConnectionPool | None, key: PoolKey, conn: SmtpConnection,
               results: dict[str, str]) -> bool:
    """Keep ``conn`` for the next message unless the server is closing it (421)."""
    if pool is None or any(r.startswith("421") for r in results.values()):
        return False
    return pool.give(key, conn)


async def _quit(conn: SmtpConnection) -> None:
    try:
        await conn.cmd("QUIT")
    except (HopFailed, OSError, TimeoutError):
        pass


async def _open(conn: SmtpConnection, hop: Hop, options: ClientOptions,
                require_tls: ssl.SSLContext | None = None,
                check_peer: Callable[[ssl.SSLObject], str | None] | None = None,
                ) -> dict[str, str]:
    """Greeting, EHLO, STARTTLS when offered, AUTH at a relay: the extensions offered."""
    greeting = await conn.reply()
    if greeting.code != 220:
        raise HopFailed(str(greeting))      # RFC 5321 section 5.1: try the next host
    ext = await _hello(conn, options.helo)
    if "STARTTLS" in ext:
        reply = await conn.cmd("STARTTLS")
        if reply.code == 220:
            await conn.writer.start_tls(require_tls or _tls_context(options.tls_verify),
                                        server_hostname=hop.name)
            conn.tls = True
            if check_peer is not None:
                refused = check_peer(conn.writer.get_extra_info("ssl_object"))
                if refused:
                    raise HopFailed(f"451 4.7.5 {refused}", tls=True)
            ext = await _hello(conn, options.helo)
    if require_tls is not None and not conn.tls:
        raise HopFailed(f"451 4.7.5 {hop.name} offers no STARTTLS, which the domain's "
                        "policy requires", tls=True)
    if hop.relay and options.username:
        await _auth(conn, options, ext)
    return ext


async def _rset(conn: SmtpConnection, within: float, *, sent: bool = False) -> None:
    """RSET on a kept connection (RFC 5321 section 4.1.1.5) answered with 250 within
    ``within`` seconds (``sent``: it went ahead in a pipelined group), else :class:`_Stale`.
    Section 4.5.3.2 gives RSET no timeout of its own: a short one, as the message can go
    at once on a new connection."""
    try:
        reply = await (conn.reply(within) if sent else conn.cmd("RSET", within))
    except (HopFailed, OSError, TimeoutError, ssl.SSLError):
        raise _Stale from None
    if reply.code != 250:
        raise _Stale
    CONNECTIONS.labels("reused").inc()


async def _transaction(conn: SmtpConnection, hop: Hop, sender: str, recipients: Sequence[str],
                       body: bytes, dsn: DsnOptions, *, rset: float | None = None
                       ) -> dict[str, str]:
    """MAIL, RCPT, DATA (or BDAT) on an open connection whose extensions are ``conn.ext``;
    ``rset``: a kept connection, RSET first, its reply due within that many seconds
    (:class:`_Stale` without a 250)."""
    ext = conn.ext
    binary = not is_text(body)
    eight_bit = not body.isascii()
    utf8 = not (sender.isascii() and all(r.isascii() for r in recipients))
    params = []
    if "SIZE" in ext:
        limit = ext["SIZE"].strip()
        if limit.isdigit() and int(limit) and len(body) > int(limit):
            raise HopFailed(f"552 5.3.4 message too big for {hop.name} ({limit} octets)",
                            permanent=True)
        params.append(f"SIZE={len(body)}")
    if binary:      # RFC 3030 section 3: no downgrade here: bounce
        if "BINARYMIME" not in ext or "CHUNKING" not in ext:
            raise HopFailed(f"554 5.6.3 {hop.name} does not accept binary data "
                            "(BINARYMIME)", permanent=True)
        params.append("BODY=BINARYMIME")
    elif eight_bit:
        if "8BITMIME" not in ext:       # RFC 6152 section 3: no downgrade here: bounce
            raise HopFailed(f"554 5.6.3 {hop.name} does not accept 8-bit data (8BITMIME)",
                            permanent=True)
        params.append("BODY=8BITMIME")
    if utf8:
        if "SMTPUTF8" not in ext:       # RFC 6531 section 3.2
            raise HopFailed(f"553 5.6.7 {hop.name} does not accept UTF-8 addresses "
                            "(SMTPUTF8)", permanent=True)
        params.append("SMTPUTF8")
    offers_dsn = "DSN" in ext
    if offers_dsn:      # RFC 3461 section 5.2.1: passed on unchanged
        if dsn.ret:
            params.append(f"RET={dsn.ret}")
        if dsn.envid:
            params.append(f"ENVID={xtext_encode(dsn.envid)}")
    mail = " ".join([f"MAIL FROM:<{sender}>", *params])
    rcpts = []
    for r in recipients:
        rcpt_params = ""
        if offers_dsn and dsn.notify.get(r):
            rcpt_params += f" NOTIFY={','.join(dsn.notify[r])}"
        if offers_dsn and dsn.orcpt.get(r):
            kind, _, address = dsn.orcpt[r].partition(";")
            rcpt_params += f" ORCPT={kind};{xtext_encode(address)}"
        rcpts.append(f"RCPT TO:<{r}>{rcpt_params}")
    if "PIPELINING" in ext and not binary:
        return await _pipelined(conn, mail, recipients, rcpts, body, dsn, offers_dsn, rset)
    if rset is not None:
        await _rset(conn, rset)
    reply = await conn.cmd(mail)
    if not reply.positive:
        raise HopFailed(str(reply), permanent=reply.permanent)
    results: dict[str, str] = {}
    accepted = []
    for r, line in zip(recipients, rcpts, strict=True):
        reply = await conn.cmd(line)
        results[r] = str(reply)
        if reply.positive:
            accepted.append(r)
    if accepted and binary:
        conn.writer.write(f"BDAT {len(body)} LAST\r\n".encode() + body)
        await conn.writer.drain()
        reply = await conn.reply()
    elif accepted:
        reply = await conn.cmd("DATA")
        if reply.code == 354:
            conn.writer.write(dot_stuff(body))
            await conn.writer.drain()
            reply = await conn.reply()
    for r in accepted:
        results[r] = str(reply)
        if reply.positive and not offers_dsn:
            dsn.relayed.add(r)
    return results


async def _pipelined(conn: SmtpConnection, mail: str, recipients: Sequence[str],
                     rcpts: list[str], body: bytes, dsn: DsnOptions,
                     offers_dsn: bool, rset: float | None = None) -> dict[str, str]:
    """MAIL, every RCPT and DATA sent at once to a host that offers PIPELINING (RFC 2920
    section 3.1: DATA ends a group), their replies read in order; the content only after
    354, and only when a recipient was accepted (else a lone "." ends a DATA the server
    took anyway, section 3.1).  Two round trips instead of two plus one per recipient.
    On a kept connection the RSET opens the group (section 3.1: RSET may appear anywhere
    in one) rather than taking a round trip of its own; without its 250 the connection is
    :class:`_Stale` and closed before any content went, so the server delivers nothing."""
    head = ("RSET",) if rset is not None else ()
    try:
        conn.writer.write("".join(f"{c}\r\n" for c in (*head, mail, *rcpts, "DATA"))
                          .encode("utf-8"))
        await asyncio.wait_for(conn.writer.drain(), conn.timeout)
    except (OSError, TimeoutError, ssl.SSLError):
        if rset is None:
            raise
        raise _Stale from None
    if rset is not None:
        await _rset(conn, rset, sent=True)
    mail_reply = await conn.reply()
    results: dict[str, str] = {}
    accepted = []
    for r in recipients:
        reply = await conn.reply()
        results[r] = str(reply)
        if reply.positive and mail_reply.positive:
            accepted.append(r)
    data_reply = await conn.reply()
    if data_reply.code == 354:
        conn.writer.write(dot_stuff(body) if accepted else b".\r\n")
        await asyncio.wait_for(conn.writer.drain(), conn.timeout)
        data_reply = await conn.reply()
    if not mail_reply.positive:
        raise HopFailed(str(mail_reply), permanent=mail_reply.permanent)
    for r in accepted:
        results[r] = str(data_reply)
        if data_reply.positive and not offers_dsn:
            dsn.relayed.add(r)
    return results


async def _hello(conn: SmtpConnection, helo: str) -> dict[str, str]:
    reply = await conn.cmd(f"EHLO {helo}")
    if reply.code == 250:
        return _extensions(reply)
    reply = await conn.cmd(f"HELO {helo}")
    if reply.code != 250:
        raise HopFailed(str(reply))
    return {}


async def _auth(conn: SmtpConnection, options: ClientOptions, ext: dict[str, str]) -> None:
    if options.require_tls_for_auth and not conn.tls:
        raise HopFailed("451 4.7.10 the relay offers no TLS: AUTH not sent in clear")
    if "PLAIN" not in ext.get("AUTH", "").upper().split():
        raise HopFailed("451 4.7.12 the relay does not offer AUTH PLAIN")
    token = base64.b64encode(f"\0{options.username}\0{options.password}".encode()).decode()
    reply = await conn.cmd(f"AUTH PLAIN {token}")
    if reply.code != 235:
        raise HopFailed(f"451 4.7.0 AUTH at the relay failed: {reply}")
