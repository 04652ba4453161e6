"""The maintenance worker: every node runs one; the store's lease lets one work at a time.

The pass itself (what is kept, the lease, the cursor) is
``fdb_layers.mail.maintenance.run_maintenance``; this module only schedules it, with
jitter so that nodes do not all wake together, and records metrics after each
run.  Settings: ``[maintenance]`` (server/maintenance_settings.py).
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Histogram

from fdb_layers.mail import Engine, MaintenanceResult, Retention, run_maintenance, transact
from fdb_layers.queue import expire_tombstones
from server.config import Config
from server.node.jobs import JobMetrics, LeasedJob, Outcome
from server.maintenance_settings import MaintenanceSettings
from server.outbound.settings import OutboundSettings

log = logging.getLogger(__name__)

_TOMBSTONE_BATCH = 500  # expire_tombstones' default limit

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


def _classify(result: MaintenanceResult) -> Outcome:
    if not result.ran:
        return Outcome("skipped")
    if not result.due:
        return Outcome("idle")
    return Outcome("lease_lost" if result.lease_lost else "completed", timed=True,
                   items={"storages": result.storages, "deliveries": result.deliveries,
                          "modseqs": result.modseqs, "accounts": result.accounts,
                          "skipped_accounts": result.skipped_accounts})


class MaintenanceWorker:
    """Runs :func:`run_maintenance` every ``interval`` seconds (± 20 % jitter) until
    stopped (a :class:`LeasedJob`; a cancelled pass is carried on later)."""

    def __init__(self, engine: Engine, *, interval: float, keep: Retention,
                 pass_interval: float, lease_seconds: float, account_batch: int,
                 queue_tombstone_seconds: float = 7 * 86400.0) -> None:
        self.engine = engine
        self.queue_tombstone_seconds = queue_tombstone_seconds
        self.keep = keep
        self.pass_interval = pass_interval
        self.lease_seconds = lease_seconds
        self.account_batch = account_batch
        self.job: LeasedJob[MaintenanceResult] = LeasedJob(
            "maintenance", interval, self._pass, _classify,
            JobMetrics(RUNS, SECONDS, ITEMS), holder_prefix="maint")
        self.holder = self.job.holder
        self.interval = interval
        self.run_once = self.job.run_once
        self.run = self.job.run
        self.stop = self.job.stop

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
                   account_batch=max(1, int(s.account_batch)),
                   queue_tombstone_seconds=float(
                       config.get(OutboundSettings).tombstone_seconds))

    async def _pass(self, holder: str) -> MaintenanceResult:
        result = await run_maintenance(
            self.engine, keep=self.keep, holder=holder, lease_seconds=self.lease_seconds,
            pass_interval=self.pass_interval, account_batch=self.account_batch)
        if result.ran and result.due:   # the pass's holder forgets old queue tombstones
            await self._expire_queue_tombstones()
        return result

    async def _expire_queue_tombstones(self) -> None:
        """Finished outbound queue ids older than ``[outbound] tombstone_seconds``
        (``fdb_layers.queue.expire_tombstones``), in batches."""
        before = time.time() - self.queue_tombstone_seconds
        while await transact(self.engine, expire_tombstones, before) == _TOMBSTONE_BATCH:
            pass
