"""The connection's deflate stream (RFC 4978 section 4) without sockets: whatever a client
deflates, split anywhere, inflates to the same octets in bounded steps; the server's
output is raw deflate a client inflates after each write (sync flush); garbage gives
octets or zlib.error, nothing else."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from server.imap.connection import _INFLATE_CHUNK, Deflate


def _inflate_all(d: Deflate, chunks: list[bytes]) -> bytes:
    out = b""
    for chunk in chunks:
        d.add(chunk)
        while True:
            piece = d.inflate()
            assert len(piece) <= _INFLATE_CHUNK
            out += piece
            if not d.pending:
                break
    return out


@given(st.binary(max_size=5000), st.lists(st.integers(0, 6000), max_size=8))
def test_client_stream_split_anywhere_inflates_whole(data: bytes, cuts: list[int]) -> None:
    client = zlib.compressobj(6, zlib.DEFLATED, -15)
    wire = client.compress(data) + client.flush(zlib.Z_SYNC_FLUSH)
    points = sorted({min(c, len(wire)) for c in cuts} | {0, len(wire)})
    chunks = [wire[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert _inflate_all(Deflate(), chunks) == data


def test_a_deflate_bomb_is_inflated_in_bounded_steps() -> None:
    client = zlib.compressobj(9, zlib.DEFLATED, -15)
    wire = client.compress(b"a" * (10 * _INFLATE_CHUNK)) + client.flush(zlib.Z_SYNC_FLUSH)
    d = Deflate()
    d.add(wire)
    first = d.inflate()
    assert len(first) == _INFLATE_CHUNK and d.pending
    assert len(first) + len(_inflate_all(d, [b""])) == 10 * _INFLATE_CHUNK


@given(st.lists(st.binary(max_size=300), max_size=6))
def test_every_server_write_is_readable_at_once(writes: list[bytes]) -> None:
    d = Deflate()
    client = zlib.decompressobj(-15)
    for w in writes:
        assert client.decompress(d.compress(w)) == w     # sync flush: nothing held back


@given(st.binary(max_size=2000))
def test_garbage_gives_octets_or_zlib_error(data: bytes) -> None:
    d = Deflate()
    try:
        _inflate_all(d, [data])
    except zlib.error:
        pass
