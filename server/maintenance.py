"""The maintenance worker: every node runs one; the store's lease lets one work at a time.

The pass itself (what is kept, the lease, the cursor) is
``fdb_layers.mail.maintenance.run_maintenance``; this module only schedules it, with
jitter so that nodes do not all wake together, and records metrics after each
run.  Settings: ``[maintenance]`` (server/maintenance_settings.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from prometheus_client import Counter, Histogram

from fdb_layers.mail import Engine, MaintenanceResult, Retention, run_maintenance
from server.config import Config
from server.maintenance_settings import MaintenanceSettings
from server.periodic import run_every

log = logging.getLogger(__name__)

RUNS = Counter(
    "fdbmail_maintenance_runs_total",
    "Maintenance attempts, by result (completed: a pass reached its end; skipped: another "
    "node holds the lease; idle: the last pass is recent; lease_lost; error).",
    ["result"],
)
ITEMS = Counter(
    "fdbmail_maintenance_items_total",
    "What maintenance cleaned, by kind (storages: deleted mailboxes emptied; deliveries: "
    "delivery markers forgotten; modseqs: modseqs of changes and tombstones forgotten; "
    "accounts: accounts visited; skipped_accounts: written by a newer layout, left alone).",
    ["kind"],
)
SECONDS = Histogram(
    "fdbmail_maintenance_seconds",
    "Duration of maintenance runs that held the lease and had a pass to work on.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)


class MaintenanceWorker:
    """Runs :func:`run_maintenance` every ``interval`` seconds (± 20 % jitter) until stopped."""

    def __init__(self, engine: Engine, *, interval: float, keep: Retention,
                 pass_interval: float, lease_seconds: float, account_batch: int) -> None:
        self.engine = engine
        self.interval = interval
        self.keep = keep
        self.pass_interval = pass_interval
        self.lease_seconds = lease_seconds
        self.account_batch = account_batch
        self.holder = f"maint-{uuid.uuid4().hex[:12]}"
        self._stop = asyncio.Event()

    @classmethod
    def from_config(cls, config: Config, engine: Engine) -> MaintenanceWorker | None:
        """The worker ``[maintenance]`` asks for, or None if it is off on this node."""
        s = config.get(MaintenanceSettings)
        if s.interval_seconds <= 0:
            return None
        keep = Retention(change_seconds=float(s.change_retention_seconds),
                         max_modseqs=int(s.change_max_modseqs),
                         delivery_seconds=float(s.delivery_retention_seconds))
        return cls(engine, interval=float(s.interval_seconds), keep=keep,
                   pass_interval=float(s.pass_interval_seconds),
                   lease_seconds=float(s.lease_seconds),
                   account_batch=max(1, int(s.account_batch)))

    async def run_once(self) -> MaintenanceResult | None:
        """One attempt; errors are logged and counted, never raised."""
        started = time.perf_counter()
        try:
            result = await run_maintenance(
                self.engine, keep=self.keep, holder=self.holder,
                lease_seconds=self.lease_seconds, pass_interval=self.pass_interval,
                account_batch=self.account_batch)
        except Exception:
            RUNS.labels("error").inc()
            log.exception("maintenance run failed")
            return None
        if not result.ran:
            RUNS.labels("skipped").inc()
            return result
        if not result.due:
            RUNS.labels("idle").inc()
            return result
        SECONDS.observe(time.perf_counter() - started)
        RUNS.labels("lease_lost" if result.lease_lost else "completed").inc()
        for kind, n in (("storages", result.storages), ("deliveries", result.deliveries),
                        ("modseqs", result.modseqs), ("accounts", result.accounts),
                        ("skipped_accounts", result.skipped_accounts)):
            if n:
                ITEMS.labels(kind).inc(n)
        return result

    async def run(self) -> None:
        """Loop until :meth:`stop`; cancel-safe (a cancelled pass is carried on later)."""
        await run_every(self.interval, self._stop, self.run_once)

    def stop(self) -> None:
        self._stop.set()
