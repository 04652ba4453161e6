"""Commands of any state and connection set-up, with the RFCs' examples (sections cited)."""

from __future__ import annotations

import pytest

from server.imap.wire.commands import (
    Authenticate, Capability, Command, Compress, Enable, Id, Idle, Login, Logout, Namespace,
    Noop, StartTLS, Unauthenticate,
)
from server.imap.wire.parser import parse_command

from ._feed import expect_bad

EXAMPLES: list[tuple[str, bytes, Command]] = [
    ("RFC 9051 §6.1.1", b"abcd CAPABILITY\r\n", Capability("abcd")),
    ("RFC 9051 §6.1.2", b"a002 NOOP\r\n", Noop("a002")),
    ("RFC 9051 §6.1.3", b"A023 LOGOUT\r\n", Logout("A023")),
    ("RFC 9051 §6.2.1", b"a002 STARTTLS\r\n", StartTLS("a002")),
    ("RFC 9051 §6.2.2", b"A001 AUTHENTICATE GSSAPI\r\n", Authenticate("A001", "GSSAPI")),
    ("RFC 4959 §3", b"a01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
     Authenticate("a01", "PLAIN", "dGVzdAB0ZXN0AHRlc3Q=")),
    ("RFC 4959 §3 empty", b"a01 AUTHENTICATE plain =\r\n", Authenticate("a01", "PLAIN", "=")),
    ("RFC 9051 §6.2.3", b"a001 LOGIN SMITH SESAME\r\n", Login("a001", "SMITH", "SESAME")),
    ("RFC 9051 §6.2.3 quoted", b'a001 LOGIN "fred smith" "pa\\"ss"\r\n',
     Login("a001", "fred smith", 'pa"ss')),
    ("RFC 9051 §4.3 literal",
     b"a001 LOGIN {4}\r\nfred {3}\r\nx y\r\n", Login("a001", "fred", "x y")),
    ("RFC 9051 §6.2.3 UTF-8", "a LOGIN \"jürgen\" \"pässword\"\r\n".encode(),
     Login("a", "jürgen", "pässword")),
    ("RFC 5161 §3.1", b"t2 ENABLE CONDSTORE X-GOOD-IDEA\r\n",
     Enable("t2", ("CONDSTORE", "X-GOOD-IDEA"))),
    ("RFC 9051 §6.3.1", b"t1 enable imap4rev2\r\n", Enable("t1", ("IMAP4REV2",))),
    ("RFC 2971 §3.4",
     b'a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")\r\n',
     Id("a023", (("name", "sodr"), ("version", "19.34"), ("vendor", "Pink Floyd Music Limited")))),
    ("RFC 2971 §3.4 NIL", b"a042 ID NIL\r\n", Id("a042", None)),
    ("RFC 2971 §3.3 NIL value", b'a ID ("name" NIL)\r\n', Id("a", (("name", None),))),
    ("RFC 4978 §3", b"a COMPRESS DEFLATE\r\n", Compress("a", "DEFLATE")),
    ("RFC 8437 §2", b"a UNAUTHENTICATE\r\n", Unauthenticate("a")),
    ("RFC 2177 §3", b"A002 IDLE\r\n", Idle("A002")),
    ("RFC 9051 §6.3.10", b"A001 NAMESPACE\r\n", Namespace("A001")),
]


@pytest.mark.parametrize(("where", "wire", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_examples(where: str, wire: bytes, expected: Command) -> None:
    assert parse_command(wire) == expected


BAD = [
    (b"a1 LOGIN fred\r\n", "a1"),
    (b"a1 LOGIN fred pass extra\r\n", "a1"),
    (b"a1 LOGIN  fred pass\r\n", "a1"),  # two spaces
    (b"a1 AUTHENTICATE PLAIN not*base64\r\n", "a1"),
    (b"a1 AUTHENTICATE\r\n", "a1"),
    (b"a1 ENABLE\r\n", "a1"),
    (b"a1 ID (\"name\")\r\n", "a1"),
    (b"a1 ID (" + b'"k" "v" ' * 31 + b")\r\n", "a1"),  # RFC 2971 §3.3: at most 30 pairs
    (b"a1 CAPABILITY now\r\n", "a1"),
    (b"a1 FROB\r\n", "a1"),
    (b"a1\r\n", "a1"),
    (b"+a NOOP\r\n", None),
    (b"* NOOP\r\n", None),
    (b"a1 LOGIN {3}\r\na\x00b\r\n", "a1"),  # NUL is not CHAR8
]


@pytest.mark.parametrize(("wire", "tag"), BAD)
def test_malformed_is_bad_with_the_tag(wire: bytes, tag: str | None) -> None:
    expect_bad(wire, tag)
