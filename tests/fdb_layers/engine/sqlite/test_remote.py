"""The embedded engine's commits from other processes (fdb_layers/engine/sqlite/remote.py).
The whole contract also runs on a served engine (tests/support/engines.py:
"sqlite-remote"); pushed watches: test_watches.py."""

from __future__ import annotations

import asyncio
import os
import pickle
import stat
import struct
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fdb_layers import keys
from fdb_layers.engine.base import CommitUnknownResult, NotCommitted, StoreError, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.engine.sqlite import SqliteEngine
from fdb_layers.engine.sqlite import CommitServer
from fdb_layers.engine.sqlite.wire import decode_request

ROOT = Path(__file__).resolve().parents[4]
COUNTER = b"remote/counter"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[SqliteEngine, CommitServer, str]]:
    # a short folder: a Unix socket's path is limited to 107 bytes
    sock_dir = tempfile.mkdtemp(prefix="fdbmail-sock-")
    owner = await SqliteEngine.open(tmp_path / "store.sqlite3")
    server = CommitServer(owner, f"{sock_dir}/commit.sock")
    await server.start()
    try:
        yield owner, server, server.path
    finally:
        await server.close()
        await owner.close()
        os.rmdir(sock_dir)


async def _put(engine: SqliteEngine, n: int) -> None:
    async def body(tr: Transaction) -> None:
        tr.set(COUNTER, keys.encode_int(n))

    await transact(engine, body)


async def _count(engine: SqliteEngine) -> int:
    async def body(tr: Transaction) -> bytes | None:
        return await tr.get(COUNTER)

    value = await transact(engine, body)
    return keys.decode_int(value) if value is not None else 0


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from fdb_layers.engine.sqlite import SqliteEngine
    from fdb_layers.engine.run import transact

    async def main():
        engine = await SqliteEngine.open(sys.argv[1], commit_socket=sys.argv[2])
        async def incr(tr):  # read-modify-write: conflicts are resolved by the server
            value = await tr.get(b"remote/counter")
            n = int.from_bytes(value, "little") if value else 0
            tr.set(b"remote/counter", (n + 1).to_bytes(8, "little"))
        await asyncio.gather(*(transact(engine, incr) for _ in range(int(sys.argv[3]))))
        await engine.close()

    asyncio.run(main())
    """
)


async def test_other_processes_commit_through_the_server_without_lost_updates(
        tmp_path: Path, served: tuple[SqliteEngine, CommitServer, str]) -> None:
    owner, _, sock = served

    async def incr(tr: Transaction) -> None:
        value = await tr.get(COUNTER)
        n = keys.decode_int(value) if value else 0
        tr.set(COUNTER, keys.encode_int(n + 1))

    children = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(tmp_path / "store.sqlite3"), sock, "60",
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(2)]
    await asyncio.gather(*(transact(owner, incr) for _ in range(60)))
    for child in children:
        assert await asyncio.wait_for(child.wait(), 60) == 0
    assert await _count(owner) == 180


async def test_the_socket_is_for_the_owner_only(
        served: tuple[SqliteEngine, CommitServer, str]) -> None:
    mode = stat.S_IMODE(os.stat(served[2]).st_mode)
    assert mode == 0o600


async def test_a_stale_read_fails_with_not_committed(
        tmp_path: Path, served: tuple[SqliteEngine, CommitServer, str]) -> None:
    owner, _, sock = served
    client = await SqliteEngine.open(tmp_path / "store.sqlite3", commit_socket=sock)
    try:
        tr = client.create_transaction()
        await tr.get(COUNTER)
        await _put(owner, 5)
        tr.set(COUNTER, keys.encode_int(1))
        with pytest.raises(NotCommitted):
            await tr.commit()
        tr.cancel()
        assert await _count(client) == 5
    finally:
        await client.close()


def _frame(request_id: int, body: bytes) -> bytes:
    return struct.pack("<II", request_id, len(body)) + body


async def test_hostile_frames_get_an_error_and_the_server_keeps_serving(
        tmp_path: Path, served: tuple[SqliteEngine, CommitServer, str]) -> None:
    owner, _, sock = served
    reader, writer = await asyncio.open_unix_connection(sock)

    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    for i, body in enumerate([
        pickle.dumps(Evil()),                                     # a global: refused
        b"not a pickle",
        pickle.dumps((1, 2, 3)),                                  # not a commit
        pickle.dumps((0, set(), [], set(), [], [("set", "str key", b"v")])),
        pickle.dumps((0, set(), [], set(), [], [("drop_table", b"k", b"v")])),
    ], start=1):
        writer.write(_frame(i, body))
        request_id, length = struct.unpack("<II", await reader.readexactly(8))
        code, message = pickle.loads(await reader.readexactly(length))
        assert request_id == i and code != 0 and message
    assert not (tmp_path / "pwned").exists()
    writer.write(struct.pack("<II", 99, 2**31))                  # an oversized frame: dropped
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()

    client = await SqliteEngine.open(tmp_path / "store.sqlite3", commit_socket=sock)
    try:
        await _put(client, 7)
        assert await _count(owner) == 7
    finally:
        await client.close()


async def test_server_gone_mid_commit_is_an_unknown_result(tmp_path: Path) -> None:
    sock_dir = tempfile.mkdtemp(prefix="fdbmail-sock-")
    path = f"{sock_dir}/commit.sock"
    got = asyncio.Event()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)  # a request arrives; the "server" dies without answering
        got.set()
        writer.close()

    owner = await SqliteEngine.open(tmp_path / "store.sqlite3")  # creates the file
    await owner.close()
    fake = await asyncio.start_unix_server(swallow, path)
    client = await SqliteEngine.open(tmp_path / "store.sqlite3", commit_socket=path)
    try:
        tr = client.create_transaction()
        tr.set(COUNTER, b"x")
        with pytest.raises(CommitUnknownResult):
            await tr.commit()
        assert got.is_set()
    finally:
        await client.close()
        fake.close()
        await fake.wait_closed()
        os.unlink(path)
        os.rmdir(sock_dir)


async def test_no_server_is_not_committed(tmp_path: Path) -> None:
    owner = await SqliteEngine.open(tmp_path / "store.sqlite3")
    await owner.close()
    client = await SqliteEngine.open(tmp_path / "store.sqlite3",
                                     commit_socket=str(tmp_path / "absent.sock"))
    try:
        tr = client.create_transaction()
        tr.set(COUNTER, b"x")
        with pytest.raises(NotCommitted):
            await tr.commit()
    finally:
        await client.close()


async def test_a_worker_transaction_with_conflicts_but_no_snapshot_commits(
        tmp_path: Path, served: tuple[SqliteEngine, CommitServer, str]) -> None:
    """A worker's transaction with read conflicts that never read the file (an
    explicit conflict key; a read of a key inside its own clear_range) used the
    worker's last commit version as its read version: older than the owner's
    commits since, it failed with not_committed on every retry."""
    owner, _, sock = served
    client = await SqliteEngine.open(tmp_path / "store.sqlite3", commit_socket=sock)
    sub = keys.Subspace(("remote-nosnap",))
    try:
        await _put(owner, 1)  # after the worker opened: its own version is now stale
        for _ in range(3):
            async def own_write(tr: Transaction) -> None:
                tr.set(sub.pack((5,)), b"owner")
            await transact(owner, own_write)

        async def conflict_key_only(tr: Transaction) -> None:
            tr.add_read_conflict_key(COUNTER)
            tr.set(sub.pack(("a",)), b"1")

        async def read_own_clear(tr: Transaction) -> None:
            tr.clear_range(*sub.range())
            assert await tr.get(sub.pack((5,))) is None
            tr.set(sub.pack(("b",)), b"1")

        await asyncio.wait_for(transact(client, conflict_key_only), 5)
        await asyncio.wait_for(transact(client, read_own_clear), 5)
        assert await _count(owner) == 1
    finally:
        await client.close()


async def test_the_server_checks_limits_and_a_bad_mutation_fails_only_its_transaction(
        tmp_path: Path, served: tuple[SqliteEngine, CommitServer, str]) -> None:
    """The server re-checks FoundationDB's limits on every commit a client sends
    and answers with their codes; the commits that arrived with it, in the same
    batch, commit."""
    owner, _, sock = served

    def commit(*mutations: tuple[str, bytes, bytes]) -> bytes:
        return pickle.dumps((0, set(), [], set(), [], list(mutations)))

    stamp_at_20 = b"\x00" * 10 + (20).to_bytes(4, "little")  # offset past the end
    frames = {
        1: (commit(("set", b"limits/ok1", b"1")), 0),
        2: (commit(("set", b"k" * 10_001, b"v")), 2102),
        3: (commit(("set", b"limits/v", b"x" * 100_001)), 2103),
        4: (commit(("set", b"\xff/system", b"v")), 2004),
        5: (commit(("clear_range", b"limits/b", b"limits/a")), 2005),
        6: (commit(("set_versionstamped_key", b"limits/vsk" + stamp_at_20, b"v")), 2000),
        7: (commit(("set_versionstamped_value", b"limits/vsv", stamp_at_20)), 2000),
        8: (commit(*[("set", b"limits/big%d" % i, b"x" * 99_999) for i in range(101)]), 2101),
        9: (commit(("set", b"limits/ok2", b"2")), 0),
    }
    reader, writer = await asyncio.open_unix_connection(sock)
    try:
        # one write: the server reads every frame before its writer runs, so the
        # good commits share a batch with the bad ones
        writer.write(b"".join(_frame(i, body) for i, (body, _) in frames.items()))
        codes = {}
        for _ in frames:
            request_id, length = struct.unpack("<II", await reader.readexactly(8))
            codes[request_id] = pickle.loads(await reader.readexactly(length))[0]
    finally:
        writer.close()
    assert codes == {i: code for i, (_, code) in frames.items()}

    async def read(tr: Transaction) -> list[bytes]:
        return [kv.key for kv in await tr.get_range(b"limits/", b"limits0")]

    assert await transact(owner, read) == [b"limits/ok1", b"limits/ok2"]


async def test_a_malformed_mutation_in_a_batch_fails_only_its_transaction(
        tmp_path: Path) -> None:
    """Past every check, a mutation the writer cannot apply fails its own
    transaction; the others of its batch commit."""
    from fdb_layers.engine.sqlite.conflicts import ConflictSet
    from fdb_layers.engine.sqlite.mutations import Mutation, Op
    from fdb_layers.engine.base import InvalidOperation
    from fdb_layers.engine.sqlite.commit import Commit

    engine = await SqliteEngine.open(tmp_path / "store.sqlite3")
    try:
        loop = asyncio.get_running_loop()
        batch = [[Mutation(Op.SET, b"batch/1", b"1")],
                 [Mutation(Op.SET, b"batch/bad", b"x"),  # then an offset past the end:
                  Mutation(Op.VS_VALUE, b"batch/vs", b"short" + (9).to_bytes(4, "little"))],
                 [Mutation(Op.SET, b"batch/2", b"2")]]
        commits = [Commit(0, ConflictSet(), ConflictSet(), mutations, loop.create_future())
                   for mutations in batch]
        results = await asyncio.gather(*(engine.submit(c) for c in commits),
                                       return_exceptions=True)
        assert isinstance(results[1], InvalidOperation)
        assert not isinstance(results[0], BaseException)
        assert not isinstance(results[2], BaseException)

        async def read(tr: Transaction) -> list[bytes]:
            return [kv.key for kv in await tr.get_range(b"batch/", b"batch0")]

        assert await transact(engine, read) == [b"batch/1", b"batch/2"]
    finally:
        await engine.close()


async def test_hostile_watch_requests_get_an_error_and_the_server_keeps_serving(
        tmp_path: Path, served: tuple[SqliteEngine, CommitServer, str]) -> None:
    owner, _, sock = served
    reader, writer = await asyncio.open_unix_connection(sock)
    for i, body in enumerate([
        pickle.dumps(("watch", "not a list")),
        pickle.dumps(("watch", ["a str key"])),
        pickle.dumps(("watch", [b"\xffsystem"])),                 # FoundationDB refuses it too
        pickle.dumps(("watch", [b"k" * 10_001])),                 # over the key limit
        pickle.dumps(("unwatch", None)),
    ], start=1):
        writer.write(_frame(i, body))
        request_id, length = struct.unpack("<II", await reader.readexactly(8))
        code, message = pickle.loads(await reader.readexactly(length))
        assert request_id == i and code != 0 and message
    writer.write(_frame(0, pickle.dumps(("unwatch", None))))      # wants no answer: gets none
    writer.write(_frame(7, pickle.dumps(("watch", [b"ok"]))))
    request_id, length = struct.unpack("<II", await reader.readexactly(8))
    assert request_id == 7 and pickle.loads(await reader.readexactly(length))[0] == 0
    writer.close()

    client = await SqliteEngine.open(tmp_path / "store.sqlite3", commit_socket=sock)
    try:
        await _put(client, 3)
        assert await _count(owner) == 3
    finally:
        await client.close()


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=200),
    st.recursive(st.none() | st.booleans() | st.integers() | st.binary(max_size=12)
                 | st.text(max_size=8) | st.sampled_from(["watch", "unwatch", "set"]),
                 lambda inner: st.lists(inner, max_size=6) | st.tuples(inner, inner)
                 | st.tuples(inner, inner, inner) | st.frozensets(st.binary(max_size=4)),
                 max_leaves=20).map(lambda v: pickle.dumps(v, protocol=5)),
))
def test_any_request_body_decodes_or_is_refused(body: bytes) -> None:
    """A frame body is a request, or a ValueError / the contract's StoreError:
    nothing else escapes the decoder (the server answers those with an error)."""
    loop = asyncio.new_event_loop()
    try:
        try:
            decode_request(body, loop.create_future())
        except (ValueError, StoreError):
            pass
    finally:
        loop.close()
