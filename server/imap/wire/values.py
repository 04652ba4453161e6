"""Choosing the wire form of a value (RFC 9051 §4): atom, quoted string, literal or literal8,
NIL, number, parenthesised list. Used by the response serializer and the command serializer.

A string is quoted when it is text without CR, LF or NUL (8-bit only when ``utf8``: IMAP4rev2 and
UTF8=ACCEPT quoted strings carry UTF-8, RFC 9051 §4.3 / RFC 6855 §3), otherwise a literal;
octets with NUL need ``literal8`` (RFC 3516 §4.3), which the caller asks for with :class:`Binary`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "Atom", "Binary", "Raw", "Value", "render", "render_string", "render_astring", "is_atom",
    "imap_datetime", "MONTHS",
]

_ATOM = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+")
_ASTRING = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\x80-\xff]+")
_TEXT7 = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*")
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_ESCAPE = re.compile(rb'(["\\])')
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class Atom:
    """Sent as is: keywords, flags, capability names."""

    text: str


@dataclass(frozen=True, slots=True)
class Binary:
    """Octets sent as literal8 ``~{n}`` (RFC 3516 §4.2: BINARY[] data, which may hold NUL)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes already in wire form (an ENVELOPE or BODYSTRUCTURE rendered elsewhere)."""

    data: bytes


Value = (
    Atom | Binary | Raw | str | bytes | int | None | tuple["Value", ...] | list["Value"]
)


def is_atom(data: bytes) -> bool:
    return _ATOM.fullmatch(data) is not None and data.upper() != b"NIL"


def _quotable(data: bytes, utf8: bool) -> bool:
    if _TEXT7.fullmatch(data) is not None:
        return True
    if not utf8 or _CTL.search(data) or b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def render_string(data: bytes, utf8: bool = False) -> bytes:
    """string = quoted / literal (RFC 9051 §4.3)."""
    if b"\x00" in data:
        return b"~{%d}\r\n" % len(data) + data
    if _quotable(data, utf8):
        return b'"' + _ESCAPE.sub(rb"\\\1", data) + b'"'
    return b"{%d}\r\n" % len(data) + data


def render_astring(data: bytes, utf8: bool = False) -> bytes:
    """astring: bare when every octet is an ASTRING-CHAR, else a string."""
    if _ASTRING.fullmatch(data) is not None and data.upper() != b"NIL":
        return data
    return render_string(data, utf8)


def render(value: Value, utf8: bool = False) -> bytes:
    """Any value: str and bytes as strings, None as NIL, sequences as lists."""
    if value is None:
        return b"NIL"
    if isinstance(value, bool):
        raise TypeError("booleans have no IMAP form")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, str):
        return render_string(value.encode("utf-8", "surrogateescape"), utf8)
    if isinstance(value, bytes):
        return render_string(value, utf8)
    if isinstance(value, Atom):
        return value.text.encode("utf-8")
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, Binary):
        return b"~{%d}\r\n" % len(value.data) + value.data
    return b"(" + b" ".join(render(v, utf8) for v in value) + b")"


def imap_datetime(when: datetime) -> Raw:
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE."""
    offset = when.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    text = (
        f'"{when.day:2d}-{MONTHS[when.month - 1]}-{when.year:04d} '
        f'{when.hour:02d}:{when.minute:02d}:{when.second:02d} '
        f'{sign}{minutes // 60:02d}{minutes % 60:02d}"'
    )
    return Raw(text.encode("ascii"))
