"""COMPRESS=DEFLATE (RFC 4978) through a real node: raw deflate both ways after the tagged
OK (section 3), over TLS, a second COMPRESS refused with [COMPRESSIONACTIVE] (section 3),
an unknown algorithm BAD, and garbage deflate data ends the connection with BYE."""

from __future__ import annotations

import asyncio
import zlib

from server.node.node import Node
from tests.server.imap.test_session import Raw, _caps, raw_tls


class Deflated:
    """The client side of RFC 4978 section 4: raw deflate, a sync flush per command."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self.out = zlib.compressobj(9, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)
        self.buf = b""
        self.wire_in = 0         # compressed octets read

    def send(self, data: bytes) -> None:
        self.raw.sock.sendall(self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH))

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.raw.file.read1(65536)  # type: ignore[attr-defined]
            assert chunk, self.buf
            self.wire_in += len(chunk)
            self.buf += self.inflate.decompress(chunk)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def command(self, data: bytes) -> list[bytes]:
        tag = data.split(b" ", 1)[0]
        self.send(data)
        out = []
        while True:
            out.append(self.line())
            if out[-1].startswith(tag + b" "):
                return out


def _login(node: Node) -> Raw:
    c = raw_tls(node)
    c.line()
    out = c.command(b'a LOGIN alice "correct horse"\r\n')
    assert out[-1].startswith(b"a OK"), out
    return c


async def test_compress_deflate_both_ways_over_tls(node: Node) -> None:
    def run() -> None:
        c = _login(node)
        caps = _caps(c.command(b"c CAPABILITY\r\n")[0].replace(b"* CAPABILITY ", b"[CAPABILITY ")
                     .replace(b"\r\n", b"]"))
        assert "COMPRESS=DEFLATE" in caps
        # RFC 4978 section 3: the tagged OK is the last uncompressed octets
        out = c.command(b"z COMPRESS DEFLATE\r\n")
        assert out == [b"z OK DEFLATE active\r\n"]
        d = Deflated(c)
        for i in range(60):
            out = d.command(f'm{i} CREATE "Folder {i:03d}/with a longish name"\r\n'.encode())
            assert out[-1].startswith(f"m{i} OK".encode()), out
        d.wire_in = 0
        out = d.command(b'l LIST "" "*"\r\n')
        assert out[-1].startswith(b"l OK")
        listed = [x for x in out if x.startswith(b"* LIST")]
        assert len(listed) >= 120 + 5      # the folders, their parents and the special ones
        plain = sum(len(x) for x in out)
        assert d.wire_in < plain / 3, (d.wire_in, plain)   # the answer really was deflated
        # RFC 4978 section 3: COMPRESS while compression is active is refused
        out = d.command(b"z2 COMPRESS DEFLATE\r\n")
        assert out[-1].startswith(b"z2 NO [COMPRESSIONACTIVE]"), out
        out = d.command(b"o LOGOUT\r\n")
        assert out[0].startswith(b"* BYE") and out[-1].startswith(b"o OK")
        c.close()
    await asyncio.to_thread(run)


async def test_commands_pipelined_after_compress_are_inflated(node: Node) -> None:
    def run() -> None:
        c = _login(node)
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        # COMPRESS and the next commands in one segment: what follows the COMPRESS line
        # is compressed (the client may pipeline, RFC 4978 section 3)
        c.send(b"z COMPRESS DEFLATE\r\n" + deflate.compress(b"n1 NOOP\r\nn2 NOOP\r\n")
               + deflate.flush(zlib.Z_SYNC_FLUSH))
        assert c.line() == b"z OK DEFLATE active\r\n"
        d = Deflated(c)
        got = [d.line(), d.line()]
        assert got == [b"n1 OK NOOP completed\r\n", b"n2 OK NOOP completed\r\n"]
        c.close()
    await asyncio.to_thread(run)


async def test_unknown_algorithm_and_not_authenticated(node: Node) -> None:
    def run() -> None:
        c = raw_tls(node)
        c.line()
        out = c.command(b"z COMPRESS DEFLATE\r\n")    # RFC 4978 section 3: authenticated state
        assert out[-1].startswith(b"z BAD"), out
        out = c.command(b'a LOGIN alice "correct horse"\r\n')
        out = c.command(b"y COMPRESS GZIP\r\n")
        assert out[-1].startswith(b"y BAD"), out
        out = c.command(b"n NOOP\r\n")                # still uncompressed
        assert out[-1] == b"n OK NOOP completed\r\n"
        c.close()
    await asyncio.to_thread(run)


async def test_bad_deflate_data_ends_the_connection_with_bye(node: Node) -> None:
    def run() -> None:
        c = _login(node)
        assert c.command(b"z COMPRESS DEFLATE\r\n")[-1].startswith(b"z OK")
        d = Deflated(c)
        c.send(b"\xff\xff\xff\xff garbage that is not deflate")
        assert d.line().startswith(b"* BYE")
        c.close()
        # the node still serves
        c2 = _login(node)
        assert c2.command(b"n NOOP\r\n")[-1].startswith(b"n OK")
        c2.close()
    await asyncio.to_thread(run)
