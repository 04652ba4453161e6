"""The blob store contract, run on every backend (see conftest.py)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator

import pytest

from server.blobs.base import BlobCapabilities, BlobNotFound, BlobRef, BlobStore, InvalidBlobId
from server.blobs.metered import MeteredBlobStore

MISSING = "0" * 64


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def listed(store: BlobStore) -> dict[str, float]:
    return {blob_id: mtime async for blob_id, mtime in store.list()}


async def test_put_get_round_trip(store: BlobStore) -> None:
    data = b"Subject: hi\r\n\r\nhello\r\n"
    ref = await store.put(data)
    assert ref == BlobRef(hashlib.sha256(data).hexdigest(), len(data))
    assert await store.get(ref.id) == data
    assert await store.exists(ref.id)
    assert await store.size(ref.id) == len(data)
    assert abs(await store.modified(ref.id) - time.time()) < 60


async def test_empty_blob(store: BlobStore) -> None:
    ref = await store.put(b"")
    assert ref.size == 0
    assert await store.get(ref.id) == b""
    assert await store.read_range(ref.id, 0, 10) == b""


async def test_put_is_idempotent(store: BlobStore) -> None:
    data = b"x" * 1000
    first = await store.put(data)
    second = await store.put(data)
    third = await store.put_stream(chunked(data, 7))
    assert first == second == third
    assert list(await listed(store)) == [first.id]


@pytest.mark.parametrize("chunk", [1, 100, 4096, 70_000])
async def test_put_stream_matches_put(store: BlobStore, chunk: int) -> None:
    data = bytes(range(256)) * 700  # 179,200 bytes
    ref = await store.put_stream(chunked(data, chunk))
    assert ref == BlobRef(hashlib.sha256(data).hexdigest(), len(data))
    assert await store.get(ref.id) == data


async def test_large_stream_round_trip(store: BlobStore) -> None:
    """Larger than one S3 part (5 MiB): a multipart upload on s3."""
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    data = b"".join(block[i:] + block[:i] for i in range(200))  # 12.5 MiB, not periodic
    ref = await store.put_stream(chunked(data, 100_000))
    assert ref.id == hashlib.sha256(data).hexdigest()
    assert await store.size(ref.id) == len(data)
    assert await collect(store.open(ref.id)) == data
    assert await store.read_range(ref.id, 5_000_000, 5_000_100) == data[5_000_000:5_000_100]
    again = await store.put_stream(chunked(data, 1_000_000))  # already there
    assert again == ref
    assert await store.put(data) == ref


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 0), (0, 1), (0, 26), (3, 9), (25, 26), (10, 1000), (26, 30), (40, 50), (5, 5)],
)
async def test_read_range_is_a_slice(store: BlobStore, start: int, end: int) -> None:
    data = b"abcdefghijklmnopqrstuvwxyz"
    ref = await store.put(data)
    assert await store.read_range(ref.id, start, end) == data[start:end]
    assert await collect(store.open(ref.id, start, end)) == data[start:end]


async def test_open_streams_in_chunks(store: BlobStore) -> None:
    data = bytes(range(256)) * 1000
    ref = await store.put(data)
    chunks = [chunk async for chunk in store.open(ref.id)]
    assert b"".join(chunks) == data
    assert len(chunks) > 1
    assert await collect(store.open(ref.id, 1000)) == data[1000:]


async def test_bad_ranges_are_refused(store: BlobStore) -> None:
    ref = await store.put(b"data")
    with pytest.raises(ValueError):
        await store.read_range(ref.id, 3, 2)
    with pytest.raises(ValueError):
        await store.read_range(ref.id, -1, 2)


async def test_missing_blob(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound) as info:
        await store.get(MISSING)
    assert info.value.blob_id == MISSING
    with pytest.raises(BlobNotFound):
        await store.read_range(MISSING, 0, 10)
    with pytest.raises(BlobNotFound):
        await store.read_range(MISSING, 0, 0)
    with pytest.raises(BlobNotFound):
        await collect(store.open(MISSING))
    with pytest.raises(BlobNotFound):
        await store.size(MISSING)
    with pytest.raises(BlobNotFound):
        await store.modified(MISSING)
    assert not await store.exists(MISSING)
    await store.delete(MISSING)  # a no-op
    assert not await store.delete_if_older(MISSING, time.time() + 60)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABC", "g" * 64, "A" * 64, ""])
async def test_invalid_ids_are_refused(store: BlobStore, bad: str) -> None:
    with pytest.raises(InvalidBlobId):
        await store.get(bad)
    with pytest.raises(InvalidBlobId):
        await store.delete(bad)


async def test_delete(store: BlobStore) -> None:
    keep = await store.put(b"keep")
    gone = await store.put(b"gone")
    await store.delete(gone.id)
    assert not await store.exists(gone.id)
    with pytest.raises(BlobNotFound):
        await store.get(gone.id)
    assert set(await listed(store)) == {keep.id}
    assert await store.put(b"gone") == gone  # can be stored again
    assert await store.get(gone.id) == b"gone"


async def test_delete_if_older(store: BlobStore) -> None:
    ref = await store.put(b"recent")
    assert not await store.delete_if_older(ref.id, time.time() - 3600)
    assert await store.exists(ref.id)
    assert await store.delete_if_older(ref.id, time.time() + 60)
    assert not await store.exists(ref.id)


async def test_list(store: BlobStore) -> None:
    assert await listed(store) == {}
    refs = [await store.put(f"blob {i}".encode()) for i in range(30)]
    found = await listed(store)
    assert set(found) == {r.id for r in refs}
    now = time.time()
    assert all(abs(mtime - now) < 60 for mtime in found.values())


async def test_failed_stream_stores_nothing(store: BlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 100_000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put_stream(broken())
    assert await listed(store) == {}


async def test_capabilities_are_declared(store: BlobStore) -> None:
    # declared by the store, read by callers (never inferred from ``backend``)
    caps = store.capabilities
    assert isinstance(caps, BlobCapabilities)
    assert caps == MeteredBlobStore(store).capabilities
    assert caps.atomic_delete_if_older == caps.releases_space == (store.backend == "fs")
    await store.release_space()  # a no-op where the store cannot
