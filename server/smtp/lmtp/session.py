"""One LMTP transaction's state machine (RFC 2033), without sockets.

The connection (:mod:`.connection`) cuts lines and the data; this module answers each
command and, after the data, each recipient.  It asks the directory and the delivery
pipeline through :class:`server.smtp.handler.SmtpHandler`, the same policy as SMTP's MX:
local recipients only (554 5.7.1 for any other domain: no relay), 550 5.1.1 for unknown
ones, a directory failure 451 4.4.3.

RFC 2033 differences from SMTP that live here:

* LHLO replaces HELO and EHLO (section 4.1), which get 500;
* after the data, one reply per accepted recipient, in RCPT order (section 4.2), each
  from that recipient's own delivery result (:meth:`SmtpHandler.deliver_each`);
* DATA without an accepted recipient is 503 (section 4.2);
* no AUTH, STARTTLS, VRFY or EXPN: the client is the MTA.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field

from server.smtp.handler import Recipient, SenderInfo, SmtpHandler, Transaction
from server.smtp.logs import ConnectionLog
from server.smtp.wire.data import DataProblem, DataResult
from server.smtp.wire.params import check_mail_params
from server.smtp.wire.path import PathError, parse_mail, parse_rcpt

from .wire import Command

log = logging.getLogger(__name__)

LISTENER = "lmtp"   # the metric label and SenderInfo.listener of LMTP connections


@dataclass(frozen=True, slots=True)
class LmtpOptions:
    """The [lmtp] settings a connection needs."""

    hostname: str
    max_message_size: int = 52_428_800
    max_recipients: int = 1000
    max_command_length: int = 2048
    smtputf8: bool = True
    timeout: float = 300.0
    delivery_timeout: float = 300.0
    max_bad_commands: int = 20


class Next(enum.Enum):
    COMMAND = "command"     # read the next command
    DATA = "data"           # read the message (after 354)
    CLOSE = "close"         # close the connection (after QUIT)


@dataclass(frozen=True, slots=True)
class Answer:
    replies: tuple[str, ...]
    next: Next = Next.COMMAND


# Commands of SMTP that LMTP's client has no use for here.
_NOT_OFFERED = frozenset({"AUTH", "STARTTLS", "VRFY", "EXPN", "HELP", "TURN", "ETRN", "BDAT",
                          "ATRN", "SEND", "SOML", "SAML"})

_DATA_REPLIES: dict[DataProblem, str] = {
    DataProblem.TOO_BIG: "552 5.3.4 Message size exceeds fixed maximum of {} octets",
    DataProblem.LINE_TOO_LONG: "500 5.5.2 Line too long (RFC 5321 section 4.5.3.1.6)",
    DataProblem.BARE_LINE_ENDING: "550 5.6.0 Bare CR or LF in message (RFC 5321 section "
                                  "2.3.8); lines must end with CRLF",
}


@dataclass
class LmtpSession:
    options: LmtpOptions
    handler: SmtpHandler
    conn_id: str
    peer_ip: str = "unknown"
    helo: str | None = None
    tx: Transaction | None = None
    log: ConnectionLog = field(init=False)

    def __post_init__(self) -> None:
        self.log = ConnectionLog(log, self.conn_id)

    def greeting(self) -> str:
        return f"220 {self.options.hostname} LMTP fdbmail ready"

    def _who(self) -> SenderInfo:
        return SenderInfo(LISTENER, self.conn_id, self.peer_ip, self.helo or "", True, None,
                          None)

    async def command(self, cmd: Command) -> Answer:
        verb = cmd.verb
        if verb == "LHLO":
            return self._lhlo(cmd.arg)
        if verb in ("HELO", "EHLO"):
            return _one("500 5.5.1 Use LHLO: this is LMTP (RFC 2033 section 4.1)")
        if verb == "NOOP":
            return _one("250 2.0.0 OK")
        if verb == "QUIT":
            return Answer((f"221 2.0.0 {self.options.hostname} Bye",), Next.CLOSE)
        if verb == "RSET":
            if cmd.arg:
                return _one("501 5.5.4 Syntax: RSET")
            self.tx = None
            return _one("250 2.0.0 OK")
        if verb in _NOT_OFFERED:
            return _one(f"502 5.5.1 {verb} not available over LMTP")
        if verb not in ("MAIL", "RCPT", "DATA"):
            return _one("500 5.5.2 Command unrecognized")
        if self.helo is None:
            return _one("503 5.5.1 Send LHLO first")
        if verb == "MAIL":
            return self._mail(cmd.arg)
        if verb == "RCPT":
            return await self._rcpt(cmd.arg)
        return self._data(cmd.arg)

    def _lhlo(self, arg: str) -> Answer:
        if not arg or " " in arg:
            return _one("501 5.5.4 Syntax: LHLO hostname")
        self.helo = arg
        self.tx = None
        opts = self.options
        lines = [opts.hostname, "PIPELINING"]
        if opts.max_message_size:
            lines.append(f"SIZE {opts.max_message_size}")
        lines += ["8BITMIME", "ENHANCEDSTATUSCODES"]
        if opts.smtputf8:
            lines.append("SMTPUTF8")
        text = "\r\n".join(f"250{'-' if i < len(lines) - 1 else ' '}{line}"
                           for i, line in enumerate(lines))
        return _one(text)

    def _mail(self, arg: str) -> Answer:
        if self.tx is not None:
            return _one("503 5.5.1 Nested MAIL command")
        try:
            path = parse_mail(arg)
        except PathError as e:
            return _one(e.reply)
        refusal = check_mail_params(path, extended=True, smtputf8=self.options.smtputf8,
                                    max_size=self.options.max_message_size)
        if refusal is not None:
            return _one(refusal)
        self.tx = Transaction(path.address, utf8="SMTPUTF8" in path.params)
        return _one("250 2.1.0 Sender OK")

    async def _rcpt(self, arg: str) -> Answer:
        tx = self.tx
        if tx is None:
            return _one("503 5.5.1 Need MAIL command first")
        if len(tx.recipients) >= self.options.max_recipients:
            return _one("452 4.5.3 Too many recipients")
        try:
            path = parse_rcpt(arg)
        except PathError as e:
            return _one(e.reply)
        if path.params:
            return _one(f"555 5.5.4 RCPT parameter {next(iter(path.params))} not supported")
        if not path.is_ascii and not tx.utf8:
            return _one("553 5.6.7 Non-ASCII address needs SMTPUTF8")
        decision = await self.handler.check_recipient(self._who(), path)
        if decision.accepted:
            tx.recipients.append(Recipient(path.address, decision.principals))
        self.log.info("RCPT TO:<%s>: %s", path.address, decision.reply[:9])
        return _one(decision.reply)

    def _data(self, arg: str) -> Answer:
        if self.tx is None:
            return _one("503 5.5.1 Need MAIL command first")
        if not self.tx.recipients:
            return _one("503 5.5.1 No valid recipients")     # RFC 2033 section 4.2
        if arg:
            return _one("501 5.5.4 Syntax: DATA")
        return Answer(("354 Start mail input; end with <CRLF>.<CRLF>",), Next.DATA)

    async def end_of_data(self, result: DataResult) -> Answer:
        """One reply per accepted recipient, in RCPT order (RFC 2033 section 4.2)."""
        tx = self.tx
        assert tx is not None and tx.recipients
        self.tx = None
        count = len(tx.recipients)
        if result.problem is not None:
            self.handler.refused(LISTENER, result.problem.value)
            self.log.info("DATA refused (%s, %d octets)", result.problem.value, result.size)
            reply = _DATA_REPLIES[result.problem].format(self.options.max_message_size)
            return Answer((reply,) * count)
        delivery = asyncio.ensure_future(
            self.handler.deliver_each(self._who(), tx, result.content))
        try:
            # shielded: the delivery runs to its end even if the client goes away; it is
            # idempotent, and the MTA, without our replies, sends it again
            replies = await asyncio.wait_for(asyncio.shield(delivery),
                                             self.options.delivery_timeout or None)
        except TimeoutError:
            self.log.error("delivery still running after %.0f s; answering 451",
                           self.options.delivery_timeout)
            self.handler.refused(LISTENER, "delivery_timeout", result="tempfail")
            replies = ["451 4.3.0 Delivery is taking too long, try again later"] * count
        self.log.info("DATA %d octets for %d recipients: %s", result.size, count,
                      ", ".join(r[:9] for r in replies))
        return Answer(tuple(replies))


def _one(reply: str) -> Answer:
    return Answer((reply,))


__all__ = ["LISTENER", "Answer", "LmtpOptions", "LmtpSession", "Next"]
