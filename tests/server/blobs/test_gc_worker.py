"""The GC worker: scheduling and metrics around fdb_layers.blobs.refs.collect_blobs."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

from prometheus_client import REGISTRY

from fdb_layers.blobs.gc import take_gc_lease
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from server.blobs import MeteredBlobStore
from server.blobs.fs import FsBlobStore
from server.blobs.pack import FILE_NAME
from server.blobs.gc import BlobGcWorker
from server.config import load_config
from tests.support.blobs import set_modified


ENGINE_KINDS = ["sqlite"]  # the suite's engine fixture (tests/conftest.py), on sqlite only


def runs(result: str) -> float:
    return REGISTRY.get_sample_value("fdbmail_blobs_gc_runs_total", {"result": result}) or 0.0


async def test_worker_collects_and_counts(engine: Engine, tmp_path: Path) -> None:
    store = await FsBlobStore.create(tmp_path / "blobs", fsync=False)
    ref = await store.put(b"orphan")
    old = time.time() - 7200
    set_modified(store, ref.id, old)
    orphans = REGISTRY.get_sample_value("fdbmail_blobs_gc_blobs_total",
                                        {"outcome": "orphan"}) or 0.0
    collected = runs("collected")

    worker = BlobGcWorker(engine, store, interval=0.05, grace=3600, orphan_scan_interval=0)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.job.wait_runs(1), 5)
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert not await store.exists(ref.id)
    assert runs("collected") > collected
    assert REGISTRY.get_sample_value("fdbmail_blobs_gc_blobs_total",
                                     {"outcome": "orphan"}) == orphans + 1


async def test_worker_gives_the_packs_free_space_back(engine: Engine, tmp_path: Path) -> None:
    store = MeteredBlobStore(await FsBlobStore.create(tmp_path / "blobs", fsync=False))
    inner = store.inner
    assert isinstance(inner, FsBlobStore)
    refs = [await store.put(os.urandom(20_000)) for _ in range(250)]  # ~5 MiB: two turns
    for ref in refs[:-1]:  # orphans, old enough to collect
        set_modified(inner, ref.id, time.time() - 7200)
    worker = BlobGcWorker(engine, store, interval=60, grace=3600, orphan_scan_interval=0)
    result = await worker.run_once()
    assert result is not None and result.orphans == len(refs) - 1
    pack = inner.root / FILE_NAME
    with sqlite3.connect(pack) as conn:
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert pack.stat().st_size < 200 * 1024
    assert len(await store.get(refs[-1].id)) == 20_000  # the fresh one is intact
    await store.close()


async def test_worker_skips_when_another_node_holds_the_lease(
    engine: Engine, tmp_path: Path
) -> None:
    store = await FsBlobStore.create(tmp_path / "blobs", fsync=False)
    await transact(engine, take_gc_lease, "other-node", time.time(), 600.0)
    skipped = runs("skipped")
    worker = BlobGcWorker(engine, store, interval=60, grace=3600, orphan_scan_interval=0)
    result = await worker.run_once()
    assert result is not None and not result.ran
    assert runs("skipped") == skipped + 1


async def test_worker_survives_errors(engine: Engine, tmp_path: Path) -> None:
    store = await FsBlobStore.create(tmp_path / "blobs", fsync=False)
    await engine.close()  # every transaction now fails
    errors = runs("error")
    worker = BlobGcWorker(engine, store, interval=60, grace=3600, orphan_scan_interval=0)
    assert await worker.run_once() is None
    assert runs("error") == errors + 1


def test_from_config(tmp_path: Path) -> None:
    config = load_config(env={})
    worker = BlobGcWorker.from_config(config, None, None)  # type: ignore[arg-type]
    assert worker is not None and worker.interval == 300 and worker.grace == 3600
    assert worker.orphan_scan_interval == 86400
    off = load_config(env={"FDBMAIL_BLOBS_GC_INTERVAL_SECONDS": "0"})
    assert BlobGcWorker.from_config(off, None, None) is None  # type: ignore[arg-type]
