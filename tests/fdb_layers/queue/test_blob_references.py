"""The queue's blob reference against the real blob GC (fdb_layers/blobs/gc.py) and
a real file blob store: the body of a queued message is kept until the queue lets go."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fdb_layers.blobs.gc import collect_blobs
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.queue import DELIVERED, RecipientResult, delete_message, lease_due, record_attempt
from server.blobs.fs import FsBlobStore
from tests.fdb_layers.blobs.helpers import Clock
from tests.fdb_layers.queue.helpers import enqueue, envelope
from tests.support.blobs import set_modified

HOUR = 3600.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FsBlobStore]:
    s = await FsBlobStore.create(tmp_path / "blobs", fsync=False)
    yield s
    await s.close()


async def test_the_gc_keeps_a_queued_body_and_collects_it_once_delivered(
        engine: Engine, store: FsBlobStore) -> None:
    clock = Clock()
    body = await store.put(b"Subject: hi\r\n\r\nout it goes\r\n")
    await enqueue(engine, "q1", envelope(1, blob_id=body.id, due_at=clock()))
    set_modified(store, body.id, time.time() - 2 * HOUR)
    clock.advance(2 * HOUR)
    await collect_blobs(engine, store, clock=clock, orphan_scan_interval=0)
    assert await store.exists(body.id)  # queued: kept

    leased = await transact(engine, lease_due, clock(), "w1", 60.0, 1)
    assert [m.queue_id for m in leased] == ["q1"]
    await transact(engine, record_attempt, "q1", "w1",
                   {0: RecipientResult(DELIVERED, "250 ok")}, now=clock())
    await collect_blobs(engine, store, clock=clock)
    assert await store.exists(body.id)  # within the grace period after the queue let go
    clock.advance(HOUR + 1)
    result = await collect_blobs(engine, store, clock=clock)
    assert result.deleted_ids == [body.id]
    assert not await store.exists(body.id)


async def test_a_deleted_message_lets_its_body_go(engine: Engine, store: FsBlobStore) -> None:
    clock = Clock()
    body = await store.put(b"Subject: never mind\r\n\r\n")
    await enqueue(engine, "q1", envelope(1, blob_id=body.id))
    await enqueue(engine, "q2", envelope(1, blob_id=body.id))  # the same body twice
    for _ in range(2):
        await transact(engine, delete_message, "q1", clock())
    clock.advance(2 * HOUR)
    await collect_blobs(engine, store, clock=clock)
    assert await store.exists(body.id)  # q2 still holds it
    for _ in range(2):
        await transact(engine, delete_message, "q2", clock())
    clock.advance(2 * HOUR)
    result = await collect_blobs(engine, store, clock=clock)
    assert result.deleted_ids == [body.id]
