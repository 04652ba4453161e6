"""The maintenance worker: scheduling and metrics around fdb_layers.mail.maintenance."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from fdb_layers.mail import accounts
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mail.maintenance import Retention, get_maintenance_state, take_maintenance_lease
from fdb_layers.mail.messages import NewEmail, append_email, email_id_for
from server.config import load_config
from server.maintenance import MaintenanceWorker

DAY = 86400.0


ENGINE_KINDS = ["sqlite"]  # the suite's engine fixture (tests/conftest.py), on sqlite only


def runs(result: str) -> float:
    return REGISTRY.get_sample_value("fdbmail_maintenance_runs_total", {"result": result}) or 0.0


def items(kind: str) -> float:
    return REGISTRY.get_sample_value("fdbmail_maintenance_items_total", {"kind": kind}) or 0.0


def worker(engine: Engine, interval: float = 60.0) -> MaintenanceWorker:
    return MaintenanceWorker(engine, interval=interval, keep=Retention(), pass_interval=3600,
                             lease_seconds=60, account_batch=10)


async def deliver_old(engine: Engine, account: str) -> None:
    await transact(engine, accounts.ensure_account, account)
    email = NewEmail(email_id=email_id_for("old"), blob_id="b" * 64, size=10,
                     received_at=time.time() - 8 * DAY)
    await transact(engine, append_email, account, "inbox", email, delivery_id="old")


async def test_worker_runs_passes_and_counts(engine: Engine) -> None:
    await deliver_old(engine, "alice")
    completed, deliveries = runs("completed"), items("deliveries")
    w = worker(engine, interval=0.05)
    task = asyncio.create_task(w.run())
    await asyncio.wait_for(w.job.wait_runs(2), 10)  # the pass, then a run that finds it done
    w.stop()
    await asyncio.wait_for(task, 5)
    assert runs("completed") == completed + 1  # later runs find the pass not due
    assert items("deliveries") == deliveries + 1
    state = await transact(engine, get_maintenance_state)
    assert state.started is None and state.last_started is not None
    idle = runs("idle")
    result = await w.run_once()
    assert result is not None and not result.due and runs("idle") == idle + 1


async def test_worker_skips_when_another_node_holds_the_lease(engine: Engine) -> None:
    await transact(engine, take_maintenance_lease, "other-node", time.time(), 600.0)
    skipped = runs("skipped")
    result = await worker(engine).run_once()
    assert result is not None and not result.ran
    assert runs("skipped") == skipped + 1


async def test_worker_survives_errors(engine: Engine) -> None:
    await engine.close()  # every transaction now fails
    errors = runs("error")
    assert await worker(engine).run_once() is None
    assert runs("error") == errors + 1


async def test_worker_stops_when_cancelled(engine: Engine) -> None:
    task = asyncio.create_task(worker(engine, interval=3600).run())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_from_config() -> None:
    config = load_config(env={})
    w = MaintenanceWorker.from_config(config, None)  # type: ignore[arg-type]
    assert w is not None and w.interval == 600 and w.pass_interval == 3600
    assert w.keep == Retention(change_seconds=30 * DAY, max_modseqs=0, delivery_seconds=7 * DAY)
    assert w.lease_seconds == 60 and w.account_batch == 100
    tuned = load_config(env={"FDBMAIL_MAINTENANCE_CHANGE_RETENTION_SECONDS": "3600",
                             "FDBMAIL_MAINTENANCE_CHANGE_MAX_MODSEQS": "1000",
                             "FDBMAIL_MAINTENANCE_DELIVERY_RETENTION_SECONDS": "0"})
    t = MaintenanceWorker.from_config(tuned, None)  # type: ignore[arg-type]
    assert t is not None
    assert t.keep == Retention(change_seconds=3600, max_modseqs=1000, delivery_seconds=0)
    off = load_config(env={"FDBMAIL_MAINTENANCE_INTERVAL_SECONDS": "0"})
    assert MaintenanceWorker.from_config(off, None) is None  # type: ignore[arg-type]


async def test_node_runs_the_worker(tmp_path: Path) -> None:
    from server.node.node import Node

    path = tmp_path / "fdbmail.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\nhttp_listen = "127.0.0.1:0"\n'
        '[imap]\nlisten = "127.0.0.1:0"\ntls_listen = "127.0.0.1:0"\n'
        '[smtp]\nmx_listen = "127.0.0.1:0"\nsubmission_listen = "127.0.0.1:0"\n'
        'submissions_listen = "127.0.0.1:0"\n[maintenance]\ninterval_seconds = 1\n')
    node = Node(load_config(path, env={}))
    completed = runs("completed")
    await node.start()
    try:
        job, = (j for j in node.jobs if j.name == "maintenance")
        await asyncio.wait_for(job.wait_runs(1), 30)  # the first run comes after ~1 s
        assert runs("completed") > completed
    finally:
        await node.stop()
    assert node.jobs == []
