"""The fs store's pack of small blobs (server.blobs.pack): where blobs go, batching,
durability across a kill, failures, two stores on one folder, changing the limit."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.blobs.base import BlobNotFound
from server.blobs.fs import FsBlobStore
from server.blobs.pack import FILE_NAME, BlobPack
from tests.support.blobs import set_modified

LIMIT = 4096


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FsBlobStore]:
    s = await FsBlobStore.create(tmp_path / "blobs", pack_max=LIMIT)
    yield s
    await s.close()


def packed_ids(root: Path) -> set[str]:
    with sqlite3.connect(root / FILE_NAME) as conn:
        ids = {bytes(r[0]).hex() for r in conn.execute("SELECT id FROM blobs")}
    conn.close()
    return ids


def blob_files(root: Path) -> set[str]:
    return {p.name for p in root.glob("??/*")}


async def test_small_blobs_are_packed_and_large_ones_are_files(store: FsBlobStore) -> None:
    small = await store.put(b"s" * LIMIT)
    large = await store.put(b"L" * (LIMIT + 1))
    streamed_small = await store.put_stream(_chunks(b"t" * 100, 7))
    assert packed_ids(store.root) == {small.id, streamed_small.id}
    assert blob_files(store.root) == {large.id}
    assert os.listdir(store.tmp) == []  # the streamed one's temporary file is gone
    assert await store.get(small.id) == b"s" * LIMIT
    assert await store.read_range(small.id, 10, 20) == b"s" * 10
    assert await store.read_range(small.id, LIMIT - 3, LIMIT + 50) == b"sss"
    assert await store.read_range(small.id, LIMIT + 5, LIMIT + 50) == b""
    assert await store.size(small.id) == LIMIT
    assert b"".join([c async for c in store.open(small.id, 1, 5)]) == b"ssss"
    assert sorted([b async for b, _ in store.list()]) == sorted(
        [small.id, large.id, streamed_small.id])


async def test_puts_that_arrive_together_share_one_transaction(
        store: FsBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []
    real = BlobPack.put_many

    def counting(self: BlobPack, rows: list[tuple[bytes, bytes]], now: float) -> None:
        batches.append(len(rows))
        real(self, rows, now)

    monkeypatch.setattr(BlobPack, "put_many", counting)
    bodies = [f"message {i}".encode() for i in range(300)]
    refs = await asyncio.gather(*(store.put(b) for b in bodies))
    assert [r.id for r in refs] == [hashlib.sha256(b).hexdigest() for b in bodies]
    assert sum(batches) == 300 and len(batches) < 300
    assert len(packed_ids(store.root)) == 300


async def test_a_failed_batch_fails_its_puts_and_stores_nothing(
        store: FsBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real = BlobPack.put_many

    def broken(self: BlobPack, rows: list[tuple[bytes, bytes]], now: float) -> None:
        # the first row goes in, then the disk fills up: the transaction rolls back
        self._writer.execute("BEGIN IMMEDIATE")
        self._writer.execute("INSERT INTO blobs VALUES (?,?,?,?)", (rows[0][0], now, 1, b"x"))
        self._writer.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(BlobPack, "put_many", broken)
    results = await asyncio.gather(store.put(b"one"), store.put(b"two"),
                                   return_exceptions=True)
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    assert packed_ids(store.root) == set()
    monkeypatch.setattr(BlobPack, "put_many", real)
    ref = await store.put(b"one")  # a retry succeeds
    assert await store.get(ref.id) == b"one"


async def test_a_put_that_returned_survives_a_kill(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
        from server.blobs.fs import FsBlobStore

        async def main():
            store = await FsBlobStore.create({str(root)!r})
            refs = await asyncio.gather(*(store.put(b"kept %d" % i) for i in range(50)))
            print(" ".join(r.id for r in refs), flush=True)
            os._exit(9)  # no close, no checkpoint

        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 9, proc.stderr
    ids = proc.stdout.split()
    assert len(ids) == 50
    store = await FsBlobStore.create(root)
    try:
        for i, blob_id in enumerate(ids):
            assert await store.get(blob_id) == b"kept %d" % i
    finally:
        await store.close()


async def test_delete_if_older_is_atomic_with_puts(store: FsBlobStore) -> None:
    ref = await store.put(b"old news")
    old = time.time() - 7200
    set_modified(store, ref.id, old)
    assert await store.modified(ref.id) == pytest.approx(old)
    await store.put(b"old news")  # put again: refreshed, so kept
    assert not await store.delete_if_older(ref.id, time.time() - 3600)
    assert await store.get(ref.id) == b"old news"
    set_modified(store, ref.id, old)
    assert await store.delete_if_older(ref.id, time.time() - 3600)
    assert not await store.exists(ref.id)
    with pytest.raises(BlobNotFound):
        await store.get(ref.id)
    assert not await store.delete_if_older(ref.id, time.time())  # gone already
    await store.delete(ref.id)  # deleting an absent blob is a no-op


async def test_two_stores_on_one_folder(tmp_path: Path) -> None:
    """Two nodes' processes sharing a folder (each opens its own connections)."""
    a = await FsBlobStore.create(tmp_path / "blobs", pack_max=LIMIT)
    b = await FsBlobStore.create(tmp_path / "blobs", pack_max=LIMIT)
    try:
        refs = await asyncio.gather(*(s.put(b"shared %d" % (i % 10))
                                      for i in range(40) for s in (a, b)))
        assert len({r.id for r in refs}) == 10
        for ref in refs:
            assert await b.get(ref.id) == await a.get(ref.id)
        set_modified(a, refs[0].id, time.time() - 7200)
        await b.put(b"shared 0")  # b refreshes it: a's collector must keep it
        assert not await a.delete_if_older(refs[0].id, time.time() - 3600)
        assert await a.exists(refs[0].id)
    finally:
        await a.close()
        await b.close()


async def test_changing_the_limit_keeps_every_blob_readable_and_listed_once(
        tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    files_only = await FsBlobStore.create(root, pack_max=0)
    filed = await files_only.put(b"put as a file")
    await files_only.close()
    packing = await FsBlobStore.create(root, pack_max=LIMIT)
    try:
        assert await packing.get(filed.id) == b"put as a file"
        again = await packing.put(b"put as a file")  # now goes to the pack as well
        assert again == filed and filed.id in packed_ids(root) and filed.id in blob_files(root)
        assert [b async for b, _ in packing.list()] == [filed.id]
        set_modified(packing, filed.id, time.time() - 7200)
        assert await packing.delete_if_older(filed.id, time.time() - 3600)
        assert not await packing.exists(filed.id)
        assert blob_files(root) == set() and packed_ids(root) == set()
    finally:
        await packing.close()


async def test_packed_blob_readable_after_the_limit_is_lowered(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    packing = await FsBlobStore.create(root, pack_max=LIMIT)
    ref = await packing.put(b"packed once")
    await packing.close()
    files_only = await FsBlobStore.create(root, pack_max=0)
    try:
        assert await files_only.get(ref.id) == b"packed once"
        assert [b async for b, _ in files_only.list()] == [ref.id]
    finally:
        await files_only.close()


def checkpointed_size(root: Path) -> int:
    """The pack file's size once its log is written back."""
    with sqlite3.connect(root / FILE_NAME) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return (root / FILE_NAME).stat().st_size


async def test_release_space_shrinks_the_pack(store: FsBlobStore) -> None:
    refs = [await store.put(os.urandom(LIMIT)) for _ in range(100)]
    full = checkpointed_size(store.root)
    assert full > 100 * LIMIT
    for ref in refs[:90]:
        await store.delete(ref.id)
    assert checkpointed_size(store.root) == full  # deletes only free pages
    await store.release_space()
    assert checkpointed_size(store.root) < full / 4
    for ref in refs[90:]:
        assert len(await store.get(ref.id)) == LIMIT


async def test_a_folder_of_layout_2_is_upgraded(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    old = await FsBlobStore.create(root, pack_max=0)
    ref = await old.put(b"from before packs")
    await old.close()
    (root / FILE_NAME).unlink()
    for extra in ("-wal", "-shm"):
        (root / (FILE_NAME + extra)).unlink(missing_ok=True)
    (root / "LAYOUT").write_text("fdbmail-blobs 2: ab/<sha256>\n")
    store = await FsBlobStore.create(root)
    try:
        assert (root / "LAYOUT").read_text().startswith("fdbmail-blobs 3")
        assert await store.get(ref.id) == b"from before packs"
    finally:
        await store.close()


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def test_a_small_range_of_a_packed_blob_is_read_without_a_thread(
        store: FsBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small read of a packed blob is answered on the event loop (no thread hand-off);
    a file's, a missing blob's and a large range still go through a thread, with the same
    answers as before."""
    from server.blobs import fs

    small = await store.put(b"0123456789" * 100)
    large = await store.put(b"L" * (LIMIT + 1))
    handed_off: list[str] = []
    real = asyncio.to_thread

    async def counting(fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        handed_off.append(getattr(fn, "__name__", "?"))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(fs.asyncio, "to_thread", counting)
    assert await store.read_range(small.id, 0, 1000) == b"0123456789" * 100
    assert await store.read_range(small.id, 995, 2000) == b"56789"
    assert await store.read_range(small.id, 2000, 3000) == b""
    assert handed_off == []
    assert await store.read_range(large.id, 1, 4) == b"LLL"
    with pytest.raises(BlobNotFound):
        await store.read_range("ab" * 32, 0, 10)
    assert len(handed_off) == 2
    monkeypatch.setattr(fs, "INLINE_READ_MAX", 10)
    assert await store.read_range(small.id, 0, 20) == b"01234567890123456789"
    assert len(handed_off) == 3
