"""BINARY (RFC 3516) end to end on a real node: APPEND with literal8 stores octets with NUL
unchanged, FETCH BINARY[] / BINARY.PEEK / BINARY.SIZE decode the transfer encoding and use
literal8 only when the octets hold NUL, and literal8 is refused where the grammar has none."""

from __future__ import annotations

import asyncio
import base64
import re

from server.node.node import Node
from tests.server.imap.mutating import client, login, stored, uids

PAYLOAD = bytes(range(256)) * 4   # every octet, NUL included

ATTACHED = (b"From: a@example.test\r\nTo: alice@example.test\r\nSubject: binary\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
            b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n"
            b"--b1\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n") + b"--b1--\r\n")

# RFC 3516 section 4.4: APPEND with literal8 carries raw octets, NUL included
RAW_BINARY = (b"From: a@example.test\r\nSubject: raw\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: application/octet-stream\r\n"
              b"Content-Transfer-Encoding: binary\r\n\r\n" + PAYLOAD)


async def test_capability_lists_binary(node: Node) -> None:
    """RFC 3516 section 4.1: the server MUST list BINARY."""
    def run() -> tuple[str, ...]:
        m = client(node)
        caps = m.capabilities
        m.logout()
        return caps

    assert "BINARY" in await asyncio.to_thread(run)


async def test_append_literal8_keeps_nul_octets_and_binary_fetch_returns_them(
        node: Node) -> None:
    """RFC 3516 section 4.4 (APPEND literal8, no loss of data) and 4.2 (BINARY[] of a part
    with NUL is a literal8; BINARY.SIZE is the size that BINARY[] returns)."""
    def run() -> list[list[bytes]]:
        c = login(node)
        out = [c.command(b"a1 APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(RAW_BINARY), RAW_BINARY))]
        c.send(b"a2 APPEND INBOX ~{%d}\r\n" % len(RAW_BINARY))   # synchronizing form
        assert c.line().startswith(b"+ ")
        c.send(RAW_BINARY + b"\r\n")
        out.append([c.line()])
        c.command(b"s SELECT INBOX\r\n")
        c.send(b"f FETCH 2 (BINARY.SIZE[1] BINARY.PEEK[1] BINARY.PEEK[1]<1.3>)\r\n")
        head = c.line()
        data = c.file.read(len(PAYLOAD))
        rest = [c.line()]
        while not rest[-1].startswith(b"f "):
            rest.append(c.line())
        out.append([head, data, *rest])
        c.close()
        return out

    appended, appended_sync, fetched = await asyncio.to_thread(run)
    assert appended[-1].startswith(b"a1 OK [APPENDUID ")
    assert appended_sync[-1].startswith(b"a2 OK [APPENDUID ")
    assert await uids(node) == [1, 2]
    assert (await stored(node, 1))[0] == RAW_BINARY   # byte-identical
    head, data, tail, done = fetched
    assert head == b"* 2 FETCH (BINARY.SIZE[1] %d BINARY[1] ~{%d}\r\n" % (len(PAYLOAD),
                                                                           len(PAYLOAD))
    assert data == PAYLOAD
    # octets 1..3 hold no NUL: a string, not a literal8 (RFC 3516 section 4.2 SHOULD)
    assert tail == b' BINARY[1]<1> "\x01\x02\x03")\r\n'
    assert done.startswith(b"f OK")


async def test_binary_decodes_base64_and_quoted_printable_with_imaplib(node: Node) -> None:
    """RFC 3516 section 4.2: BINARY[n] is the part after CTE decoding; BINARY without PEEK
    sets \\Seen like BODY[] (RFC 9051 section 6.4.5)."""
    def run() -> tuple[list[object], list[object], list[object]]:
        m = client(node)
        typ, _ = m.append("INBOX", None, None, ATTACHED)
        assert typ == "OK"
        m.select("INBOX")
        _, sized = m.fetch("1", "(BINARY.SIZE[1] BINARY.SIZE[2])")
        _, parts = m.fetch("1", "(BINARY.PEEK[1] BINARY.PEEK[2])")
        _, flags = m.fetch("1", "(BINARY[1] FLAGS)")
        m.logout()
        return sized, parts, flags

    sized, parts, flags = await asyncio.to_thread(run)
    text = "Grüße".encode()   # the CRLF before the boundary belongs to it (RFC 2046 5.1.1)
    assert sized == [b"1 (BINARY.SIZE[1] %d BINARY.SIZE[2] %d)" % (len(text), len(PAYLOAD))]
    assert isinstance(parts[0], tuple) and parts[0][1] == text
    assert isinstance(parts[1], tuple) and parts[1][1] == PAYLOAD
    assert b"\\Seen" in b"".join(x if isinstance(x, bytes) else x[0] for x in flags)


async def test_literal8_is_refused_outside_append_and_nul_outside_literal8(node: Node) -> None:
    """RFC 3516 section 7: literal8 is only in APPEND's grammar; a NUL in a plain literal is
    not a CHAR8 (RFC 9051 section 9): both BAD, nothing stored, the session goes on."""
    def run() -> list[bytes]:
        c = login(node)
        out = [c.command(b"a1 SELECT ~{5+}\r\nINBOX\r\n")[-1],
               c.command(b"a2 APPEND INBOX {3+}\r\na\x00b\r\n")[-1],
               c.command(b"a3 NOOP\r\n")[-1]]
        c.close()
        return out

    first, second, noop = await asyncio.to_thread(run)
    assert re.match(rb"a1 BAD ", first) and re.match(rb"a2 BAD ", second)
    assert noop.startswith(b"a3 OK")
    assert await uids(node) == []
