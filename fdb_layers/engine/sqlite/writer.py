"""The writer: the one thread of the one process that writes the SQLite file.

It checks each commit's read conflicts against the history of commits after its
read version (as FoundationDB's resolvers do), applies a batch of them in one
SQLite transaction with ``synchronous=FULL`` (the WAL is fsynced before COMMIT
returns), and only then resolves their futures: an acknowledged commit survives
``kill -9`` and power loss.  Commits that another process made on the file (the
history of which it does not hold) fail every older transaction that read
something.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..base import (
    MAX_TRANSACTION_SECONDS,
    CommitUnknownResult,
    NotCommitted,
    StoreError,
    StoreFull,
    TransactionTooOld,
)
from .commit import Commit, CommitResult
from .conflicts import ConflictSet
from .mutations import make_versionstamp
from .storage import SCHEMA, Fold, connect, is_full, read_version

log = logging.getLogger(__name__)

# Conflict history is kept a little longer than a transaction may live.
_HISTORY_SECONDS = MAX_TRANSACTION_SECONDS + 1.0
_MAX_BATCH = 256
_WAL_CHECK_EVERY = 256  # batches
_WAL_TRUNCATE_BYTES = 64 * 1024 * 1024
_FULL_LOG_SECONDS = 60.0  # a full disk is logged once, then at most once a minute
_PROBE_BYTES = 64 * 1024  # what a write must find room for before the disk counts as writable


class CommitUncertain(Exception):
    """COMMIT itself failed: the batch may or may not be durable."""


class DiskFull:
    """Whether the store's disk is full, told once and then once an interval."""

    __slots__ = ("since", "refused", "logged_at")

    def __init__(self) -> None:
        self.since: float | None = None  # time.time() of the first refusal
        self.refused = 0  # commits refused since the last log line
        self.logged_at = 0.0

    def refuse(self, commits: int, error: BaseException) -> None:
        now = time.monotonic()
        self.refused += commits
        if self.since is None:
            self.since = time.time()
            log.error("store disk full: commits fail (temporarily) until space returns: %s",
                      error)
        elif now - self.logged_at >= _FULL_LOG_SECONDS:
            log.error("store disk still full: %d commits refused in the last %.0f s",
                      self.refused, now - self.logged_at)
        else:
            return
        self.logged_at, self.refused = now, 0

    def recovered(self) -> None:
        if self.since is not None:
            log.warning("store disk writable again after %.0f s (%d commits refused since "
                        "the last report)", time.time() - self.since, self.refused)
            self.since, self.refused = None, 0


@dataclass(slots=True)
class HistoryEntry:
    version: int
    at: float
    writes: ConflictSet


class Writer:
    """Commits to the file at ``path``; ``on_commit`` is told the write conflict
    sets of each batch's commits once they are durable (watches fire from it)."""

    def __init__(self, path: str, on_commit: Callable[[list[ConflictSet]], None]) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self._on_commit = on_commit
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
        self._pending: list[Commit] = []
        self._committing = False
        self._drain_task: asyncio.Task[None] | None = None
        self._history: collections.deque[HistoryEntry] = collections.deque()
        self._history_versions: collections.deque[int] = collections.deque()
        # _history holds every commit after _floor (commits up to it were before this
        # writer opened, or pruned: an older reader is too old) except those of other
        # processes up to _foreign, which only the file's version tells of (an older
        # reader may have missed a write it read: it conflicts).
        self._floor = 0
        self._foreign = 0
        self.version = 0  # the last version committed or observed
        self._closed = False
        self._batches = 0
        self._full = DiskFull()

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._open)

    def _open(self) -> None:
        conn = connect(self.path)
        conn.executescript(SCHEMA)
        self.conn = conn
        self.version = self._floor = read_version(conn)

    def submit(self, c: Commit) -> asyncio.Future[CommitResult]:
        """Queue ``c``; its future resolves once it is durable (or failed)."""
        if self._closed:
            c.future.set_exception(StoreError("the engine is closed"))
            return c.future
        self._pending.append(c)
        if not self._committing:
            self._committing = True
            self._drain_task = asyncio.get_running_loop().create_task(self._drain())
        return c.future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
                try:
                    results = await loop.run_in_executor(
                        self._pool, self._write_batch, batch)
                except BaseException as e:  # the batch did not commit (disk full, I/O error)
                    err: StoreError
                    if is_full(e):
                        self._full.refuse(len(batch), e)
                        err = StoreFull(f"store disk full: {e}")
                    else:
                        log.error("store commit failed", exc_info=e)
                        err = (CommitUnknownResult(f"sqlite commit may have failed: {e}")
                               if isinstance(e, CommitUncertain)
                               else StoreError(f"sqlite commit failed: {e}"))
                    for c in batch:
                        if not c.future.done():
                            c.future.set_exception(err)
                    continue
                if self._full.since is not None:
                    self._full.recovered()
                written: list[ConflictSet] = []
                for c, result in zip(batch, results, strict=True):
                    if isinstance(result, StoreError):
                        if not c.future.done():
                            c.future.set_exception(result)
                        continue
                    written.append(c.writes)  # durable, even if its caller went away
                    if not c.future.done():
                        c.future.set_result(result)
                if written:
                    try:
                        self._on_commit(written)
                    except Exception:
                        log.exception("a commit listener failed")
        finally:
            self._committing = False

    def _write_batch(self, batch: list[Commit]) -> list[CommitResult | StoreError]:
        """Writer thread: check conflicts, apply, fsync, record history."""
        conn = self.conn
        assert conn is not None
        now = time.monotonic()
        self._prune_history(now)
        conn.execute("BEGIN IMMEDIATE")
        try:
            db_version = read_version(conn)
            if db_version != self.version:  # another process committed
                self._foreign = db_version
                self.version = db_version
            version = db_version
            results: list[CommitResult | StoreError] = []
            added: list[HistoryEntry] = []
            fold = Fold(conn)
            for c in batch:
                refused = self._conflicts(c, added)
                if refused is not None:
                    results.append(refused)
                    continue
                stamp = make_versionstamp(version + 1, 0)
                try:
                    stamped = fold.add(c.mutations, stamp)
                except StoreError as e:  # a malformed mutation fails its transaction only
                    results.append(e)
                    continue
                version += 1
                for key in stamped:
                    c.writes.add_key(key)  # versionstamped keys, known only now
                added.append(HistoryEntry(version, now, c.writes))
                results.append((version, stamp))
            fold.flush()
            conn.execute("UPDATE meta SET value=? WHERE name='version'", (version,))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            # An I/O error while committing may or may not have made the batch
            # durable.  self.version stays behind, so the next batch sees the
            # file's version move (if it did) and fails every older reader.
            # A full disk (the WAL could not grow) did not commit it.
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if is_full(e):
                raise
            raise CommitUncertain(str(e)) from e
        self.version = version
        for entry in added:
            self._history.append(entry)
            self._history_versions.append(entry.version)
        self._batches += 1
        if self._batches % _WAL_CHECK_EVERY == 0:
            # The batch is durable: nothing after COMMIT may change its outcome.
            try:
                self._maybe_truncate_wal(conn)
            except Exception as e:
                log.warning("store WAL checkpoint failed (the commits stand; tried again "
                            "later): %s", e)
        return results

    def _maybe_truncate_wal(self, conn: sqlite3.Connection) -> None:
        """Under steady load some reader is always open, so SQLite's passive
        auto-checkpoints never get to restart the WAL and it grows without end.
        A TRUNCATE checkpoint restarts it once no reader uses it; it only ever
        holds up this writer thread, for at most 100 ms."""
        try:
            wal_size = os.path.getsize(self.path + "-wal")
        except OSError:
            return
        if wal_size > _WAL_TRUNCATE_BYTES:
            # Wait briefly, never long: a reader may be a task that awaits this very
            # batch; if readers remain, the next check tries again.
            conn.execute("PRAGMA busy_timeout=100")
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            finally:
                conn.execute("PRAGMA busy_timeout=30000")

    def _conflicts(self, c: Commit, added: list[HistoryEntry]) -> StoreError | None:
        """Why ``c`` may not commit (as FoundationDB's resolvers decide), or None."""
        if not c.reads:
            return None
        if c.read_version < self._floor:
            return TransactionTooOld("the transaction's read version is older than the "
                                     "conflict history")
        conflict = c.read_version < self._foreign
        start = bisect.bisect_right(self._history_versions, c.read_version)
        for i in range(start, len(self._history)):
            if conflict:
                break
            conflict = self._history[i].writes.intersects(c.reads)
        if conflict or any(entry.writes.intersects(c.reads) for entry in added):
            return NotCommitted("a key read by this transaction was written by a "
                                "transaction that committed after it began")
        return None

    def _prune_history(self, now: float) -> None:
        while self._history and now - self._history[0].at > _HISTORY_SECONDS:
            entry = self._history.popleft()
            self._history_versions.popleft()
            self._floor = max(self._floor, entry.version)

    # -- health -------------------------------------------------------------------

    async def check_writable(self) -> None:
        """Raise StoreFull while commits fail for a full disk.  Once one did, this
        tries a write of its own (it changes nothing), so that the store is seen
        writable again as soon as space returns, with or without traffic."""
        if self._full.since is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._probe)
        except BaseException as e:
            if not is_full(e):
                raise
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._full.since))
            raise StoreFull(f"disk full since {since}: commits are refused") from None
        self._full.recovered()

    def _probe(self) -> None:
        """Writer thread: commit _PROBE_BYTES to a row of its own, then delete it:
        the WAL can grow by that much again (a change of a few bytes fits in
        the last free blocks of a disk that is still too full for real commits)."""
        conn = self.conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT OR REPLACE INTO meta (name, value) "
                         "VALUES ('probe', zeroblob(?))", (_PROBE_BYTES,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("DELETE FROM meta WHERE name='probe'")

    async def close(self) -> None:
        """Refuse new commits, finish those handed in, close the file."""
        self._closed = True
        if self._drain_task is not None:
            await self._drain_task

        def _close() -> None:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

        await asyncio.get_running_loop().run_in_executor(self._pool, _close)
        self._pool.shutdown(wait=True)
