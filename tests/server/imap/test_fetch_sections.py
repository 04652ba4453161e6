"""FETCH sections served by range reads of the blob (server/imap/session/sections.py):
a small part of a message with a 4 MB attachment reads a few hundred octets, never the
message (issue 12); HEADER.FIELDS(.NOT) properties (RFC 9051 section 6.4.5)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdb_layers.mail import Email
from server.blobs.fs import FsBlobStore
from server.imap.session.sections import Source, binary_size, header_fields, section_data
from server.imap.wire.fetch import FetchBinarySize, FetchBody, Section
from server.mime.summary import parse_message

PAYLOAD = bytes(range(256)) * (4 * 4096)          # 4 MB
ENCODED = base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
RAW = (
    b"From: a@example.test\r\nTo: b@example.test\r\nSubject: big\r\nX-Long: one\r\n two\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/plain\r\n\r\nshort text\r\n"
    b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\n" + ENCODED + b"--B--\r\n"
)


class Counting:
    """The real folder store, counting the octets read from it."""

    def __init__(self, store: FsBlobStore) -> None:
        self.store = store
        self.read = 0

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        data = await self.store.read_range(blob_id, start, end)
        self.read += len(data)
        return data


SINGLE = (b"From: a@example.test\r\nSubject: qp\r\nContent-Type: text/plain; charset=utf-8\r\n"
          b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nau lait\r\n")


async def _source(store: FsBlobStore, raw: bytes) -> tuple[Source, Counting]:
    ref = await store.put(raw)
    email = Email(id="e1", blob_id=ref.id, size=len(raw), received_at=0.0,
                  thread_id="t1", keywords=(), mailboxes={}, modseq=1)
    counting = Counting(store)
    return Source(counting, email, parse_message(raw)), counting  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FsBlobStore]:
    opened = await FsBlobStore.create(tmp_path / "blobs")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def source(store: FsBlobStore) -> tuple[Source, Counting]:
    return await _source(store, RAW)


async def test_part_one_of_a_single_part_message(store: FsBlobStore) -> None:
    """RFC 9051 section 6.4.5: a message that is not multipart has one part, numbered 1;
    BINARY[1] undoes its quoted-printable (RFC 3516 section 4.2)."""
    src, _ = await _source(store, SINGLE)
    assert await section_data(src, FetchBody(Section((1,)))) == b"caf=C3=A9 =\r\nau lait\r\n"
    decoded = "café au lait\r\n".encode()
    assert await section_data(src, FetchBody(Section((1,)), binary=True)) == decoded
    assert await binary_size(src, FetchBinarySize((1,))) == len(decoded)
    assert await section_data(src, FetchBody(Section((2,)))) is None


async def test_a_small_part_is_a_small_read(source: tuple[Source, Counting]) -> None:
    src, counting = source
    assert await section_data(src, FetchBody(Section((1,)))) == b"short text"
    got = await section_data(src, FetchBody(Section(text="HEADER.FIELDS",
                                                    fields=("subject", "X-LONG"))))
    assert got == b"Subject: big\r\nX-Long: one\r\n two\r\n\r\n"
    assert await section_data(src, FetchBody(Section((2,)), partial=(0, 10))) == ENCODED[:10]
    assert await section_data(src, FetchBody(Section((2,)), partial=(len(ENCODED), 5))) == b""
    assert counting.read < 1000


async def test_binary_decodes_the_part(source: tuple[Source, Counting]) -> None:
    """RFC 3516 section 4.2: BINARY[2] is the decoded attachment; BINARY.SIZE its size."""
    src, _ = source
    assert await section_data(src, FetchBody(Section((2,)), binary=True)) == PAYLOAD
    assert await binary_size(src, FetchBinarySize((2,))) == len(PAYLOAD)
    assert await section_data(src, FetchBody(Section((7,)), binary=True)) is None


HEADER_LINE = st.tuples(
    st.sampled_from(["Subject", "subject", "From", "X-A", "To"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    st.booleans())


@given(st.lists(HEADER_LINE, max_size=8), st.lists(st.sampled_from(["SUBJECT", "x-a", "to"]),
                                                   min_size=1, max_size=3))
def test_header_fields_and_not_partition_the_header(lines: list[tuple[str, str, bool]],
                                                    names: list[str]) -> None:
    header = b"".join(
        f"{name}: {value}\r\n".encode() + (b" folded\r\n" if fold else b"")
        for name, value, fold in lines) + b"\r\n"
    taken = header_fields(header, tuple(names), exclude=False)
    left = header_fields(header, tuple(names), exclude=True)
    assert taken.endswith(b"\r\n") and left.endswith(b"\r\n")
    wanted = {n.lower() for n in names}
    assert taken.count(b"\r\n") + left.count(b"\r\n") - 2 == header.count(b"\r\n") - 1
    for block in taken[:-2].split(b"\r\n"):
        if block and not block.startswith(b" "):
            assert block.split(b":", 1)[0].decode().lower() in wanted


@given(st.binary(max_size=300), st.lists(st.text(max_size=5), min_size=1, max_size=3),
       st.booleans())
def test_header_fields_never_fails(header: bytes, names: list[str], exclude: bool) -> None:
    assert header_fields(header, tuple(names), exclude).endswith(b"\r\n")
