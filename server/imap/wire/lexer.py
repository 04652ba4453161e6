"""The primitives of the IMAP grammar (RFC 9051 §9, RFC 3501 §9) over one complete command.

A :class:`Cursor` reads the bytes the framing assembled: the command line with each literal's
octets inline after its ``{n}`` CRLF, ending in CRLF. Methods are named after the ABNF rule they
read and raise :class:`ParseError` on anything else; keywords are case-insensitive (§9 note 1).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar
from datetime import date, datetime, timedelta, timezone

from server.imap.wire.errors import ParseError
from server.imap.wire.mutf7 import MailboxNameError, decode_mailbox
from server.imap.wire.sequence import STAR, SeqNumber, SequenceSet
from server.imap.wire.values import MONTHS

__all__ = ["Cursor", "MONTHS", "MAX_NUMBER", "MAX_NUMBER64"]

T = TypeVar("T")

MAX_NUMBER = 4_294_967_295  # number (RFC 9051 §9): unsigned 32-bit
MAX_NUMBER64 = 9_223_372_036_854_775_807  # number64: signed 63-bit
_MONTH_INDEX = {m.upper().encode(): i + 1 for i, m in enumerate(MONTHS)}

# atom-specials: "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
_ATOM = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+")
_ASTRING_CHARS = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\x80-\xff]+")  # ATOM-CHAR / "]"
_LIST_CHARS = re.compile(rb"[^(){ \x00-\x1f\x7f\"\\\x80-\xff]+")  # ATOM-CHAR / wildcards / "]"
_TAG = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\+\x80-\xff]+")  # ASTRING-CHAR except "+"
_LITERAL = re.compile(rb"(~?)\{(\d{1,20})([+-]?)\}\r\n")
_DIGITS = re.compile(rb"\d+")
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_UNESCAPE = re.compile(rb'\\(["\\])')
_DATE_TEXT = re.compile(rb"(\d{1,2})-([A-Za-z]{3})-(\d{4})")
_DATE_TIME = re.compile(
    rb'"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"'
)


class Cursor:
    """A position in one command; ``utf8`` selects how mailbox names are decoded."""

    __slots__ = ("buf", "pos", "utf8")

    def __init__(self, buf: bytes, pos: int = 0, utf8: bool = False) -> None:
        self.buf = buf
        self.pos = pos
        self.utf8 = utf8

    # -- structure -------------------------------------------------------------------------

    def fail(self, text: str) -> ParseError:
        return ParseError(text)

    def at(self, token: bytes) -> bool:
        """Whether the next bytes are ``token`` (ASCII case-insensitive)."""
        end = self.pos + len(token)
        return self.buf[self.pos : end].upper() == token.upper()

    def at_keyword(self, word: bytes) -> bool:
        """``word`` followed by a delimiter (so ``ALL`` does not match ``ALLX``)."""
        if not self.at(word):
            return False
        nxt = self.buf[self.pos + len(word) : self.pos + len(word) + 1]
        return nxt in (b" ", b"\r", b")", b"(", b"[", b"")

    def take(self, token: bytes) -> bool:
        if self.at(token):
            self.pos += len(token)
            return True
        return False

    def take_keyword(self, word: bytes) -> bool:
        if self.at_keyword(word):
            self.pos += len(word)
            return True
        return False

    def expect(self, token: bytes, what: str | None = None) -> None:
        if not self.take(token):
            raise self.fail(f"expected {what or token.decode()!s}")

    def sp(self) -> None:
        """SP: exactly one space (RFC 9051 §9)."""
        self.expect(b" ", "a space")

    def peek(self) -> bytes:
        return self.buf[self.pos : self.pos + 1]

    def end(self) -> None:
        """CRLF that ends the command; nothing may follow."""
        if self.buf[self.pos :] != b"\r\n":
            raise self.fail("unexpected characters at the end of the command")
        self.pos = len(self.buf)

    def at_end(self) -> bool:
        return self.buf[self.pos :] == b"\r\n"

    def paren_list(self) -> bool:
        """Consume "(" and report whether the list is empty (")" consumed too)."""
        self.expect(b"(")
        return self.take(b")")

    def items(self, read: Callable[[], T], empty_ok: bool = False) -> list[T]:
        """"(" item *(SP item) ")", each item read by ``read``; "()" only if ``empty_ok``."""
        if self.paren_list():
            if empty_ok:
                return []
            raise self.fail("empty list")
        out = [read()]
        while self.take(b" "):
            out.append(read())
        self.expect(b")")
        return out

    # -- tokens ----------------------------------------------------------------------------

    def tag(self) -> str:
        """tag = 1*<any ASTRING-CHAR except "+"> (RFC 9051 §9)."""
        m = _TAG.match(self.buf, self.pos)
        if m is None:
            raise self.fail("missing or invalid tag")
        self.pos = m.end()
        return m.group().decode("ascii")

    def atom(self, what: str = "an atom") -> str:
        """atom = 1*ATOM-CHAR."""
        m = _ATOM.match(self.buf, self.pos)
        if m is None:
            raise self.fail(f"expected {what}")
        self.pos = m.end()
        return m.group().decode("ascii")

    def number(self, limit: int = MAX_NUMBER, what: str = "a number") -> int:
        """number = 1*DIGIT, at most 2^32-1 (number64: 2^63-1)."""
        m = _DIGITS.match(self.buf, self.pos)
        if m is None or len(m.group()) > 20 or int(m.group()) > limit:
            raise self.fail(f"expected {what}")
        self.pos = m.end()
        return int(m.group())

    def nz_number(self, limit: int = MAX_NUMBER, what: str = "a non-zero number") -> int:
        n = self.number(limit, what)
        if n == 0:
            raise self.fail(f"expected {what}")
        return n

    def _literal(self, allow8: bool) -> tuple[bytes, bool]:
        m = _LITERAL.match(self.buf, self.pos)
        if m is None:
            raise self.fail("invalid literal")
        if m.group(1) and not allow8:
            raise self.fail("literal8 is not allowed here")
        size = int(m.group(2))
        start = m.end()
        if start + size > len(self.buf):
            raise self.fail("truncated literal")
        data = self.buf[start : start + size]
        if not m.group(1) and b"\x00" in data:
            # literal = ... *CHAR8; NUL needs literal8 (RFC 3516 §4.3)
            raise self.fail("NUL octet in a literal (use literal8)")
        self.pos = start + size
        return data, bool(m.group(1))

    def quoted(self) -> bytes:
        m = _QUOTED.match(self.buf, self.pos)
        if m is None:
            raise self.fail("invalid quoted string")
        self.pos = m.end()
        return _UNESCAPE.sub(rb"\1", m.group(1))

    def string(self, allow8: bool = False) -> bytes:
        """string = quoted / literal (literal8 where ``allow8``)."""
        c = self.peek()
        if c == b'"':
            return self.quoted()
        if c in (b"{", b"~"):
            return self._literal(allow8)[0]
        raise self.fail("expected a string")

    def is_literal8(self) -> bool:
        return self.peek() == b"~"

    def astring(self) -> bytes:
        """astring = 1*ASTRING-CHAR / string."""
        if self.peek() in (b'"', b"{"):
            return self.string()
        m = _ASTRING_CHARS.match(self.buf, self.pos)
        if m is None:
            raise self.fail("expected an atom or string")
        self.pos = m.end()
        return m.group()

    def text_astring(self) -> str:
        """An astring read as UTF-8 text; octets that are not UTF-8 survive as surrogates."""
        return self.astring().decode("utf-8", "surrogateescape")

    def nstring(self, allow8: bool = False) -> bytes | None:
        if self.take_keyword(b"NIL"):
            return None
        return self.string(allow8)

    def nil(self) -> bool:
        return self.take_keyword(b"NIL")

    def mailbox(self) -> str:
        """mailbox = "INBOX" / astring, decoded per the session's mode (RFC 9051 §5.1.3)."""
        raw = self.astring()
        try:
            return decode_mailbox(raw, self.utf8)
        except MailboxNameError as exc:
            raise self.fail(f"invalid mailbox name: {exc}") from None

    def list_mailbox(self) -> str:
        """list-mailbox = 1*list-char / string (RFC 9051 §6.3.9)."""
        if self.peek() in (b'"', b"{"):
            raw = self.string()
        else:
            m = _LIST_CHARS.match(self.buf, self.pos)
            if m is None:
                raise self.fail("expected a mailbox pattern")
            self.pos = m.end()
            raw = m.group()
        try:
            return decode_mailbox(raw, self.utf8)
        except MailboxNameError as exc:
            raise self.fail(f"invalid mailbox pattern: {exc}") from None

    def flag(self, allow_star: bool = False) -> str:
        """flag = "\\Answered" / ... / flag-keyword / flag-extension (RFC 9051 §9)."""
        if self.take(b"\\"):
            if allow_star and self.take(b"*"):
                return "\\*"
            return canonical_flag("\\" + self.atom("a flag name"))
        return self.atom("a flag")

    def flag_list(self) -> tuple[str, ...]:
        """flag-list = "(" [flag *(SP flag)] ")"."""
        return tuple(self.items(self.flag, empty_ok=True))

    def store_flags(self) -> tuple[str, ...]:
        """flag-list / (flag *(SP flag)) as STORE accepts (RFC 9051 §9 store-att-flags)."""
        if self.peek() == b"(":
            return self.flag_list()
        flags = [self.flag()]
        while self.take(b" "):
            flags.append(self.flag())
        return tuple(flags)

    def seq_number(self) -> SeqNumber:
        if self.take(b"*"):
            return STAR
        return self.nz_number(what="a sequence number")

    def sequence_set(self) -> SequenceSet:
        """sequence-set / "$" (RFC 9051 §9, RFC 5182 §2)."""
        if self.take(b"$"):
            return SequenceSet(saved=True)
        ranges: list[tuple[SeqNumber, SeqNumber]] = []
        while True:
            a = self.seq_number()
            b = self.seq_number() if self.take(b":") else a
            ranges.append((a, b))
            if not self.take(b","):
                return SequenceSet(tuple(ranges))

    def uid_set(self) -> SequenceSet:
        """uid-set (RFC 9051 §9): like a sequence set, used for UIDs."""
        return self.sequence_set()

    def date(self) -> date:
        """date = date-text / DQUOTE date-text DQUOTE (RFC 9051 §9)."""
        quoted = self.take(b'"')
        m = _DATE_TEXT.match(self.buf, self.pos)
        if m is None:
            raise self.fail("expected a date (d-Mon-yyyy)")
        self.pos = m.end()
        if quoted:
            self.expect(b'"')
        return _make_date(m.group(1), m.group(2), m.group(3))

    def date_time(self) -> datetime:
        """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE."""
        m = _DATE_TIME.match(self.buf, self.pos)
        if m is None:
            raise self.fail('expected a date-time ("dd-Mon-yyyy hh:mm:ss +zzzz")')
        day = _make_date(m.group(1).strip(), m.group(2), m.group(3))
        hh, mm, ss = int(m.group(4)), int(m.group(5)), int(m.group(6))
        zh, zm = int(m.group(8)), int(m.group(9))
        if hh > 23 or mm > 59 or ss > 60 or zm > 59:
            raise self.fail("invalid time in date-time")
        offset = timedelta(hours=zh, minutes=zm)
        self.pos = m.end()
        return datetime(
            day.year, day.month, day.day, hh, mm, min(ss, 59),
            tzinfo=timezone(-offset if m.group(7) == b"-" else offset),
        )


def _make_date(day: bytes, month: bytes, year: bytes) -> date:
    mon = _MONTH_INDEX.get(month.upper())
    if mon is None:
        raise ParseError("invalid month in date")
    try:
        return date(int(year), mon, int(day))
    except ValueError:
        raise ParseError("invalid date") from None


_SYSTEM_FLAGS = {
    f.upper(): f
    for f in (
        "\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent",
        "\\Noselect", "\\Noinferiors", "\\Marked", "\\Unmarked", "\\HasChildren",
        "\\HasNoChildren", "\\NonExistent", "\\Subscribed", "\\Remote", "\\All", "\\Archive",
        "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash", "\\Important",
    )
}


def canonical_flag(flag: str) -> str:
    """System flags and mailbox attributes are case-insensitive: one spelling for each."""
    return _SYSTEM_FLAGS.get(flag.upper(), flag)
