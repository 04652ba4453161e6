"""What only the fs backend promises: layout, durability, bounded memory, crash safety."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import hashlib
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.blobs import fs as fs_module
from server.blobs.base import BlobRef
from server.blobs.fs import FsBlobStore

MIB = 1024 * 1024


async def generated(total: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``total`` deterministic, non-repeating bytes, made on the fly."""
    block = hashlib.sha256(b"seed").digest() * (chunk // 32)
    sent = 0
    n = 0
    while sent < total:
        piece = (n.to_bytes(8, "big") + block)[: min(chunk, total - sent)]
        n += 1
        sent += len(piece)
        yield piece


async def expected_digest(total: int) -> str:
    h = hashlib.sha256()
    async for piece in generated(total):
        h.update(piece)
    return h.hexdigest()


@pytest.fixture(params=["filesystem", "file"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FsBlobStore]:
    s = await FsBlobStore.create(tmp_path / "blobs", sync=request.param, pack_max=0)
    yield s
    await s.close()


@pytest.fixture
async def file_sync_store(tmp_path: Path) -> AsyncIterator[FsBlobStore]:
    s = await FsBlobStore.create(tmp_path / "blobs", sync="file", pack_max=0)
    yield s
    await s.close()


needs_syncfs = pytest.mark.skipif(fs_module._syncfs is None, reason="no syncfs(2) here")


@pytest.fixture
async def syncfs_store(tmp_path: Path) -> AsyncIterator[FsBlobStore]:
    s = await FsBlobStore.create(tmp_path / "blobs", sync="filesystem", pack_max=0)
    assert s.sync_mode == "filesystem"
    yield s
    await s.close()


class FlushSpy:
    """Stands in for syncfs(2) (calling the real one, or failing with EIO at the
    flushes numbered in ``fail_at``) and records, in order, each flush and each
    rename into place."""

    def __init__(self, store: FsBlobStore, monkeypatch: pytest.MonkeyPatch,
                 fail_at: set[int] | None = None) -> None:
        self.store = store
        self.events: list[str] = []
        self.fail_at = fail_at or set()
        real_syncfs = fs_module._syncfs
        real_replace = os.replace
        assert real_syncfs is not None

        def syncfs(fd: int) -> int:
            self.events.append("flush")
            if len(self.flushes()) in self.fail_at:
                ctypes.set_errno(errno.EIO)
                return -1
            return int(real_syncfs(fd))

        def replace(src: object, dst: object) -> None:
            self.events.append(f"rename {Path(str(dst)).name}")
            real_replace(src, dst)  # type: ignore[arg-type]

        monkeypatch.setattr(fs_module, "_syncfs", syncfs)
        monkeypatch.setattr(os, "replace", replace)

    def flushes(self) -> list[str]:
        return [e for e in self.events if e == "flush"]


async def test_sharded_layout(store: FsBlobStore) -> None:
    ref = await store.put(b"hello")
    path = store.root / ref.id[:2] / ref.id
    assert path.read_bytes() == b"hello"
    assert store.path(ref.id) == path
    assert os.listdir(store.tmp) == []


async def test_streams_50_mib_in_bounded_memory(store: FsBlobStore) -> None:
    total = 50 * MIB
    digest = await expected_digest(total)
    tracemalloc.start()
    try:
        ref = await store.put_stream(generated(total))
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        h = hashlib.sha256()
        size = 0
        async for chunk in store.open(ref.id):
            h.update(chunk)
            size += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ref.id == digest and ref.size == total
    assert size == total and h.hexdigest() == digest
    assert put_peak < 4 * MIB, put_peak
    assert read_peak < 4 * MIB, read_peak


async def test_range_read_seeks(store: FsBlobStore) -> None:
    total = 8 * MIB
    ref = await store.put_stream(generated(total))
    data = store.path(ref.id).read_bytes()
    tracemalloc.start()
    try:
        got = await store.read_range(ref.id, 7 * MIB, 7 * MIB + 100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == data[7 * MIB:7 * MIB + 100]
    assert peak < 256 * 1024


async def test_no_partial_blob_under_its_final_name(store: FsBlobStore) -> None:
    data = os.urandom(3 * MIB)
    final = store.path(hashlib.sha256(data).hexdigest())
    halfway = asyncio.Event()
    resume = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        for i in range(0, len(data), MIB):
            if i == 2 * MIB:
                halfway.set()
                await resume.wait()
            yield data[i:i + MIB]

    task = asyncio.create_task(store.put_stream(slow()))
    await halfway.wait()
    assert not final.exists()
    assert [entry async for entry in store.list()] == []
    assert len(os.listdir(store.tmp)) == 1  # the upload in progress
    resume.set()
    ref = await task
    assert store.path(ref.id) == final and final.read_bytes() == data
    assert os.listdir(store.tmp) == []


async def test_cancelled_stream_leaves_nothing(store: FsBlobStore) -> None:
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            started.set()
            yield b"x" * 65536
            await asyncio.sleep(0)

    task = asyncio.create_task(store.put_stream(endless()))
    await started.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert os.listdir(store.tmp) == []
    assert [entry async for entry in store.list()] == []


def test_killed_writer_leaves_no_blob_and_its_temp_is_swept(tmp_path: Path) -> None:
    """A process killed mid-upload: nothing under a final name; the temporary
    file is removed when a store is opened a day later."""
    root = tmp_path / "blobs"
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(Path.cwd())!r})
        from server.blobs.fs import FsBlobStore

        async def chunks():
            for i in range(40):
                if i == 20:
                    os._exit(9)  # killed mid-write: no cleanup runs
                yield bytes([i]) * 65536

        async def main():
            store = await FsBlobStore.create({str(root)!r}, pack_max=0)
            await store.put_stream(chunks())

        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == 9
    blobs = [p for p in root.glob("*/*") if p.parent.name != "tmp"]
    assert blobs == []
    leftovers = list((root / "tmp").iterdir())
    assert len(leftovers) == 1
    day_ago = time.time() - 25 * 3600
    os.utime(leftovers[0], (day_ago, day_ago))
    asyncio.run(FsBlobStore.create(root, pack_max=0))
    assert list((root / "tmp").iterdir()) == []


async def test_put_fsyncs_file_and_folder(file_sync_store: FsBlobStore,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = file_sync_store
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd")
                      else str(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    ref = await store.put(b"durable")
    final = store.path(ref.id)
    assert any(s.startswith(str(store.tmp)) for s in synced)  # the data, before the rename
    assert str(final.parent) in synced  # the rename
    synced.clear()
    await store.put_stream(generated(100_000))
    assert len(synced) >= 2


@needs_syncfs
async def test_batched_puts_share_two_flushes_data_before_names(
        syncfs_store: FsBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = FlushSpy(syncfs_store, monkeypatch)
    bodies = [b"message %d" % i for i in range(12)]
    refs = await asyncio.gather(*(syncfs_store.put(b) for b in bodies))
    assert [await syncfs_store.get(r.id) for r in refs] == bodies
    # one hand-off took them all: data flushed, then every rename, then flushed again
    renames = [e for e in spy.events if e.startswith("rename")]
    assert spy.events == ["flush", *renames, "flush"]
    assert sorted(renames) == sorted(f"rename {r.id}" for r in refs)
    assert os.listdir(syncfs_store.tmp) == []


@needs_syncfs
async def test_put_of_a_stored_blob_waits_for_a_flush(
        syncfs_store: FsBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = await syncfs_store.put(b"again")
    spy = FlushSpy(syncfs_store, monkeypatch)
    assert await syncfs_store.put(b"again") == ref
    # no new file, but the earlier batch's rename may not be durable: one flush
    assert spy.events == ["flush"]


@needs_syncfs
async def test_failed_data_flush_fails_the_batch_and_names_nothing(
        syncfs_store: FsBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = FlushSpy(syncfs_store, monkeypatch, fail_at={1})
    results = await asyncio.gather(*(syncfs_store.put(b"doomed %d" % i) for i in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, OSError) and r.errno == errno.EIO for r in results)
    assert not any(e.startswith("rename") for e in spy.events)  # no name for unflushed data
    assert [b async for b, _ in syncfs_store.list()] == []
    assert os.listdir(syncfs_store.tmp) == []
    ref = await syncfs_store.put(b"doomed 0")  # the next batch works
    assert await syncfs_store.get(ref.id) == b"doomed 0"


@needs_syncfs
async def test_failed_name_flush_fails_the_puts_and_a_retry_succeeds(
        syncfs_store: FsBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = FlushSpy(syncfs_store, monkeypatch, fail_at={2})
    with pytest.raises(OSError):
        await syncfs_store.put(b"renamed, not yet durable")
    ref = await syncfs_store.put(b"renamed, not yet durable")  # the client's retry
    assert spy.events[-1:] == ["flush"] and len(spy.flushes()) == 3
    assert await syncfs_store.get(ref.id) == b"renamed, not yet durable"


async def test_file_sync_is_used_where_asked_or_without_syncfs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = await FsBlobStore.create(tmp_path / "a", sync="file", pack_max=0)
    assert asked.sync_mode == "file"
    await asked.close()
    unsynced = await FsBlobStore.create(tmp_path / "b", fsync=False, pack_max=0)
    assert unsynced.sync_mode is None
    await unsynced.close()
    monkeypatch.setattr(fs_module, "_syncfs", None)
    fallback = await FsBlobStore.create(tmp_path / "c", sync="filesystem", pack_max=0)
    assert fallback.sync_mode == "file"
    ref = await fallback.put(b"still durable")
    assert await fallback.get(ref.id) == b"still durable"
    await fallback.close()


async def test_shards_exist_from_the_start_and_come_back_if_removed(store: FsBlobStore) -> None:
    shards = sorted(p.name for p in store.root.iterdir() if p.is_dir() and p.name != "tmp")
    assert len(shards) == 256 and shards[0] == "00" and shards[-1] == "ff"
    ref = BlobRef(hashlib.sha256(b"lost shard").hexdigest(), 10)
    store.path(ref.id).parent.rmdir()
    assert await store.put(b"lost shard") == ref
    assert await store.get(ref.id) == b"lost shard"
    assert os.listdir(store.tmp) == []


async def test_old_two_level_layout_is_flattened_once(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    ids = {}
    for body in (b"one", b"two", b"three"):
        blob_id = hashlib.sha256(body).hexdigest()
        old = root / blob_id[:2] / blob_id[2:4] / blob_id
        old.parent.mkdir(parents=True, exist_ok=True)
        old.write_bytes(body)
        ids[blob_id] = body
    (root / "tmp").mkdir()
    stray = root / "ab" / "cd" / "README"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("not a blob")
    store = await FsBlobStore.create(root, pack_max=0)
    for blob_id, body in ids.items():
        assert await store.get(blob_id) == body
        assert not (root / blob_id[:2] / blob_id[2:4]).exists()
    assert sorted([b async for b, _ in store.list()]) == sorted(ids)
    assert stray.read_text() == "not a blob"  # left where it was
    assert (root / "LAYOUT").read_text().startswith("fdbmail-blobs 3")
    await store.close()
    (root / "LAYOUT").write_text("fdbmail-blobs 99\n")
    with pytest.raises(RuntimeError, match="unknown blob folder layout"):
        await FsBlobStore.create(root, pack_max=0)


async def test_put_of_existing_blob_refreshes_it(store: FsBlobStore) -> None:
    ref = await store.put(b"dedupe me")
    old = time.time() - 7200
    os.utime(store.path(ref.id), (old, old))
    await store.put(b"dedupe me")
    assert await store.modified(ref.id) > time.time() - 60
    os.utime(store.path(ref.id), (old, old))

    async def one() -> AsyncIterator[bytes]:
        yield b"dedupe me"

    await store.put_stream(one())
    assert await store.modified(ref.id) > time.time() - 60


async def test_delete_if_older_keeps_refreshed_and_restores(store: FsBlobStore) -> None:
    ref = await store.put(b"racing")
    cutoff = time.time() - 3600
    assert not await store.delete_if_older(ref.id, cutoff)  # fresh: put back
    assert store.path(ref.id).read_bytes() == b"racing"
    assert os.listdir(store.tmp) == []
    old = time.time() - 7200
    os.utime(store.path(ref.id), (old, old))
    assert await store.delete_if_older(ref.id, cutoff)
    assert not store.path(ref.id).exists()
    assert os.listdir(store.tmp) == []


async def test_list_ignores_foreign_files(store: FsBlobStore) -> None:
    ref = await store.put(b"real")
    (store.root / ref.id[:2] / "notes.txt").write_text("hi")
    (store.root / ref.id[:2] / ("0" * 64)).write_text("not in its shard")
    (store.root / "zz").mkdir()
    assert [blob_id async for blob_id, _ in store.list()] == [ref.id]


async def test_blob_left_by_a_crashed_gc_check_is_put_back(tmp_path: Path) -> None:
    store = await FsBlobStore.create(tmp_path / "blobs", pack_max=0)
    ref = await store.put(b"being checked")
    # the GC renamed it aside to check its age, then the node died
    os.rename(store.path(ref.id), store.tmp / f"{ref.id}.abc123.gc")
    assert not await store.exists(ref.id)
    reopened = await FsBlobStore.create(tmp_path / "blobs", pack_max=0)
    assert await reopened.get(ref.id) == b"being checked"
    assert os.listdir(reopened.tmp) == []


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), start=st.integers(0, 3200), length=st.integers(0, 3200),
       chunk=st.integers(1, 700), stream_chunk=st.integers(1, 500))
def test_ranges_and_streams_are_slices(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                                       start: int, length: int, chunk: int,
                                       stream_chunk: int) -> None:
    async def check() -> None:
        root = tmp_path_factory.mktemp("blobs")
        store = await FsBlobStore.create(root, fsync=False, chunk_size=chunk, pack_max=0)
        pieces = [data[i:i + stream_chunk] for i in range(0, len(data), stream_chunk)]

        async def stream() -> AsyncIterator[bytes]:
            for piece in pieces:
                yield piece

        ref = await store.put_stream(stream())
        assert ref.id == hashlib.sha256(data).hexdigest() and ref.size == len(data)
        end = start + length
        assert await store.read_range(ref.id, start, end) == data[start:end]
        streamed = [c async for c in store.open(ref.id, start, end)]
        assert b"".join(streamed) == data[start:end]
        assert all(0 < len(c) <= chunk for c in streamed)

    asyncio.run(check())


@pytest.mark.parametrize("sync", ["filesystem", "file"])
async def test_concurrent_puts_each_get_their_own_durable_blob(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: fs_module.SyncMode) -> None:
    """Puts that arrive together share a worker hand-off; each still gets its
    own blob (and duplicates the same id), and a failing one fails alone."""
    store = await FsBlobStore.create(tmp_path / "blobs", sync=sync, pack_max=0)
    payloads = [b"blob %d " % i * 100 for i in range(40)] + [b"same"] * 5
    refs = await asyncio.gather(*(store.put(p) for p in payloads))
    for p, ref in zip(payloads, refs, strict=True):
        assert ref.id == hashlib.sha256(p).hexdigest() and ref.size == len(p)
        assert await store.get(ref.id) == p
    assert len({r.id for r in refs}) == 41

    bad_id = hashlib.sha256(b"bad").hexdigest()
    real_replace = os.replace

    def flaky(src: str, dst: str) -> None:
        if Path(dst).name == bad_id:
            raise OSError("disk says no")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    results = await asyncio.gather(store.put(b"good 1"), store.put(b"bad"), store.put(b"good 2"),
                                   return_exceptions=True)
    assert isinstance(results[1], OSError)
    assert not await store.exists(bad_id)
    assert await store.get(results[0].id) == b"good 1"  # type: ignore[union-attr]
    assert await store.get(results[2].id) == b"good 2"  # type: ignore[union-attr]
    assert os.listdir(store.tmp) == []
    await store.close()


async def test_puts_fail_rather_than_hang_when_no_worker_can_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await FsBlobStore.create(tmp_path / "blobs", pack_max=0)

    async def no_worker(*args: object, **kwargs: object) -> object:
        raise RuntimeError("cannot schedule new futures after shutdown")

    monkeypatch.setattr("server.blobs.fs.asyncio.to_thread", no_worker)
    with pytest.raises(RuntimeError, match="after shutdown"):
        await asyncio.wait_for(store.put(b"x"), timeout=5)
