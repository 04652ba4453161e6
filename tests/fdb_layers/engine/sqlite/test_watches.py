"""Watches across the processes of a node (fdb_layers/engine/sqlite/watches.py and
remote.py): a commit made in any process wakes every process's watches on the
keys it wrote at once, pushed by the commit server.

Every engine here polls once an hour, so only a push can wake a watch in time.
FoundationDB needs none of this (its watches are cluster-wide); the contract's
own watch test runs on every engine (tests/fdb_layers/engine/test_watches.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fdb_layers.engine.sqlite import CommitServer, SqliteEngine
from tests.fdb_layers.engine.helpers import S, write_key

ROOT = Path(__file__).resolve().parents[4]
NO_POLL = 3600.0  # seconds: far longer than any test waits
WAKE = 10.0  # seconds a pushed wake-up may take at most (it takes milliseconds)


@dataclass
class Node:
    """A node's store: the main process's engine serving commits, and workers'."""

    path: Path
    owner: SqliteEngine
    server: CommitServer
    workers: list[SqliteEngine]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    sock_dir = tempfile.mkdtemp(prefix="fdbmail-sock-")  # a Unix socket's path is short
    path = tmp_path / "store.sqlite3"
    owner = await SqliteEngine.open(path, poll_seconds=NO_POLL)
    server = CommitServer(owner, f"{sock_dir}/commit.sock")
    await server.start()
    workers = [await SqliteEngine.open(path, commit_socket=server.path, poll_seconds=NO_POLL)
               for _ in range(2)]
    try:
        yield Node(path, owner, server, workers)
    finally:
        for worker in workers:
            await worker.close()
        await server.close()
        await owner.close()
        os.rmdir(sock_dir)


async def test_a_workers_commit_wakes_the_other_workers_and_the_main_process(
        node: Node) -> None:
    key = S.pack(("pushed", "from-worker"))
    await write_key(node.owner, key, b"0")
    other = await node.workers[1].watch(key)
    main = await node.owner.watch(key)
    await write_key(node.workers[0], key, b"1")
    await asyncio.wait_for(other.wait(), WAKE)
    await asyncio.wait_for(main.wait(), WAKE)


async def test_a_commit_of_the_main_process_wakes_every_worker(node: Node) -> None:
    key = S.pack(("pushed", "from-main"))
    watches = [await worker.watch(key) for worker in node.workers]
    await write_key(node.owner, key, b"1")
    await asyncio.gather(*(asyncio.wait_for(w.wait(), WAKE) for w in watches))


async def test_a_watch_on_a_key_not_written_stays_asleep(node: Node) -> None:
    """The push of a commit carries only the keys it wrote: once the watch on the
    written key fired (the push has arrived), the other watch is still waiting."""
    written, untouched = S.pack(("pushed", "written")), S.pack(("pushed", "untouched"))
    watcher = node.workers[1]
    quiet = await watcher.watch(untouched)
    woken = await watcher.watch(written)
    await write_key(node.workers[0], written, b"1")
    await asyncio.wait_for(woken.wait(), WAKE)
    await write_key(node.owner, S.pack(("pushed", "elsewhere")), b"2")
    again = await watcher.watch(written)  # a later push, to know the one before arrived
    await write_key(node.owner, written, b"3")
    await asyncio.wait_for(again.wait(), WAKE)
    waiter = asyncio.ensure_future(quiet.wait())
    for _ in range(3):  # let the waiter run: it would finish if the watch had fired
        await asyncio.sleep(0)
    assert not waiter.done()
    quiet.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_a_cancelled_watch_is_no_longer_pushed(node: Node) -> None:
    """A cancelled watch never fires; the key's next watch does."""
    key = S.pack(("pushed", "cancelled"))
    watcher = node.workers[1]
    cancelled = await watcher.watch(key)
    cancelled.cancel()
    later = await watcher.watch(key)
    await write_key(node.workers[0], key, b"1")
    await asyncio.wait_for(later.wait(), WAKE)
    with pytest.raises(asyncio.CancelledError):
        await cancelled.wait()


async def test_watches_are_registered_again_after_the_connection_is_lost(
        node: Node) -> None:
    """A worker whose connection to the commit server broke registers its watched
    keys again on the next connection, so pushes resume."""
    key = S.pack(("pushed", "reconnect"))
    watcher = node.workers[1]
    watch = await watcher.watch(key)
    remote = watcher._remote
    assert remote is not None and remote._writer is not None
    remote._writer.close()  # the connection breaks (as when the main process restarts it)
    await write_key(watcher, S.pack(("pushed", "reconnecting")), b"x")  # a new connection
    await write_key(node.workers[0], key, b"1")
    await asyncio.wait_for(watch.wait(), WAKE)


_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from fdb_layers.engine.sqlite import SqliteEngine

    async def main():
        engine = await SqliteEngine.open(sys.argv[1], commit_socket=sys.argv[2],
                                         poll_seconds=3600)
        watch = await engine.watch(bytes.fromhex(sys.argv[3]))
        print("watching", flush=True)
        await asyncio.wait_for(watch.wait(), 60)
        print("woken", flush=True)
        await engine.close()

    asyncio.run(main())
    """
)


async def test_a_commit_wakes_a_watch_in_another_process(node: Node) -> None:
    key = S.pack(("pushed", "process"))
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WORKER, str(node.path), node.server.path, key.hex(),
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    try:
        assert await asyncio.wait_for(child.stdout.readline(), 60) == b"watching\n"
        await write_key(node.workers[0], key, b"1")
        assert await asyncio.wait_for(child.stdout.readline(), WAKE) == b"woken\n"
        assert await asyncio.wait_for(child.wait(), 30) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
