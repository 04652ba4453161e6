"""The blob GC worker: every node runs one; the store's lease lets one work at a time.

The collection itself (what is garbage, the races, the lease) is
``fdb_layers.blobs.gc.collect_blobs``; this module only schedules it, with
jitter so that nodes do not all wake together, and records metrics after each
run.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Histogram

from fdb_layers.blobs.gc import GcResult, collect_blobs
from fdb_layers.engine.base import Engine
from server.config import Config
from server.node.jobs import JobMetrics, LeasedJob, Outcome

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


def _classify(result: GcResult) -> Outcome:
    if not result.ran:
        return Outcome("skipped")
    return Outcome("lease_lost" if result.lease_lost else "collected", timed=True,
                   items={"deleted": result.deleted, "orphan": result.orphans,
                          "kept": result.kept, "resumed": result.resumed})


class BlobGcWorker:
    """Runs :func:`collect_blobs` every ``interval`` seconds (± 20 % jitter) until stopped
    (a :class:`LeasedJob`)."""

    def __init__(self, engine: Engine, store: BlobStore, *, interval: float, grace: float,
                 orphan_scan_interval: float) -> None:
        self.engine = engine
        self.store = store
        self.grace = grace
        self.orphan_scan_interval = orphan_scan_interval
        self.job: LeasedJob[GcResult] = LeasedJob(
            "blob GC", interval, self._collect, _classify,
            JobMetrics(GC_RUNS, GC_SECONDS, GC_BLOBS), holder_prefix="gc",
            after=self._release_space)
        self.holder = self.job.holder
        self.interval = interval
        self.run_once = self.job.run_once
        self.run = self.job.run
        self.stop = self.job.stop

    @classmethod
    def from_config(cls, config: Config, engine: Engine, store: BlobStore) -> BlobGcWorker | None:
        """The worker ``[blobs]`` asks for, or None if collection is off on this node."""
        s = config.get(BlobSettings)
        if s.gc_interval_seconds <= 0:
            return None
        return cls(engine, store, interval=float(s.gc_interval_seconds),
                   grace=float(s.gc_grace_seconds),
                   orphan_scan_interval=float(s.gc_orphan_scan_interval_seconds))

    async def _collect(self, holder: str) -> GcResult:
        return await collect_blobs(self.engine, self.store, grace=self.grace, holder=holder,
                                   orphan_scan_interval=self.orphan_scan_interval)

    async def _release_space(self, result: GcResult) -> None:
        """Give the store's freed space back (the space stays free for later puts if
        this fails; the next run tries again)."""
        if (result.deleted or result.orphans or result.resumed) and (
                self.store.capabilities.releases_space):
            await self.store.release_space()
