"""The maintenance pass forgets finished queue ids older than ``[outbound]
tombstone_seconds``: until then a finished queue id is not queued again."""

from __future__ import annotations

import time

from fdb_layers.engine.run import transact
from fdb_layers.mail import Retention
from fdb_layers.queue import delete_message
from server.maintenance import MaintenanceWorker
from server.outbound.outbox import Outbox
from tests.server.outbound.conftest import Site


def worker(site: Site, tombstone_seconds: float) -> MaintenanceWorker:
    return MaintenanceWorker(site.engine, interval=600.0, keep=Retention(),
                             pass_interval=0.0, lease_seconds=60.0, account_batch=10,
                             queue_tombstone_seconds=tombstone_seconds)


async def test_maintenance_expires_queue_tombstones(site: Site) -> None:
    outbox = Outbox(site.engine, site.blobs)
    assert await outbox.enqueue("q1", "alice@example.com", ["c@remote.test"], b"x\r\n")
    assert await transact(site.engine, delete_message, "q1", time.time() - 100)
    assert not await outbox.enqueue("q1", "alice@example.com", ["c@remote.test"], b"x\r\n")
    await worker(site, 3600.0).run_once()       # too recent: kept
    assert not await outbox.enqueue("q1", "alice@example.com", ["c@remote.test"], b"x\r\n")
    await worker(site, 10.0).run_once()
    assert await outbox.enqueue("q1", "alice@example.com", ["c@remote.test"], b"x\r\n")
