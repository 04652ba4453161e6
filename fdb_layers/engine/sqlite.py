"""The embedded engine: FoundationDB's contract on one SQLite file.

How it keeps the contract:

* **Snapshot reads.**  Each transaction reads through its own SQLite reader
  connection inside one read transaction (WAL mode), so every read sees the
  snapshot of its first read, and readers never wait for the writer.  The
  snapshot's commit version (row ``version`` of table ``meta``) is the read version.
* **Serializable commits (optimistic, like FoundationDB's resolvers).**  Writes
  are buffered in the transaction.  At commit the read-conflict ranges are
  checked against the write ranges of every transaction that committed after
  the read version; any overlap fails with ``not_committed`` and the retry loop
  runs the body again.  Commits that another *process* made (the history
  of which we do not hold) fail every older transaction that read something.
* **Durable group commit.**  One writer thread applies a batch of checked
  transactions in one SQLite transaction with ``synchronous=FULL`` (the WAL is
  fsynced before COMMIT returns) and only then resolves their commit futures:
  a commit that was acknowledged survives ``kill -9`` and power loss.
* **FoundationDB's limits** (key/value/transaction size, 5 s) raise the same errors.
* **Watches** fire on in-process commits at once and on other processes'
  commits by polling.
* **Other processes' commits** (a node's workers): opened with
  ``commit_socket``, an engine reads the file itself and sends its commits to
  the process serving that socket (:mod:`.sqlite_remote`), whose history then
  holds every commit: conflicts stay exact and all share its group commit.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ._mutations import (
    ATOMIC,
    ConflictSet,
    Mutation,
    Op,
    RangeSet,
    apply_atomic,
    check_key,
    check_range,
    check_value,
    encode_add,
    encode_unsigned,
    fill_versionstamp,
    key_after,
    make_versionstamp,
    split_versionstamp,
)
from .base import (
    MAX_KEY_SIZE,
    MAX_TRANSACTION_SECONDS,
    MAX_TRANSACTION_SIZE,
    VERSIONSTAMP_SIZE,
    AccessedUnreadable,
    InvalidOperation,
    CommitUnknownResult,
    KeyValue,
    NotCommitted,
    StoreError,
    StoreFull,
    TransactionTooLarge,
    TransactionTooOld,
)
from .sqlite_remote import CommitClient

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('version', 0);
"""

# Conflict history is kept a little longer than a transaction may live.
_HISTORY_SECONDS = MAX_TRANSACTION_SECONDS + 1.0
_POLL_SECONDS = 0.5
_MAX_BATCH = 256
_WAL_CHECK_EVERY = 256  # batches
_WAL_TRUNCATE_BYTES = 64 * 1024 * 1024
_FULL_LOG_SECONDS = 60.0  # a full disk is logged once, then at most once a minute
_SQLITE_FULL = 13
_PROBE_BYTES = 64 * 1024  # what a write must find room for before the disk counts as writable


def _is_full(e: BaseException) -> bool:
    """SQLITE_FULL: the disk (or the database's size limit) is full."""
    if not isinstance(e, sqlite3.Error):
        return False
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF == _SQLITE_FULL
    return "database or disk is full" in str(e)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    # A multi-row write keeps a statement journal (the pages it changed, to undo
    # it alone); past 64 KiB SQLite spills it to a new temporary file: an
    # inode and a write per page on every batch.  Its size is bounded by one
    # batch's pages, so memory it is.
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


_ROWS_PER_STATEMENT = 200  # multi-row statements: 2 parameters a row, well under 32,766


def _read_values(conn: sqlite3.Connection, keys: list[bytes]) -> dict[bytes, bytes]:
    """The stored values of ``keys`` (absent ones left out), a few statements in all.

    Each chunk comes back as one row (the pairs in hex): every row a statement
    steps through hands the interpreter lock to whichever thread waits for it, and
    under load the event loop does, so a row per key cost a wait per key."""
    out: dict[bytes, bytes] = {}
    for i in range(0, len(keys), 2 * _ROWS_PER_STATEMENT):
        chunk = keys[i:i + 2 * _ROWS_PER_STATEMENT]
        marks = ",".join("?" * len(chunk))
        found = conn.execute(
            "SELECT group_concat(hex(key) || ':' || hex(value), ',') FROM kv "
            f"WHERE key IN ({marks})", chunk).fetchone()[0]
        if found:
            for pair in found.split(","):
                key, _, value = pair.partition(":")
                out[bytes.fromhex(key)] = bytes.fromhex(value)
    return out


def _write_values(conn: sqlite3.Connection, values: dict[bytes, bytes | None]) -> None:
    """Store each value, deleting the keys whose value is None."""
    gone = [k for k, v in values.items() if v is None]
    rows = [x for k, v in values.items() if v is not None for x in (k, v)]
    for i in range(0, len(gone), 2 * _ROWS_PER_STATEMENT):
        chunk = gone[i:i + 2 * _ROWS_PER_STATEMENT]
        conn.execute(f"DELETE FROM kv WHERE key IN ({','.join('?' * len(chunk))})", chunk)
    for i in range(0, len(rows), 2 * _ROWS_PER_STATEMENT):
        chunk = rows[i:i + 2 * _ROWS_PER_STATEMENT]
        values_sql = ",".join(["(?,?)"] * (len(chunk) // 2))
        conn.execute(f"INSERT OR REPLACE INTO kv (key, value) VALUES {values_sql}", chunk)


class _Fold:
    """A batch's mutations, transaction after transaction, folded into each key's
    final value and written in a few statements for the whole batch.

    An atomic op on a key not written earlier in the batch reads its base; all such
    bases are read in one query.  Every statement hands the interpreter lock back
    and forth with the event loop, which holds it most of the time under load: a
    statement (or a row) per transaction or per key each waited for it, and a batch
    took milliseconds.  A range clear writes what came before it, then clears."""

    __slots__ = ("conn", "final", "chains")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.final: dict[bytes, bytes | None] = {}  # None: delete
        self.chains: dict[bytes, list[tuple[Op, bytes]]] = {}  # atomic ops on an unread base

    def add(self, mutations: list[Mutation], stamp: bytes) -> list[bytes]:
        """Fold one transaction's mutations in order; return the versionstamped keys.
        A malformed mutation raises before any of them is folded."""
        for m in mutations:
            if m.op is Op.VS_KEY:
                split_versionstamp(m.key)
            elif m.op is Op.VS_VALUE:
                split_versionstamp(m.param)
        final, chains = self.final, self.chains
        stamped: list[bytes] = []
        for m in mutations:
            op = m.op
            if op is Op.SET:
                chains.pop(m.key, None)
                final[m.key] = m.param
            elif op is Op.CLEAR:
                chains.pop(m.key, None)
                final[m.key] = None
            elif op in ATOMIC:
                if m.key in chains:
                    chains[m.key].append((op, m.param))
                elif m.key in final:
                    final[m.key] = apply_atomic(op, final[m.key], m.param)
                else:
                    chains[m.key] = [(op, m.param)]
            elif op is Op.VS_KEY:
                body, offset = split_versionstamp(m.key)
                key = fill_versionstamp(body, offset, stamp)
                chains.pop(key, None)
                final[key] = m.param
                stamped.append(key)
            elif op is Op.VS_VALUE:
                body, offset = split_versionstamp(m.param)
                chains.pop(m.key, None)
                final[m.key] = fill_versionstamp(body, offset, stamp)
            elif op is Op.CLEAR_RANGE:
                self.flush()
                self.conn.execute("DELETE FROM kv WHERE key>=? AND key<?", (m.key, m.param))
        return stamped

    def flush(self) -> None:
        """Write everything folded so far."""
        final, chains = self.final, self.chains
        if chains:
            bases = _read_values(self.conn, list(chains))
            for key, ops in chains.items():
                value = bases.get(key)
                for op, param in ops:
                    value = apply_atomic(op, value, param)
                final[key] = value
            chains.clear()
        if final:
            _write_values(self.conn, final)
            final.clear()


class _CommitUncertain(Exception):
    """COMMIT itself failed: the batch may or may not be durable."""


class _Full:
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
class _Commit:
    read_version: int
    reads: ConflictSet
    writes: ConflictSet
    mutations: list[Mutation]
    future: asyncio.Future[tuple[int, bytes]]


@dataclass(slots=True)
class _HistoryEntry:
    version: int
    at: float
    writes: ConflictSet


@dataclass(slots=True)
class _WatchState:
    key: bytes
    value: bytes | None
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop = field(repr=False)


class SqliteWatch:
    def __init__(self, engine: SqliteEngine, state: _WatchState) -> None:
        self._engine = engine
        self._state = state

    async def wait(self) -> None:
        await asyncio.shield(self._state.future)

    def cancel(self) -> None:
        self._engine._drop_watch(self._state)
        if not self._state.future.done():
            self._state.future.cancel()


class SqliteEngine:
    """Open with ``await SqliteEngine.open(path)``; close with ``await engine.close()``."""

    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._readers: list[sqlite3.Connection] = []
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
        self._writer: sqlite3.Connection | None = None
        self._pending: list[_Commit] = []
        self._committing = False
        self._drain_task: asyncio.Task[None] | None = None
        self._history: collections.deque[_HistoryEntry] = collections.deque()
        self._history_versions: collections.deque[int] = collections.deque()
        # _history holds every commit after _floor (commits up to it were before this
        # engine opened, or pruned: an older reader is too old) except those of other
        # processes up to _foreign, which only the file's version tells of (an older
        # reader may have missed a write it read: it conflicts).
        self._floor = 0
        self._foreign = 0
        self._version = 0  # last version this process committed or observed
        self._watches: dict[bytes, list[_WatchState]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._closed = False
        self._batches = 0
        self._remote: CommitClient | None = None
        self._full = _Full()

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *,
                   commit_socket: str | None = None) -> SqliteEngine:
        """Open the store; with ``commit_socket``, commits go to the process that
        serves it (see :mod:`.sqlite_remote`) and this one only reads the file."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = cls(str(path))
        if commit_socket is not None:
            engine._remote = CommitClient(commit_socket)
            conn = engine._take_reader()
            try:
                row = conn.execute("SELECT value FROM meta WHERE name='version'").fetchone()
            except sqlite3.OperationalError as e:
                conn.close()
                raise StoreError(f"no store at {path}: {e}") from e
            engine._give_back_reader(conn)
            engine._version = engine._floor = row[0]
            return engine
        await asyncio.get_running_loop().run_in_executor(engine._writer_pool, engine._open_writer)
        return engine

    def _open_writer(self) -> None:
        conn = _connect(self.path)
        conn.executescript(_SCHEMA)
        self._writer = conn
        version = conn.execute("SELECT value FROM meta WHERE name='version'").fetchone()[0]
        self._version = version
        self._floor = version

    # -- transactions -------------------------------------------------------------

    def create_transaction(self) -> SqliteTransaction:
        if self._closed:
            raise InvalidOperation("the engine is closed")
        return SqliteTransaction(self)

    def _take_reader(self) -> sqlite3.Connection:
        if self._readers:
            return self._readers.pop()
        conn = _connect(self.path)
        return conn

    def _give_back_reader(self, conn: sqlite3.Connection) -> None:
        if self._closed or len(self._readers) >= 128:
            conn.close()
        else:
            self._readers.append(conn)

    async def _commit(self, c: _Commit) -> tuple[int, bytes]:
        if self._remote is not None:
            result = await self._remote.commit(c)
            self._version = max(self._version, result[0])
            if self._watches:
                for key in [k for k in self._watches if c.writes.contains(k)]:
                    self._fire_watches(key)
            return result
        return await self._submit(c)

    def _submit(self, c: _Commit) -> asyncio.Future[tuple[int, bytes]]:
        """Queue ``c`` for the writer; its future resolves once it is durable (or failed)."""
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
                        self._writer_pool, self._write_batch, batch)
                except BaseException as e:  # the batch did not commit (disk full, I/O error)
                    err: StoreError
                    if _is_full(e):
                        self._full.refuse(len(batch), e)
                        err = StoreFull(f"store disk full: {e}")
                    else:
                        log.error("store commit failed", exc_info=e)
                        err = (CommitUnknownResult(f"sqlite commit may have failed: {e}")
                               if isinstance(e, _CommitUncertain)
                               else StoreError(f"sqlite commit failed: {e}"))
                    for c in batch:
                        if not c.future.done():
                            c.future.set_exception(err)
                    continue
                if self._full.since is not None:
                    self._full.recovered()
                fired: set[bytes] = set()
                for c, result in zip(batch, results, strict=True):
                    if c.future.done():
                        continue
                    if isinstance(result, StoreError):
                        c.future.set_exception(result)
                    else:
                        c.future.set_result(result)
                        if self._watches:
                            fired.update(k for k in self._watches if c.writes.contains(k))
                for key in fired:
                    self._fire_watches(key)
        finally:
            self._committing = False

    def _write_batch(self, batch: list[_Commit]) -> list[tuple[int, bytes] | StoreError]:
        """Writer thread: check conflicts, apply, fsync, record history."""
        conn = self._writer
        assert conn is not None
        now = time.monotonic()
        self._prune_history(now)
        conn.execute("BEGIN IMMEDIATE")
        try:
            db_version = conn.execute("SELECT value FROM meta WHERE name='version'").fetchone()[0]
            if db_version != self._version:  # another process committed
                self._foreign = db_version
                self._version = db_version
            version = db_version
            results: list[tuple[int, bytes] | StoreError] = []
            added: list[_HistoryEntry] = []
            fold = _Fold(conn)
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
                added.append(_HistoryEntry(version, now, c.writes))
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
            # durable.  self._version stays behind, so the next batch sees the
            # file's version move (if it did) and fails every older reader.
            # A full disk (the WAL could not grow) did not commit it.
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if _is_full(e):
                raise
            raise _CommitUncertain(str(e)) from e
        self._version = version
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

    def _conflicts(self, c: _Commit, added: list[_HistoryEntry]) -> StoreError | None:
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
        if self._full.since is None or self._remote is not None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._writer_pool, self._probe)
        except BaseException as e:
            if not _is_full(e):
                raise
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._full.since))
            raise StoreFull(f"disk full since {since}: commits are refused") from None
        self._full.recovered()

    def _probe(self) -> None:
        """Writer thread: commit _PROBE_BYTES to a row of its own, then delete it:
        the WAL can grow by that much again (a change of a few bytes fits in
        the last free blocks of a disk that is still too full for real commits)."""
        conn = self._writer
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

    # -- watches ------------------------------------------------------------------

    async def watch(self, key: bytes) -> SqliteWatch:
        check_key(key)
        tr = self.create_transaction()
        try:
            value = await tr.get(key, snapshot=True)
        finally:
            tr.cancel()
        loop = asyncio.get_running_loop()
        state = _WatchState(key, value, loop.create_future(), loop)
        self._watches.setdefault(key, []).append(state)
        if self._poller is None or self._poller.done():
            self._poller = loop.create_task(self._poll_watches())
        return SqliteWatch(self, state)

    def _drop_watch(self, state: _WatchState) -> None:
        states = self._watches.get(state.key)
        if states and state in states:
            states.remove(state)
            if not states:
                del self._watches[state.key]

    def _fire_watches(self, key: bytes) -> None:
        for state in self._watches.pop(key, []):
            if not state.future.done():
                state.future.set_result(None)

    async def _poll_watches(self) -> None:
        """Catch commits made by other processes on the same file."""
        while self._watches and not self._closed:
            await asyncio.sleep(_POLL_SECONDS)
            keys = list(self._watches)
            tr = self.create_transaction()
            try:
                for key in keys:
                    value = await tr.get(key, snapshot=True)
                    for state in list(self._watches.get(key, [])):
                        if state.value != value:
                            self._drop_watch(state)
                            if not state.future.done():
                                state.future.set_result(None)
            finally:
                tr.cancel()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
        if self._drain_task is not None:
            await self._drain_task  # commits already handed in finish first
        for states in list(self._watches.values()):
            for state in states:
                if not state.future.done():
                    state.future.cancel()
        self._watches.clear()
        for conn in self._readers:
            conn.close()
        self._readers.clear()
        if self._remote is not None:
            await self._remote.close()
            self._writer_pool.shutdown(wait=True)
            return

        def _close_writer() -> None:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

        await asyncio.get_running_loop().run_in_executor(self._writer_pool, _close_writer)
        self._writer_pool.shutdown(wait=True)


class SqliteTransaction:
    """Buffered writes over a snapshot; see the module docstring."""

    def __init__(self, engine: SqliteEngine) -> None:
        self._engine = engine
        self._retries = 0
        self._init()

    def _init(self) -> None:
        self._conn: sqlite3.Connection | None = None
        self._read_version: int | None = None
        self._started = time.monotonic()
        # key -> (known, value, pending atomic ops when the base value is unknown)
        self._local: dict[bytes, tuple[bool, bytes | None, list[Mutation]]] = {}
        self._cleared = RangeSet()
        # keys whose value a versionstamp decides: reading them raises accessed_unreadable
        self._unreadable = RangeSet()
        self._mutations: list[Mutation] = []
        self._reads = ConflictSet()
        self._writes = ConflictSet()
        self._size = 0
        self._committed_stamp: asyncio.Future[bytes] | None = None
        self._committing = False
        # A write FoundationDB refuses (key or value too large, inverted range, a
        # system key, a bad versionstamp offset) does not raise at the call: the
        # transaction keeps the error and every later read and the commit raise it.
        self._deferred: StoreError | None = None

    def _refused(self, *checks: Callable[[], object]) -> bool:
        """Run ``checks``; a StoreError one raises becomes the deferred error."""
        try:
            for check in checks:
                check()
        except StoreError as e:
            if self._deferred is None:
                self._deferred = e
            return True
        return False

    def _raise_deferred(self) -> None:
        if self._deferred is not None:
            raise self._deferred

    # -- reads --------------------------------------------------------------------

    def _snapshot(self) -> sqlite3.Connection:
        self._check_age()
        if self._conn is None:
            conn = self._engine._take_reader()
            conn.execute("BEGIN")
            row = conn.execute("SELECT value FROM meta WHERE name='version'").fetchone()
            self._conn = conn
            self._read_version = row[0]
        return self._conn

    def _check_age(self) -> None:
        if self._committing:
            raise InvalidOperation("transaction used during commit")
        if time.monotonic() - self._started > MAX_TRANSACTION_SECONDS:
            raise TransactionTooOld("transaction is older than 5 seconds")

    async def get_read_version(self) -> int:
        self._snapshot()
        assert self._read_version is not None
        return self._read_version

    def _db_get(self, key: bytes) -> bytes | None:
        if self._cleared.contains(key):
            return None
        row = self._snapshot().execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    async def get(self, key: bytes, *, snapshot: bool = False) -> bytes | None:
        self._raise_deferred()
        if len(key) > MAX_KEY_SIZE and isinstance(key, bytes) and not key.startswith(b"\xff"):
            return None  # no such key can exist (FoundationDB answers so too)
        check_key(key)
        self._check_age()
        if self._unreadable and self._unreadable.contains(key):
            raise AccessedUnreadable("read of a key this transaction wrote with a versionstamp")
        local = self._local.get(key)
        if local is not None and local[0]:
            return local[1]  # written by this transaction: no read conflict (as on FoundationDB)
        if local is None and self._cleared.contains(key):
            return None  # cleared by this transaction: likewise
        value = self._db_get(key)
        if local is not None:
            for m in local[2]:
                value = apply_atomic(m.op, value, m.param)
        if not snapshot:
            self._reads.add_key(key)
        return value

    async def get_range(
        self,
        begin: bytes,
        end: bytes,
        *,
        limit: int = 0,
        reverse: bool = False,
        snapshot: bool = False,
    ) -> list[KeyValue]:
        self._raise_deferred()
        check_key(begin, allow_end=True)
        check_key(end, allow_end=True)
        self._check_age()
        if begin >= end:
            return []  # an empty or inverted range holds nothing (as on FoundationDB)
        if limit < 0:
            raise InvalidOperation("limit must not be negative")
        out: list[KeyValue] = []
        readable = (begin, end)
        if self._unreadable and self._unreadable.intersects(begin, end):
            # the read may return what lies before the unreadable part, in its
            # direction, and fails if it has to go on into it (as on FoundationDB)
            gaps = self._unreadable.gaps(begin, end)
            if reverse:
                readable = (gaps[-1][0] if gaps and gaps[-1][1] == end else end, end)
            else:
                readable = (begin, gaps[0][1] if gaps and gaps[0][0] == begin else begin)
        for key, value in self._merged(*readable, reverse):
            out.append(KeyValue(key, value))
            if limit and len(out) >= limit:
                break
        if readable != (begin, end) and not (limit and len(out) >= limit):
            raise AccessedUnreadable("range read reaches keys this transaction wrote "
                                     "with a versionstamp")
        if not snapshot:
            if limit and len(out) >= limit:
                last = out[-1].key
                if reverse:
                    begin = last
                else:
                    end = key_after(last)
            # what this transaction cleared itself is not read (FoundationDB adds no
            # read conflict there either)
            for b, e in self._cleared.gaps(begin, end) if self._cleared else [(begin, end)]:
                self._reads.add(b, e)
        return out

    def _merged(self, begin: bytes, end: bytes, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        """The database's rows (minus locally cleared ranges) merged with local writes."""
        if begin >= end:
            return
        order = "DESC" if reverse else "ASC"
        cursor = self._snapshot().execute(
            f"SELECT key, value FROM kv WHERE key>=? AND key<? ORDER BY key {order}", (begin, end)
        )
        local_keys = sorted((k for k in self._local if begin <= k < end), reverse=reverse)
        li = 0

        def before(a: bytes, b: bytes) -> bool:
            return a > b if reverse else a < b

        row = cursor.fetchone()
        while row is not None or li < len(local_keys):
            if row is not None and self._cleared.contains(row[0]) and row[0] not in self._local:
                row = cursor.fetchone()
                continue
            if li < len(local_keys) and (row is None or not before(row[0], local_keys[li])):
                key = local_keys[li]
                li += 1
                if row is not None and row[0] == key:
                    db_value: bytes | None = None if self._cleared.contains(key) else row[1]
                    row = cursor.fetchone()
                else:  # the snapshot has no row for this key (the cursor is past it)
                    db_value = None
                known, value, ops = self._local[key]
                if not known:
                    value = db_value
                    for m in ops:
                        value = apply_atomic(m.op, value, m.param)
                if value is not None:
                    yield key, value
            else:
                assert row is not None
                yield row[0], row[1]
                row = cursor.fetchone()

    # -- writes -------------------------------------------------------------------

    def _record(self, m: Mutation, size: int) -> None:
        if self._committing:  # writes never fail for age; the commit does (as on FoundationDB)
            raise InvalidOperation("transaction used during commit")
        self._size += size
        self._mutations.append(m)

    def set(self, key: bytes, value: bytes) -> None:
        if self._refused(lambda: check_key(key), lambda: check_value(value)):
            return
        self._record(Mutation(Op.SET, key, value), len(key) + len(value))
        self._local[key] = (True, value, [])
        self._writes.add_key(key)

    def clear(self, key: bytes) -> None:
        if len(key) > MAX_KEY_SIZE and isinstance(key, bytes) and not key.startswith(b"\xff"):
            return  # no such key can exist: nothing to clear (as on FoundationDB)
        if self._refused(lambda: check_key(key)):
            return
        self._record(Mutation(Op.CLEAR, key), len(key))
        self._local[key] = (True, None, [])
        self._writes.add_key(key)

    def clear_range(self, begin: bytes, end: bytes) -> None:
        long_end = isinstance(end, bytes) and len(end) > MAX_KEY_SIZE
        if long_end:  # FoundationDB accepts it: it clears what the end's prefix + 0 does
            end = end[:MAX_KEY_SIZE]
        if self._refused(lambda: check_range(begin, end)):
            return
        if long_end:
            end += b"\x00"
        if begin >= end:
            return
        self._record(Mutation(Op.CLEAR_RANGE, begin, end), len(begin) + len(end))
        for key in [k for k in self._local if begin <= k < end]:
            self._local[key] = (True, None, [])
        self._cleared.add(begin, end)
        self._writes.add(begin, end)
        # a later plain write does not make a versionstamped key readable again: on
        # FoundationDB 7.3 the read still raises 1036 (seen on the test cluster)

    def _atomic(self, op: Op, key: bytes, param: bytes) -> None:
        if self._refused(lambda: check_key(key), lambda: check_value(param)):
            return
        m = Mutation(op, key, param)
        self._record(m, len(key) + len(param))
        local = self._local.get(key)
        if local is None:
            if self._cleared.contains(key):
                self._local[key] = (True, apply_atomic(op, None, param), [])
            else:
                self._local[key] = (False, None, [m])
        elif local[0]:
            self._local[key] = (True, apply_atomic(op, local[1], param), [])
        else:
            local[2].append(m)
        self._writes.add_key(key)

    def add(self, key: bytes, delta: int) -> None:
        self._atomic(Op.ADD, key, encode_add(delta))

    def max(self, key: bytes, value: int) -> None:
        self._atomic(Op.MAX, key, encode_unsigned(value))

    def min(self, key: bytes, value: int) -> None:
        self._atomic(Op.MIN, key, encode_unsigned(value))

    def compare_and_clear(self, key: bytes, value: bytes) -> None:
        self._atomic(Op.COMPARE_AND_CLEAR, key, value)

    def set_versionstamped_key(self, key: bytes, value: bytes) -> None:
        if self._refused(lambda: check_key(split_versionstamp(key)[0]),
                        lambda: check_value(value)):
            return
        body, offset = split_versionstamp(key)
        self._record(Mutation(Op.VS_KEY, key, value), len(body) + len(value))
        # Every key the stamp could make is unreadable until the commit: from the
        # smallest stamp a commit after this read version can have to the largest
        # (FoundationDB's getVersionstampKeyRange).
        low = make_versionstamp(self._read_version + 1, 0) if self._read_version is not None \
            else bytes(VERSIONSTAMP_SIZE)
        self._unreadable.add(fill_versionstamp(body, offset, low),
                             min(key_after(fill_versionstamp(body, offset,
                                                             b"\xff" * VERSIONSTAMP_SIZE)),
                                 b"\xff"))

    def set_versionstamped_value(self, key: bytes, value: bytes) -> None:
        if self._refused(lambda: check_key(key),
                        lambda: check_value(split_versionstamp(value)[0])):
            return
        body, _ = split_versionstamp(value)
        self._record(Mutation(Op.VS_VALUE, key, value), len(key) + len(body))
        self._local.pop(key, None)
        self._unreadable.add_key(key)  # until committed, as on FoundationDB
        self._writes.add_key(key)

    def add_read_conflict_key(self, key: bytes) -> None:
        self._reads.add_key(key)

    def add_write_conflict_key(self, key: bytes) -> None:
        self._writes.add_key(key)

    # -- commit -------------------------------------------------------------------

    def get_versionstamp(self) -> asyncio.Future[bytes]:
        if self._committed_stamp is None:
            self._committed_stamp = asyncio.get_running_loop().create_future()
        return self._committed_stamp

    def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                conn.close()
                return
            self._engine._give_back_reader(conn)

    async def commit(self) -> None:
        self._raise_deferred()
        self._check_age()
        if self._size + self._reads.byte_size() + self._writes.byte_size() > MAX_TRANSACTION_SIZE:
            raise TransactionTooLarge(
                f"transaction of {self._size} bytes exceeds {MAX_TRANSACTION_SIZE}")
        if not self._mutations and not self._writes:
            self._release()
            if self._committed_stamp is not None and not self._committed_stamp.done():
                self._committed_stamp.set_exception(InvalidOperation("read-only transaction"))
            return
        if self._read_version is None:
            if self._reads:  # conflict keys but no read yet: check them from now on
                self._snapshot()
            else:  # blind writes: no conflict check, any version will do
                self._read_version = self._engine._version
        assert self._read_version is not None
        self._release()
        self._committing = True
        loop = asyncio.get_running_loop()
        c = _Commit(self._read_version, self._reads, self._writes, self._mutations,
                    loop.create_future())
        try:
            _, stamp = await self._engine._commit(c)
        finally:
            self._committing = False
        if self._committed_stamp is not None and not self._committed_stamp.done():
            self._committed_stamp.set_result(stamp)

    async def on_error(self, error: StoreError) -> None:
        if not error.retryable:
            raise error
        self._retries += 1
        delay = min(0.001 * (2 ** min(self._retries, 10)), 0.2) * (0.5 + random.random() / 2)
        self.reset()
        await asyncio.sleep(delay)

    def reset(self) -> None:
        self._release()
        if self._committed_stamp is not None and not self._committed_stamp.done():
            self._committed_stamp.cancel()
        self._init()

    def cancel(self) -> None:
        self._release()

    def __del__(self) -> None:
        try:
            self._release()
        except Exception:
            pass
