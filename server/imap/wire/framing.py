"""The connection-level reader: bytes in, events out, no I/O (the h11 shape).

The I/O loop calls :meth:`CommandReader.feed` with what it read and then :meth:`next_event`
until it returns :data:`NEED_DATA`. Events:

* a parsed command (:mod:`.commands`);
* :class:`ContinuationRequired` — the client announced a synchronizing literal ``{n}`` and waits
  for a continuation request (``+ ...``, RFC 9051 §7.5) before it sends the octets;
* :class:`Rejected` — a command the session answers with ``BAD`` (or ``NO [TOOBIG]``) and then
  goes on: the reader has already resynchronized on the next command;
* :class:`AuthenticateLine` / :class:`IdleDone` in the modes the session sets for an
  AUTHENTICATE exchange (RFC 9051 §6.2.2) or an IDLE (RFC 2177 §3).

Literals are bounded before their octets are accepted (RFC 7888 §4-5, RFC 9051 §7.1 TOOBIG).
RFC 7888 writes every non-synchronizing literal ``{n+}``; under LITERAL- (``literal_plus``
off) those over 4096 octets are refused. ``{n-}`` is not in the RFC's grammar; it is read as a
non-synchronizing literal of at most 4096 octets, so a client that sends it is never
desynchronized.
A refused synchronizing literal is never sent by the client; a refused non-synchronizing one
(``{n+}``, ``{n-}``) is sent regardless, so its octets and the rest of the command are skipped
without being buffered.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from server.imap.wire.commands import Command
from server.imap.wire.parser import CommandError, parse_command
from server.imap.wire.responses import Code, Tagged, Untagged

__all__ = [
    "CommandReader", "Limits", "Mode", "NeedData", "NEED_DATA", "ContinuationRequired",
    "Rejected", "AuthenticateLine", "IdleDone", "Event", "LITERAL_MINUS_MAX",
]

LITERAL_MINUS_MAX = 4096  # RFC 7888 §5: LITERAL- allows non-synchronizing literals up to 4096
_MARKER = re.compile(rb"(~?)\{(\d+)([+-]?)\}\r\n\Z")
_MARKER_TAIL = 32  # a literal marker fits in the last bytes of a line
_TAG = re.compile(rb"([^(){ \x00-\x1f\x7f%*\"\\+\x80-\xff]+) ")
_NAME = re.compile(rb"[^ \r\n]+ (?:UID )?([A-Za-z]+)", re.IGNORECASE)
_UPLOADS = (b"APPEND", b"REPLACE")  # literals over the limit are NO [TOOBIG], not BAD


class Mode(enum.Enum):
    COMMAND = "command"
    AUTHENTICATE = "authenticate"
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class Limits:
    """``max_line``: octets of one line outside literals; ``max_literal``: one literal of a
    command other than APPEND / REPLACE; ``max_upload``: one message literal (APPENDLIMIT,
    RFC 7889); ``max_command``: a whole command with its literals; ``literal_plus``: LITERAL+
    (any size) rather than LITERAL- (non-synchronizing only up to 4096). The session may
    assign ``reader.limits`` at any time between events, e.g. small limits before login and
    the account's APPENDLIMIT after it."""

    max_line: int = 8192
    max_literal: int = 65536
    max_upload: int = 64 * 1024 * 1024
    max_command: int = 80 * 1024 * 1024
    literal_plus: bool = True


@dataclass(frozen=True, slots=True)
class NeedData:
    pass


NEED_DATA = NeedData()


@dataclass(frozen=True, slots=True)
class ContinuationRequired:
    """Send a continuation request; the client then sends ``size`` octets."""

    size: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """Answer ``<tag or *> <status> [<code>] <text>``; the stream is already resynchronized."""

    tag: str | None
    text: str
    status: str = "BAD"
    code: str | None = None

    def response(self) -> Tagged | Untagged:
        """The answer: tagged when the tag was read, else ``* BAD`` (RFC 9051 §7.1.3)."""
        code = Code(self.code) if self.code is not None else None
        if self.tag is None:
            return Untagged(self.status, self.text, code)
        return Tagged(self.tag, self.status, self.text, code)


@dataclass(frozen=True, slots=True)
class AuthenticateLine:
    """One client line of an AUTHENTICATE exchange, without CRLF (``*`` cancels)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class IdleDone:
    pass


Event = Command | NeedData | ContinuationRequired | Rejected | AuthenticateLine | IdleDone


class CommandReader:
    """The client side of one connection as the server reads it."""

    def __init__(self, limits: Limits | None = None, utf8: bool = False) -> None:
        self.limits = limits or Limits()
        self.utf8 = utf8
        self.mode = Mode.COMMAND
        self._buf = bytearray()
        self._pending = bytearray()  # the command so far: lines and literal octets
        self._literal = 0  # octets of an accepted literal still to read into _pending
        self._skip = 0  # octets of a refused literal still to throw away
        self._discard_line = False  # inside an over-long line: throw away up to its CRLF
        self._tail = b""  # the last octets of a discarded line, to find a literal marker
        self._draining = False  # after a refusal: throw away the rest of the command

    # -- what the session controls ---------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._buf += data

    def set_mode(self, mode: Mode) -> None:
        """AUTHENTICATE and IDLE read plain lines until the session sets COMMAND again."""
        self.mode = mode

    def set_utf8(self, utf8: bool) -> None:
        """After ENABLE IMAP4rev2 / UTF8=ACCEPT mailbox names are UTF-8 (RFC 9051 §5.1)."""
        self.utf8 = utf8

    def take_buffered(self) -> bytes:
        """Octets received but not read yet; cleared. After STARTTLS they must be thrown away
        (RFC 9051 §11.1, command injection); after COMPRESS they are compressed data."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    # -- events ----------------------------------------------------------------------------

    def next_event(self) -> Event:
        while True:
            if self._skip:
                n = min(self._skip, len(self._buf))
                del self._buf[:n]
                self._skip -= n
                if self._skip:
                    return NEED_DATA
                continue
            if self._literal:
                n = min(self._literal, len(self._buf))
                self._pending += self._buf[:n]
                del self._buf[:n]
                self._literal -= n
                if self._literal:
                    return NEED_DATA
                continue
            if self._discard_line:
                if not self._discard_to_line_end():
                    return NEED_DATA
                continue
            end = self._buf.find(b"\n")
            too_long = end + 1 > self.limits.max_line + 2
            if end < 0:
                too_long = len(self._buf) > self.limits.max_line
                if not too_long:
                    return NEED_DATA
            if too_long:
                refusal = self._line_too_long()
                if refusal is not None:
                    return refusal
                continue
            line = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            event = self._line(line)
            if event is not None:
                return event

    # -- internals -------------------------------------------------------------------------

    def _tag(self) -> str | None:
        m = _TAG.match(self._pending)
        return m.group(1).decode("ascii") if m else None

    def _reset(self) -> None:
        self._pending = bytearray()

    def _line_too_long(self) -> Rejected | None:
        """Start throwing the line away; the refusal, unless the command was refused already."""
        head = bytes(self._pending) + bytes(self._buf[:200])
        tag = None
        m = _TAG.match(head)
        if m and self.mode is Mode.COMMAND:
            tag = m.group(1).decode("ascii")
        self._discard_line = True
        self._tail = b""
        if self._draining:
            return None
        self._draining = True
        self._reset()
        return Rejected(tag, "line too long")

    def _discard_to_line_end(self) -> bool:
        """Throw away the over-long line; True once its CRLF (and any literal) is consumed."""
        end = self._buf.find(b"\n")
        if end < 0:
            self._tail = (self._tail + bytes(self._buf))[-_MARKER_TAIL:]
            self._buf.clear()
            return False
        tail = (self._tail + bytes(self._buf[: end + 1]))[-_MARKER_TAIL:]
        del self._buf[: end + 1]
        self._discard_line = False
        self._after_discarded_line(tail)
        return True

    def _after_discarded_line(self, line_end: bytes) -> None:
        """The rest of a refused command: a non-synchronizing literal still comes and is
        skipped; a synchronizing one does not (no continuation is sent); else it is over."""
        m = _MARKER.search(line_end)
        if m and m.group(3):
            self._skip = int(m.group(2))
        else:
            self._draining = False

    def _line(self, line: bytes) -> Event | None:
        if self.mode is Mode.AUTHENTICATE and not self._draining:
            return AuthenticateLine(line.rstrip(b"\r\n"))
        if self.mode is Mode.IDLE and not self._draining:
            if line.rstrip(b"\r\n").upper() == b"DONE":
                return IdleDone()
            return Rejected(None, "expected DONE")
        if self._draining:
            self._after_discarded_line(line[-_MARKER_TAIL:])
            return None
        if not line.endswith(b"\r\n"):
            self._pending += line
            tag = self._tag()
            self._reset()
            return Rejected(tag, "lines must end with CRLF")
        if not self._pending and line == b"\r\n":
            return None  # an empty line between commands is ignored
        self._pending += line
        m = _MARKER.search(line)
        if m is None:
            return self._complete()
        return self._literal_announced(len(m.group(2)), int(m.group(2)), m.group(3))

    def _literal_announced(self, digits: int, size: int, kind: bytes) -> Event | None:
        limits = self.limits
        upload = self._is_upload()
        limit = limits.max_upload if upload else limits.max_literal
        refusal: Rejected | None = None
        tag = self._tag()
        if digits > 20 or size > limit or len(self._pending) + size > limits.max_command:
            if upload:
                refusal = Rejected(tag, "message too large", "NO", "TOOBIG")
            else:
                refusal = Rejected(tag, "literal too large")
        elif kind and (not limits.literal_plus or kind == b"-") and size > LITERAL_MINUS_MAX:
            # RFC 7888 §5 (LITERAL-): non-synchronizing literals up to 4096 octets only
            refusal = Rejected(tag, "non-synchronizing literal over 4096 octets (LITERAL-)")
        if refusal is not None:
            self._reset()
            if kind:
                # non-synchronizing: the octets come anyway; skip them and the rest
                self._skip = size
                self._draining = True
            return refusal
        self._literal = size
        if kind:
            return None
        return ContinuationRequired(size)

    def _is_upload(self) -> bool:
        m = _NAME.match(self._pending)
        return m is not None and m.group(1).upper() in _UPLOADS

    def _complete(self) -> Event:
        data = bytes(self._pending)
        self._reset()
        try:
            return parse_command(data, self.utf8)
        except CommandError as exc:
            return Rejected(exc.tag, exc.text, exc.status, exc.code)
