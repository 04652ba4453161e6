"""Conformance: BINARY (RFC 3516, RFC 9051 section 6.4.5) on raw connections to a real
node: decoded parts, BINARY.SIZE, literal8 in APPEND and in answers, UNKNOWN-CTE."""

from __future__ import annotations

import asyncio

from server.node.node import Node
from tests.server.imap.mutating import login, stored
from tests.server.imap.test_session import Raw

MIXED = (b"From: a@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\n"
         b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         b"aGVsbG8Ad29ybGQ=\r\n--X\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9llo=\r\n wor=\r\nld\r\n--X\r\n"
         b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-unheard-of\r\n\r\nabc\r\n"
         b"--X\r\nContent-Type: text/plain\r\n\r\nplain seven bit\r\n--X--\r\n")

WITH_NUL = b"From: a@example.test\r\nSubject: nul\r\n\r\nab\x00cd\r\n"


def _read_all(c: Raw, tag: bytes) -> bytes:
    """The whole answer of ``tag``, literals included, as one byte string."""
    out = b""
    while True:
        line = c.line()
        assert line, out
        out += line
        if line.startswith(tag + b" "):
            return out


def _append(c: Raw, data: bytes) -> None:
    out = c.command(b"p1 APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    assert out[-1].startswith(b"p1 OK"), out


async def test_binary_decodes_base64_and_quoted_printable_parts(node: Node) -> None:
    """RFC 3516 section 4.2: BINARY[n] is part n with its Content-Transfer-Encoding
    removed; decoded octets with NUL come as literal8 (``~{n}``), others as a string
    (section 4.3); BINARY.SIZE is the decoded size; partial BINARY counts decoded octets;
    BINARY.PEEK does not set \\Seen."""
    def run() -> None:
        c = login(node)
        _append(c, MIXED)
        assert c.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
        c.send(b"f1 FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])\r\n")
        assert _read_all(c, b"f1") == (b"* 1 FETCH (BINARY[1] ~{11}\r\nhello\x00world"
                                       b" BINARY.SIZE[1] 11)\r\nf1 OK FETCH completed\r\n")
        c.send(b"f2 FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])\r\n")
        got = _read_all(c, b"f2")
        decoded = "héllo world".encode()
        assert got in (
            b"* 1 FETCH (BINARY[2] {%d}\r\n%s BINARY.SIZE[2] %d)\r\nf2 OK FETCH completed\r\n"
            % (len(decoded), decoded, len(decoded)),
            b'* 1 FETCH (BINARY[2] "%s" BINARY.SIZE[2] %d)\r\nf2 OK FETCH completed\r\n'
            % (decoded, len(decoded))), got
        c.send(b"f3 FETCH 1 (BINARY.PEEK[1]<6.5> BINARY.SIZE[4] BINARY.PEEK[4])\r\n")
        got = _read_all(c, b"f3")
        assert b'BINARY[1]<6> "world"' in got and b"BINARY.SIZE[4] 15" in got
        assert b'BINARY[4] "plain seven bit"' in got
        assert c.command(b"f4 FETCH 1 (FLAGS)\r\n")[0] == b"* 1 FETCH (FLAGS ())\r\n"
        c.send(b"f5 FETCH 1 (BINARY[1])\r\n")   # without PEEK: sets \Seen (6.4.5)
        assert b"FLAGS (\\Seen)" in _read_all(c, b"f5")
        c.close()
    await asyncio.to_thread(run)


async def test_an_unknown_encoding_is_unknown_cte(node: Node) -> None:
    """RFC 3516 section 4.2 / RFC 9051 section 7.1: a part whose Content-Transfer-Encoding
    the server cannot decode gets NO [UNKNOWN-CTE], for BINARY and BINARY.SIZE; BODY
    still returns it as is."""
    def run() -> None:
        c = login(node)
        _append(c, MIXED)
        assert c.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
        for tag, item in ((b"f1", b"BINARY.PEEK[3]"), (b"f2", b"BINARY.SIZE[3]")):
            out = c.command(tag + b" FETCH 1 (" + item + b")\r\n")
            assert out[-1].startswith(tag + b" NO [UNKNOWN-CTE]"), out
        c.send(b"f3 FETCH 1 (BODY.PEEK[3])\r\n")
        assert _read_all(c, b"f3") == (b'* 1 FETCH (BODY[3] "abc")\r\n'
                                       b"f3 OK FETCH completed\r\n")
        c.close()
    await asyncio.to_thread(run)


async def test_literal8_append_keeps_nul_and_binary_serves_it_as_literal8(node: Node) -> None:
    """RFC 3516 section 4.4: APPEND takes a literal8 (``~{n}``, synchronising or not) and
    stores its octets as they are; BINARY[] of content with NUL is a literal8 (section
    4.3); a plain literal with NUL is refused (RFC 9051 section 4.3: CHAR8 excludes NUL)."""
    def run() -> None:
        c = login(node)
        out = c.command(b"a1 APPEND INBOX ~{%d+}\r\n" % len(WITH_NUL) + WITH_NUL + b"\r\n")
        assert out[-1].startswith(b"a1 OK [APPENDUID "), out
        c.send(b"a2 APPEND INBOX ~{%d}\r\n" % len(WITH_NUL))
        assert c.line().startswith(b"+")
        c.send(WITH_NUL + b"\r\n")
        assert _read_all(c, b"a2").startswith(b"a2 OK [APPENDUID ")
        out = c.command(b"a3 APPEND INBOX {%d+}\r\n" % len(WITH_NUL) + WITH_NUL + b"\r\n")
        assert out[-1].startswith(b"a3 BAD") or out[-1].startswith(b"a3 NO"), out
        assert c.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
        c.send(b"f1 FETCH 1:2 (BINARY.PEEK[] BINARY.SIZE[])\r\n")
        one = b"BINARY[] ~{%d}\r\n%s BINARY.SIZE[] %d)\r\n" % (len(WITH_NUL), WITH_NUL,
                                                           len(WITH_NUL))
        assert _read_all(c, b"f1") == (b"* 1 FETCH (" + one + b"* 2 FETCH (" + one
                                       + b"f1 OK FETCH completed\r\n")
        c.close()
    await asyncio.to_thread(run)
    data, _, _ = await stored(node, 1)
    assert data == WITH_NUL


async def test_body_of_content_with_nul_is_never_literal8(node: Node) -> None:
    """RFC 9051 section 9: BODY[...] answers an nstring, whose literal is ``*CHAR8``
    (no NUL), and section 4.3.1 allows unencoded binary strings only "in a <literal8> in
    response to a BINARY.PEEK[...] or BINARY[...] FETCH data item": BODY[], BODY[TEXT],
    a partial BODY[] and RFC822 of a message stored with NUL come as plain literals of
    the same size, with no NUL octet (each sent as 0x80); BINARY[] keeps the octets in
    a literal8, and a partial one names its origin octet, ``BINARY[]<39>`` (section
    7.5.2: ``BINARY[<section-binary>]<<number>>``, the offset in the decoded data)."""
    def run() -> None:
        c = login(node)
        out = c.command(b"a1 APPEND INBOX ~{%d+}\r\n" % len(WITH_NUL) + WITH_NUL + b"\r\n")
        assert out[-1].startswith(b"a1 OK [APPENDUID "), out
        assert c.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
        shown = WITH_NUL.replace(b"\x00", b"\x80")
        c.send(b"f1 FETCH 1 (BODY.PEEK[] BODY.PEEK[TEXT] BODY.PEEK[]<39.3>)\r\n")
        assert _read_all(c, b"f1") == (
            b"* 1 FETCH (BODY[] {%d}\r\n%s BODY[TEXT] {7}\r\nab\x80cd\r\n"
            b" BODY[]<39> {3}\r\nb\x80c)\r\nf1 OK FETCH completed\r\n" % (len(shown), shown))
        c.send(b"f2 FETCH 1 (RFC822.SIZE RFC822)\r\n")
        got = _read_all(c, b"f2")
        assert got.startswith(b"* 1 FETCH (RFC822.SIZE %d RFC822 {%d}\r\n%s"
                              % (len(WITH_NUL), len(shown), shown)), got
        assert b"~{" not in got and b"\x00" not in got
        c.send(b"f3 FETCH 1 (BINARY.PEEK[] BINARY.PEEK[]<39.3>)\r\n")
        assert _read_all(c, b"f3") == (
            b"* 1 FETCH (BINARY[] ~{%d}\r\n%s BINARY[]<39> ~{3}\r\nb\x00c)\r\n"
            b"f3 OK FETCH completed\r\n" % (len(WITH_NUL), WITH_NUL))
        c.close()
    await asyncio.to_thread(run)
