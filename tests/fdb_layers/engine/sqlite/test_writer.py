"""The embedded engine's writer: WAL truncation, uncertain and failed commits, the
conflict history, a full disk."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from fdb_layers.engine import base
from fdb_layers.engine.base import Transaction
from fdb_layers.engine.run import transact
from fdb_layers.engine.sqlite import SqliteEngine
from tests.support import disk
from tests.support.disk import TinyDisk
from tests.fdb_layers.engine.helpers import S, read_key, write_key


tiny_disk = disk.tiny_disk  # a small filesystem to fill (a fixture)


async def test_wal_is_truncated_under_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The WAL does not grow without end while transactions keep running."""
    import fdb_layers.engine.sqlite.writer as sqlite_writer

    monkeypatch.setattr(sqlite_writer, "_WAL_CHECK_EVERY", 10)
    monkeypatch.setattr(sqlite_writer, "_WAL_TRUNCATE_BYTES", 256 * 1024)
    engine = await SqliteEngine.open(tmp_path / "wal.sqlite3")
    try:
        async def write(tr: Transaction, i: int) -> None:
            await tr.get(b"wal/%d" % (i - 1))
            tr.set(b"wal/%d" % i, b"x" * 20_000)

        sizes = []
        for i in range(300):
            await transact(engine, write, i)
            sizes.append(os.path.getsize(tmp_path / "wal.sqlite3-wal"))
    finally:
        await engine.close()
    assert max(sizes) > 256 * 1024  # it did grow past the threshold ...
    assert any(b < a for a, b in zip(sizes, sizes[1:], strict=False))  # ... and was truncated
    assert max(sizes) < 300 * 20_000


async def test_failed_sqlite_commit_is_reported_as_unknown_result(tmp_path: Path) -> None:
    """An I/O error at COMMIT may or may not have made the batch durable: the
    caller gets commit_unknown_result (retryable, so layer writes must be
    idempotent), and a reader older than the uncertain commit then conflicts."""
    import sqlite3

    engine = await SqliteEngine.open(tmp_path / "io.sqlite3")
    assert engine._writer is not None
    real = engine._writer.conn
    assert real is not None

    class CommitFails:
        """The writer connection, except that COMMIT reports an I/O error after committing."""

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            cursor = real.execute(sql, *args)
            if sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return cursor

    try:
        await write_key(engine, b"io/seen", b"0")
        reader = engine.create_transaction()
        await reader.get(b"io/seen")
        engine._writer.conn = CommitFails()  # type: ignore[assignment]
        tr = engine.create_transaction()
        tr.set(b"io/seen", b"1")
        with pytest.raises(base.CommitUnknownResult):
            await tr.commit()
        tr.cancel()
        engine._writer.conn = real
        reader.set(b"io/out", b"x")
        with pytest.raises(base.NotCommitted):  # it did commit: the older reader conflicts
            await reader.commit()
        reader.cancel()
        assert await read_key(engine, b"io/seen") == b"1"
    finally:
        engine._writer.conn = real
        await engine.close()


async def test_failed_wal_checkpoint_does_not_fail_a_durable_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpoint after COMMIT runs on a batch that is already durable: if it
    raises, the commits are still acknowledged, and the next one commits too."""
    import sqlite3

    import fdb_layers.engine.sqlite.writer as sqlite_writer

    monkeypatch.setattr(sqlite_writer, "_WAL_CHECK_EVERY", 1)
    monkeypatch.setattr(sqlite_writer, "_WAL_TRUNCATE_BYTES", 0)
    engine = await SqliteEngine.open(tmp_path / "ckpt.sqlite3")
    assert engine._writer is not None
    real = engine._writer.conn
    assert real is not None

    class CheckpointFails:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if "wal_checkpoint" in sql:
                raise sqlite3.OperationalError("disk I/O error")
            return real.execute(sql, *args)

    engine._writer.conn = CheckpointFails()  # type: ignore[assignment]
    try:
        await write_key(engine, b"ckpt/a", b"1")
        await write_key(engine, b"ckpt/b", b"2")
        assert await read_key(engine, b"ckpt/a") == b"1"
        assert await read_key(engine, b"ckpt/b") == b"2"
    finally:
        engine._writer.conn = real
        await engine.close()


@pytest.mark.parametrize("kind", ["sqlite", "sqlite-remote"])
async def test_a_read_version_older_than_the_conflict_history_is_too_old(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the commits after a transaction's read version have left the conflict
    history, its commit fails with transaction_too_old (1007, as FoundationDB's
    resolvers answer), not with a conflict it cannot know of."""
    import fdb_layers.engine.sqlite.writer as sqlite_writer

    from tests.support.engines import make_engine

    monkeypatch.setattr(sqlite_writer, "_HISTORY_SECONDS", 0.2)
    engine = await make_engine(kind, tmp_path)
    try:
        tr = engine.create_transaction()
        await tr.get(S.pack(("hist", "read")))
        await write_key(engine, S.pack(("hist", "elsewhere")), b"1")
        await asyncio.sleep(0.3)
        await write_key(engine, S.pack(("hist", "later")), b"1")  # prunes the history
        tr.set(S.pack(("hist", "out")), b"x")
        with pytest.raises(base.TransactionTooOld):
            await tr.commit()
        tr.cancel()
    finally:
        await engine.close()


async def test_a_full_disk_fails_commits_fast_and_clears_when_space_returns(
        tiny_disk: TinyDisk, caplog: pytest.LogCaptureFixture) -> None:
    """On a real full filesystem (ENOSPC while the WAL grows) a commit fails at
    once with StoreFull, a temporary store error that the retry loop does not
    retry; it is logged once, not per commit; the engine reports it until a write
    fits again, and commits succeed again once space returns."""
    import logging
    import time

    engine = await SqliteEngine.open(tiny_disk.path / "store.sqlite3")
    try:
        await write_key(engine, b"full/before", b"x")
        tiny_disk.fill()
        caplog.set_level(logging.WARNING, logger="fdb_layers.engine.sqlite")

        async def big(tr: Transaction, i: int) -> None:
            tr.set(b"full/%d" % i, b"x" * 50_000)

        started = time.monotonic()
        for i in range(20):
            with pytest.raises(base.StoreFull) as raised:
                await asyncio.wait_for(transact(engine, big, i), 2)
            assert not raised.value.retryable
        assert time.monotonic() - started < 2
        assert len([r for r in caplog.records if "disk full" in r.getMessage()]) == 1
        with pytest.raises(base.StoreFull, match="disk full since"):
            await engine.check_writable()
        assert await read_key(engine, b"full/before") == b"x"  # reads go on

        tiny_disk.free()
        await engine.check_writable()
        await transact(engine, big, 99)
        assert await read_key(engine, b"full/99") == b"x" * 50_000
    finally:
        await engine.close()


async def test_a_full_database_is_a_store_full_error_through_a_commit_server(
        tmp_path: Path) -> None:
    """SQLite's size limit gives the same SQLITE_FULL: the error reaches a client
    of the commit server as StoreFull too; raising the limit lets commits in."""
    from tests.support.engines import make_engine

    engine = await make_engine("sqlite-remote", tmp_path)
    owner = engine.served[1]  # type: ignore[attr-defined]
    writer = owner._writer.conn
    assert writer is not None
    try:
        await write_key(engine, b"cap/a", b"x")
        pages = writer.execute("PRAGMA page_count").fetchone()[0]
        await asyncio.get_running_loop().run_in_executor(
            owner._writer._pool, writer.execute, f"PRAGMA max_page_count={pages}")

        async def big(tr: Transaction) -> None:
            tr.set(b"cap/big", b"x" * 50_000)

        with pytest.raises(base.StoreFull):
            await asyncio.wait_for(transact(engine, big), 2)
        await asyncio.get_running_loop().run_in_executor(
            owner._writer._pool, writer.execute, "PRAGMA max_page_count=1073741823")
        await transact(engine, big)
        assert await read_key(engine, b"cap/big") == b"x" * 50_000
    finally:
        await engine.close()
