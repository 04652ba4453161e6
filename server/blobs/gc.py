"""The blob GC worker: every node runs one; the store's lease lets one work at a time.

The collection itself (what is garbage, the races, the lease) is
``fdb_layers.blobs.gc.collect_blobs``; this module only schedules it, with
jitter so that nodes do not all wake together, and records metrics after each
run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from prometheus_client import Counter, Histogram

from fdb_layers.blobs.gc import GcResult, collect_blobs
from fdb_layers.engine.base import Engine
from server.config import Config
from server.periodic import run_every

from .base import BlobStore
from .settings import BlobSettings

log = logging.getLogger(__name__)

GC_RUNS = Counter(
    "fdbmail_blobs_gc_runs_total",
    "Blob GC attempts, by result (collected; skipped: another node holds the lease; "
    "lease_lost; error).",
    ["result"],
)
GC_BLOBS = Counter(
    "fdbmail_blobs_gc_blobs_total",
    "Blobs the GC handled, by outcome (deleted: unreferenced; orphan: never referenced; "
    "kept: put again meanwhile; resumed: a dead collector's deletion finished).",
    ["outcome"],
)
GC_SECONDS = Histogram(
    "fdbmail_blobs_gc_run_seconds",
    "Duration of blob GC runs that held the lease.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)


class BlobGcWorker:
    """Runs :func:`collect_blobs` every ``interval`` seconds (± 20 % jitter) until stopped."""

    def __init__(self, engine: Engine, store: BlobStore, *, interval: float, grace: float,
                 orphan_scan_interval: float) -> None:
        self.engine = engine
        self.store = store
        self.interval = interval
        self.grace = grace
        self.orphan_scan_interval = orphan_scan_interval
        self.holder = f"gc-{uuid.uuid4().hex[:12]}"
        self._stop = asyncio.Event()

    @classmethod
    def from_config(cls, config: Config, engine: Engine, store: BlobStore) -> BlobGcWorker | None:
        """The worker ``[blobs]`` asks for, or None if collection is off on this node."""
        s = config.get(BlobSettings)
        if s.gc_interval_seconds <= 0:
            return None
        return cls(engine, store, interval=float(s.gc_interval_seconds),
                   grace=float(s.gc_grace_seconds),
                   orphan_scan_interval=float(s.gc_orphan_scan_interval_seconds))

    async def run_once(self) -> GcResult | None:
        """One attempt; errors are logged and counted, never raised."""
        started = time.perf_counter()
        try:
            result = await collect_blobs(self.engine, self.store, grace=self.grace,
                                         holder=self.holder,
                                         orphan_scan_interval=self.orphan_scan_interval)
        except Exception:
            GC_RUNS.labels("error").inc()
            log.exception("blob GC run failed")
            return None
        if not result.ran:
            GC_RUNS.labels("skipped").inc()
            return result
        GC_SECONDS.observe(time.perf_counter() - started)
        GC_RUNS.labels("lease_lost" if result.lease_lost else "collected").inc()
        for outcome, n in (("deleted", result.deleted), ("orphan", result.orphans),
                           ("kept", result.kept), ("resumed", result.resumed)):
            if n:
                GC_BLOBS.labels(outcome).inc(n)
        if (result.deleted or result.orphans or result.resumed) and (
                self.store.capabilities.releases_space):
            try:
                await self.store.release_space()
            except Exception:  # the space stays free for later puts; next run tries again
                log.exception("giving the blob store's free space back failed")
        return result

    async def run(self) -> None:
        """Loop until :meth:`stop`; cancel-safe."""
        await run_every(self.interval, self._stop, self.run_once)

    def stop(self) -> None:
        self._stop.set()
