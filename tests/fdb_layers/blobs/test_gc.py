"""The blob GC (fdb_layers/blobs/gc.py), on every engine (sqlite, sqlite under
injected faults, FoundationDB when a cluster is configured)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fdb_layers.blobs import gc as blobgc
from fdb_layers.blobs import refs as blobrefs
from fdb_layers.blobs.gc import collect_blobs, get_gc_lease, take_gc_lease
from fdb_layers.blobs.refs import (
    BlobBeingDeleted,
    add_blob_ref,
    get_blob_size,
    list_unreferenced,
    remove_blob_ref,
)
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.keys import pack
from fdb_layers.layout import get_layouts
from server.blobs.base import BlobRef, BlobStore
from server.blobs.fs import FsBlobStore
from tests.support.blobs import set_modified
from tests.server.blobs.conftest import open_s3_store
from tests.support import s3 as s3_support
from tests.support.s3 import S3Server
from tests.fdb_layers.blobs.helpers import Clock, refcount

s3_server = s3_support.s3_server  # the session's S3 server (a fixture)
HOUR = 3600.0
ID = "a" * 64


@pytest.fixture(params=["packed", "files"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FsBlobStore]:
    # small blobs in the pack (the default), or every blob a file
    pack_max = 0 if request.param == "files" else 256 * 1024
    s = await FsBlobStore.create(tmp_path / "blobs", fsync=False, pack_max=pack_max)
    yield s
    await s.close()


def make_old(store: FsBlobStore, blob_id: str, age: float) -> None:
    set_modified(store, blob_id, time.time() - age)


async def deliver(engine: Engine, store: BlobStore, data: bytes, ref_id: str) -> BlobRef:
    ref = await store.put(data)
    await transact(engine, add_blob_ref, ref.id, ref.size, ref_id=ref_id)
    return ref


async def test_gc_removes_unreferenced_after_grace(engine: Engine, store: FsBlobStore) -> None:
    clock = Clock()
    kept = await deliver(engine, store, b"kept", "m1")
    gone = await deliver(engine, store, b"gone", "m2")
    make_old(store, kept.id, 2 * HOUR)
    make_old(store, gone.id, 2 * HOUR)
    await transact(engine, remove_blob_ref, gone.id, ref_id="m2", now=clock())

    result = await collect_blobs(engine, store, clock=clock)  # within the grace period
    assert result.ran and result.deleted == 0
    assert await store.exists(gone.id)

    clock.advance(HOUR + 1)
    result = await collect_blobs(engine, store, clock=clock)
    assert result.deleted == 1 and result.deleted_ids == [gone.id] and result.orphans == 0
    assert not await store.exists(gone.id)
    assert await store.exists(kept.id)  # referenced: never collected
    assert await transact(engine, get_blob_size, gone.id) is None
    assert await transact(engine, list_unreferenced, 1e12) == []
    assert "blobrefs" in await transact(engine, get_layouts)

    # a second run finds nothing; the blob can be delivered again
    assert (await collect_blobs(engine, store, clock=clock)).deleted == 0
    again = await deliver(engine, store, b"gone", "m3")
    assert again == gone and await refcount(engine, gone.id) == 1


async def test_gc_removes_orphans_after_grace(engine: Engine, store: FsBlobStore) -> None:
    clock = Clock()
    orphan = await store.put(b"crashed before the index commit")
    referenced = await deliver(engine, store, b"referenced", "m1")
    unreferenced_recently = await deliver(engine, store, b"recent", "m2")
    await transact(engine, remove_blob_ref, unreferenced_recently.id, ref_id="m2", now=clock())
    for ref in (orphan, referenced, unreferenced_recently):
        make_old(store, ref.id, 2 * HOUR)
    fresh_orphan = await store.put(b"upload in progress")

    result = await collect_blobs(engine, store, clock=clock)
    assert result.orphans == 1 and result.deleted_ids == [orphan.id]
    assert not await store.exists(orphan.id)
    for ref in (referenced, unreferenced_recently, fresh_orphan):
        assert await store.exists(ref.id)


async def test_gc_keeps_a_blob_put_again(engine: Engine, store: FsBlobStore) -> None:
    """A writer that re-puts an unreferenced blob (a dedupe) before its commit keeps it."""
    clock = Clock()
    ref = await deliver(engine, store, b"body", "m1")
    await transact(engine, remove_blob_ref, ref.id, ref_id="m1", now=clock() - 2 * HOUR)
    make_old(store, ref.id, 2 * HOUR)
    await store.put(b"body")  # refreshes it

    result = await collect_blobs(engine, store, clock=clock)
    assert result.deleted == 0 and result.kept == 1
    assert await store.exists(ref.id)
    # it is unreferenced from now on, and collected a grace period later
    (since, _), = await transact(engine, list_unreferenced, 1e12)
    assert since >= clock() - 60
    clock.advance(HOUR + 10)
    result = await collect_blobs(engine, store, clock=clock)
    assert result.deleted == 1


async def test_rereference_before_claim_wins(engine: Engine, store: FsBlobStore,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference committed after the candidate was listed but before the claim."""
    clock = Clock()
    ref = await deliver(engine, store, b"body", "m1")
    await transact(engine, remove_blob_ref, ref.id, ref_id="m1", now=clock() - 2 * HOUR)
    make_old(store, ref.id, 2 * HOUR)

    class ReferencingStore:
        """Commits a reference the moment the collector starts its orphan scan,
        i.e. after it listed the candidates of the unreferenced phase."""

        def __init__(self) -> None:
            self.calls = 0

        async def delete_if_older(self, blob_id: str, cutoff: float) -> bool:
            return await store.delete_if_older(blob_id, cutoff)

        async def exists(self, blob_id: str) -> bool:
            return await store.exists(blob_id)

        async def list(self) -> AsyncIterator[tuple[str, float]]:
            async for entry in store.list():
                yield entry

    original = blobrefs.list_unreferenced

    async def list_then_reference(tr: Transaction, before: float, *, after: bytes = b"",
                                  limit: int = 100) -> list[tuple[float, str]]:
        rows = await original(tr, before, after=after, limit=limit)
        if rows:
            await add_blob_ref(tr, ref.id, ref.size, ref_id="m2")
        return rows

    monkeypatch.setattr(blobgc, "list_unreferenced", list_then_reference)
    result = await collect_blobs(engine, ReferencingStore(), clock=clock)
    assert result.deleted == 0
    assert await store.exists(ref.id)
    assert await refcount(engine, ref.id) == 1


async def test_reference_during_deletion_is_refused(engine: Engine, store: FsBlobStore) -> None:
    """Between the claim and the finish, a writer gets BlobBeingDeleted; it re-puts
    and retries after the collector is done, and the blob is there."""
    clock = Clock()
    ref = await deliver(engine, store, b"body", "m1")
    await transact(engine, remove_blob_ref, ref.id, ref_id="m1", now=clock() - 2 * HOUR)
    make_old(store, ref.id, 2 * HOUR)
    refused: list[BaseException] = []

    class RacingStore:
        async def delete_if_older(self, blob_id: str, cutoff: float) -> bool:
            try:
                await transact(engine, add_blob_ref, ref.id, ref.size, ref_id="m2")
            except BlobBeingDeleted as e:
                refused.append(e)
            return await store.delete_if_older(blob_id, cutoff)

        async def exists(self, blob_id: str) -> bool:
            return await store.exists(blob_id)

        async def list(self) -> AsyncIterator[tuple[str, float]]:
            async for entry in store.list():
                yield entry

    result = await collect_blobs(engine, RacingStore(), clock=clock)
    assert result.deleted == 1 and len(refused) == 1
    assert await refcount(engine, ref.id) == 0
    # the writer's retry: put again, then reference
    again = await deliver(engine, store, b"body", "m2")
    assert again == ref and await store.get(ref.id) == b"body"
    assert await refcount(engine, ref.id) == 1


async def test_stale_marker_is_resumed(engine: Engine, store: FsBlobStore) -> None:
    """A collector died between deleting a blob and clearing its marker."""
    clock = Clock()
    ref = await deliver(engine, store, b"body", "m1")
    await transact(engine, remove_blob_ref, ref.id, ref_id="m1", now=clock() - 2 * HOUR)

    async def crashed_claim(tr: Transaction) -> None:
        tr.set(blobrefs.DELETING.pack((ref.id,)), pack(("dead-node", clock() - 600)))

    await transact(engine, crashed_claim)
    await store.delete(ref.id)
    with pytest.raises(BlobBeingDeleted):
        await transact(engine, add_blob_ref, ref.id, ref.size, ref_id="m2")

    result = await collect_blobs(engine, store, clock=clock)
    assert result.resumed == 1
    assert await transact(engine, get_blob_size, ref.id) is None
    await deliver(engine, store, b"body", "m2")
    assert await refcount(engine, ref.id) == 1


async def test_live_marker_of_another_collector_is_left_alone(
    engine: Engine, store: FsBlobStore
) -> None:
    clock = Clock()
    orphan = await store.put(b"orphan")
    make_old(store, orphan.id, 2 * HOUR)

    async def other_claim(tr: Transaction) -> None:
        tr.set(blobrefs.DELETING.pack((orphan.id,)), pack(("other-node", clock())))

    await transact(engine, other_claim)
    result = await collect_blobs(engine, store, clock=clock)
    assert result.orphans == 0 and await store.exists(orphan.id)


# --- the lease -------------------------------------------------------------------------


async def test_lease_is_exclusive(engine: Engine, store: FsBlobStore) -> None:
    clock = Clock()
    orphan = await store.put(b"orphan")
    make_old(store, orphan.id, 2 * HOUR)
    assert await transact(engine, take_gc_lease, "node-a", clock(), 60.0)
    assert not await transact(engine, take_gc_lease, "node-b", clock(), 60.0)
    assert await transact(engine, take_gc_lease, "node-a", clock(), 60.0)  # renewal

    result = await collect_blobs(engine, store, clock=clock, holder="node-b")
    assert not result.ran and await store.exists(orphan.id)

    clock.advance(61)  # node-a's lease expired (node-a died)
    result = await collect_blobs(engine, store, clock=clock, holder="node-b")
    assert result.ran and result.orphans == 1
    assert await transact(engine, get_gc_lease) is None  # released


async def test_concurrent_collectors_one_runs(engine: Engine, store: FsBlobStore) -> None:
    clock = Clock()
    for i in range(5):
        ref = await store.put(b"orphan %d" % i)
        make_old(store, ref.id, 2 * HOUR)
    results = await asyncio.gather(
        *(collect_blobs(engine, store, clock=clock, holder=f"node-{i}") for i in range(4))
    )
    ran = [r for r in results if r.ran]
    assert sum(r.orphans for r in results) == 5
    assert len(ran) >= 1
    assert [entry async for entry in store.list()] == []


async def test_collector_stops_when_its_lease_is_taken(
    engine: Engine, store: FsBlobStore
) -> None:
    clock = Clock()
    refs = []
    for i in range(6):
        ref = await store.put(b"orphan %d" % i)
        make_old(store, ref.id, 2 * HOUR)
        refs.append(ref)

    class SlowStore:
        """The first delete takes 'two minutes': the lease (60 s) expires and
        another node takes it."""

        async def delete_if_older(self, blob_id: str, cutoff: float) -> bool:
            deleted = await store.delete_if_older(blob_id, cutoff)
            if clock.offset == 0:
                clock.advance(120)
                assert await transact(engine, take_gc_lease, "thief", clock(), 3600.0)
            return deleted

        async def exists(self, blob_id: str) -> bool:
            return await store.exists(blob_id)

        async def list(self) -> AsyncIterator[tuple[str, float]]:
            async for entry in store.list():
                yield entry

    result = await collect_blobs(engine, SlowStore(), clock=clock, holder="victim", batch=2,
                                 marker_ttl=1000.0)
    assert result.lease_lost
    assert result.orphans == 2  # the first batch only
    assert (await transact(engine, get_gc_lease) or ("", 0.0))[0] == "thief"


async def test_orphan_scan_interval(engine: Engine, store: FsBlobStore) -> None:
    """Listing the blob store is costly: at most once per interval, whichever node runs."""
    clock = Clock()
    first = await store.put(b"orphan 1")
    make_old(store, first.id, 2 * HOUR)
    result = await collect_blobs(engine, store, clock=clock, orphan_scan_interval=HOUR)
    assert result.orphan_scan and result.orphans == 1

    second = await store.put(b"orphan 2")
    make_old(store, second.id, 2 * HOUR)
    result = await collect_blobs(engine, store, clock=clock, orphan_scan_interval=HOUR,
                                 holder="another-node")
    assert not result.orphan_scan and await store.exists(second.id)

    clock.advance(HOUR)
    result = await collect_blobs(engine, store, clock=clock, orphan_scan_interval=HOUR)
    assert result.orphan_scan and result.orphans == 1


async def test_gc_on_s3(engine: Engine, s3_server: S3Server) -> None:
    """The collector against a real S3 server (blob times are the server's, so
    the clock moves forward instead of the blobs back)."""
    s3 = await open_s3_store(s3_server)
    try:
        clock = Clock()
        orphan = await s3.put(b"orphan")
        kept = await deliver(engine, s3, b"kept", "m1")
        gone = await deliver(engine, s3, b"gone", "m2")
        await transact(engine, remove_blob_ref, gone.id, ref_id="m2", now=clock())
        assert (await collect_blobs(engine, s3, clock=clock)).deleted_ids == []

        clock.advance(HOUR + 60)
        result = await collect_blobs(engine, s3, clock=clock, orphan_scan_interval=0)
        assert sorted(result.deleted_ids) == sorted([orphan.id, gone.id])
        assert result.deleted == 1 and result.orphans == 1
        assert [blob_id async for blob_id, _ in s3.list()] == [kept.id]
    finally:
        await s3.close()
