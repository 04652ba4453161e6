"""Engines the tests run on: sqlite always, sqlite under fault injection, sqlite
through a commit server, and FoundationDB (plain and under fault injection)
where a cluster is reachable.  The ``engine`` fixture (tests/conftest.py) is
parametrized over them."""

from __future__ import annotations

import os
import tempfile

import pytest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.faults import FaultyEngine
from fdb_layers.engine.sqlite import SqliteEngine
from fdb_layers.engine.sqlite import CommitServer

# The FoundationDB client of the tests (and of the node processes they start, which
# inherit the environment) backs off 1 ms before the first retry of a transaction
# instead of 10 ms, still doubling up to its 1 s cap.  Under fault injection a third
# of the commits are retried, and the default first backoff made the FoundationDB
# runs of the model tests mostly waiting: what is retried, and how often, is the same.
# The client reads FDB_NETWORK_OPTION_* when its network starts (here, before any).
os.environ.setdefault("FDB_NETWORK_OPTION_KNOB", "default_backoff=0.001")


def _cluster_of_this_worker() -> None:
    """Under pytest-xdist, worker gwN uses the N-th test cluster of ops/test (which starts
    one per worker): the tests clear the whole key space, so two workers never share one.
    Set in the environment before the client starts, so node processes a test starts
    inherit it."""
    clusters = os.environ.get("FDBMAIL_TEST_CLUSTER_FILES", "").split()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not clusters or not worker:
        return
    number = int(worker.removeprefix("gw"))
    if number >= len(clusters):
        raise RuntimeError(f"pytest worker {worker} has no FoundationDB test cluster of its "
                           f"own ({len(clusters)} for the run): run as many workers")
    os.environ["FDB_CLUSTER_FILE"] = clusters[number]


_cluster_of_this_worker()


def _fdb_skip_reason() -> str | None:
    if not os.environ.get("FDB_CLUSTER_FILE"):
        return "FoundationDB engine not exercised: FDB_CLUSTER_FILE is not set"
    try:
        from fdb_layers.engine.foundationdb import load_fdb

        load_fdb(730)
    except Exception as e:
        return f"FoundationDB engine not exercised: {e}"
    return None


FDB_SKIP_REASON = _fdb_skip_reason()

ENGINE_PARAMS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("sqlite+faults", id="sqlite+faults"),
    pytest.param("sqlite-remote", id="sqlite-remote"),
    pytest.param(
        "foundationdb",
        id="foundationdb",
        marks=pytest.mark.skipif(FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or ""),
    ),
    pytest.param(
        "foundationdb+faults",
        id="foundationdb+faults",
        marks=pytest.mark.skipif(FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or ""),
    ),
]


class _ServedSqlite(SqliteEngine):
    """A store opened with ``commit_socket``: reads the file itself, commits
    through a CommitServer of another engine (in this process, for the tests;
    the wire is the same as between processes)."""

    served: tuple[CommitServer, SqliteEngine]

    async def close(self) -> None:
        await super().close()
        server, owner = self.served
        await server.close()
        await owner.close()
        os.rmdir(os.path.dirname(server.path))


async def make_engine(kind: str, tmp_path: object) -> Engine:
    if kind == "sqlite":
        return await SqliteEngine.open(f"{tmp_path}/store.sqlite3")
    if kind == "sqlite-remote":
        owner = await SqliteEngine.open(f"{tmp_path}/store.sqlite3")
        # a short folder: a Unix socket's path is limited to 107 bytes
        server = CommitServer(owner, tempfile.mkdtemp(prefix="fdbmail-sock-") + "/commit.sock")
        await server.start()
        served = await _ServedSqlite.open(f"{tmp_path}/store.sqlite3", commit_socket=server.path)
        served.served = (server, owner)
        return served
    if kind == "sqlite+faults":
        inner = await SqliteEngine.open(f"{tmp_path}/store.sqlite3")
        return FaultyEngine(inner, not_committed_rate=0.2, unknown_result_rate=0.2, seed=7)
    from fdb_layers.engine.foundationdb import FoundationDbEngine

    if kind == "foundationdb+faults":  # conflicts and unknown results after a real commit
        return FaultyEngine(await make_engine("foundationdb", tmp_path),
                            not_committed_rate=0.2, unknown_result_rate=0.2, seed=7)
    engine = await FoundationDbEngine.open()
    # each test gets an empty keyspace under a fresh prefix would need key
    # rewriting; instead clear the user keyspace (only ever on a test cluster)
    tr = engine.create_transaction()
    tr.clear_range(b"", b"\xff")
    await tr.commit()
    return engine
