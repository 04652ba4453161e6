"""The embedded engine keeps what it committed: across kill -9, and with a second
process on the same file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fdb_layers.engine import base
from fdb_layers.engine.base import Transaction
from fdb_layers.engine.run import transact
from fdb_layers.engine.sqlite import SqliteEngine
from tests.fdb_layers.engine.helpers import read_key, write_key


# -- durability (sqlite: a killed process keeps what it committed) ---------------------

_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from fdb_layers.engine.sqlite import SqliteEngine
    from fdb_layers.engine.run import transact

    async def main():
        engine = await SqliteEngine.open(sys.argv[1])
        for i in range(50):
            async def body(tr, i=i):
                tr.set(b"durable/%03d" % i, b"v%d" % i)
            await transact(engine, body)
            print(i, flush=True)  # acknowledged: committed and fsynced
        await asyncio.sleep(3600)  # killed here, without closing anything

    asyncio.run(main())
    """
)


async def test_committed_data_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "durable.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[4],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[4])},
    )
    acknowledged = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged == 49:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert acknowledged == 49
    engine = await SqliteEngine.open(path)
    try:
        async def read(tr: Transaction) -> list[base.KeyValue]:
            return await tr.get_range(b"durable/", b"durable0")

        rows = await transact(engine, read)
    finally:
        await engine.close()
    assert [kv.value for kv in rows] == [b"v%d" % i for i in range(50)]


async def test_second_process_commits_are_seen_and_conflict(tmp_path: Path) -> None:
    """Two engines on one file (two processes in production) stay serializable."""
    path = tmp_path / "shared.sqlite3"
    a = await SqliteEngine.open(path)
    b = await SqliteEngine.open(path)
    try:
        key = b"shared/k"
        await write_key(a, key, b"a")
        t = a.create_transaction()
        try:
            await t.get(key)
            await write_key(b, key, b"b")
            t.set(key, b"a2")
            with pytest.raises(base.NotCommitted):
                await t.commit()
        finally:
            t.cancel()
        assert await read_key(a, key) == b"b"
    finally:
        await a.close()
        await b.close()
