"""A transaction of the embedded engine: buffered writes over a snapshot.

Each transaction reads through its own SQLite reader connection inside one read
transaction (WAL mode), so every read sees the snapshot of its first read, and
readers never wait for the writer; the snapshot's commit version is the read
version.  Writes are buffered here, with the read and write conflict sets, and
sent to the writer at commit (:class:`TransactionHost.send_commit`).
FoundationDB's limits (key/value/transaction size, 5 s) raise the same errors.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from ..base import (
    MAX_KEY_SIZE,
    MAX_TRANSACTION_SECONDS,
    MAX_TRANSACTION_SIZE,
    VERSIONSTAMP_SIZE,
    AccessedUnreadable,
    InvalidOperation,
    KeyValue,
    StoreError,
    TransactionTooLarge,
    TransactionTooOld,
)
from .commit import Commit, CommitResult
from .conflicts import ConflictSet, RangeSet
from .mutations import (
    Mutation,
    Op,
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
from .storage import read_version


_KEYS_PER_QUERY = 500  # get_many's keys per SQL query (SQLite allows 32,766 parameters)


class TransactionHost(Protocol):
    """What a transaction needs of its engine."""

    @property
    def version(self) -> int:
        """The last commit version the engine knows of (a blind write's read version)."""

    def take_reader(self) -> sqlite3.Connection: ...

    def give_back_reader(self, conn: sqlite3.Connection) -> None: ...

    async def send_commit(self, c: Commit) -> CommitResult: ...


class SqliteTransaction:
    """Buffered writes over a snapshot; see the module docstring."""

    def __init__(self, engine: TransactionHost) -> None:
        self._engine = engine
        self._retries = 0
        self._init()

    def _init(self) -> None:
        self._conn: sqlite3.Connection | None = None
        self._read_version: int | None = None
        self._started = time.monotonic()
        # key -> (known, value, pending atomic ops when the base value is unknown)
        self._local: dict[bytes, tuple[bool, bytes | None, list[Mutation]]] = {}
        # the keys of _local, sorted: range reads and clears find theirs by bisection
        # instead of scanning every write of a large transaction
        self._local_keys: list[bytes] = []
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
            conn = self._engine.take_reader()
            conn.execute("BEGIN")
            self._conn = conn
            self._read_version = read_version(conn)
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

    async def get_many(self, keys: Sequence[bytes], *, snapshot: bool = False
                       ) -> list[bytes | None]:
        if self._local or self._cleared or self._unreadable or any(
                len(k) > MAX_KEY_SIZE for k in keys):
            return [await self.get(k, snapshot=snapshot) for k in keys]  # the general path
        self._raise_deferred()
        for key in keys:
            check_key(key)
        self._check_age()
        found: dict[bytes, bytes] = {}
        conn = self._snapshot()
        distinct = list(dict.fromkeys(keys))
        for at in range(0, len(distinct), _KEYS_PER_QUERY):
            chunk = distinct[at:at + _KEYS_PER_QUERY]
            found.update(conn.execute(
                f"SELECT key, value FROM kv WHERE key IN ({','.join('?' * len(chunk))})",
                chunk).fetchall())
        if not snapshot:
            for key in distinct:
                self._reads.add_key(key)
        return [found.get(k) for k in keys]

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
        if not self._cleared and not self._local_between(*readable):
            # nothing of this transaction's own in the range (most reads): the snapshot's
            # rows, the limit applied by SQLite, without merging row by row
            out = [KeyValue(k, v) for k, v in self._db_range(*readable, reverse, limit)]
        else:
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

    def _db_range(self, begin: bytes, end: bytes, reverse: bool, limit: int
                  ) -> list[tuple[bytes, bytes]]:
        """The snapshot's rows in [begin, end), at most ``limit`` (0: all)."""
        if begin >= end:
            return []
        order = "DESC" if reverse else "ASC"
        if limit:
            return self._snapshot().execute(
                f"SELECT key, value FROM kv WHERE key>=? AND key<? ORDER BY key {order} "
                "LIMIT ?", (begin, end, limit)).fetchall()
        return self._snapshot().execute(
            f"SELECT key, value FROM kv WHERE key>=? AND key<? ORDER BY key {order}",
            (begin, end)).fetchall()

    def _merged(self, begin: bytes, end: bytes, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        """The database's rows (minus locally cleared ranges) merged with local writes."""
        if begin >= end:
            return
        order = "DESC" if reverse else "ASC"
        cursor = self._snapshot().execute(
            f"SELECT key, value FROM kv WHERE key>=? AND key<? ORDER BY key {order}", (begin, end)
        )
        local_keys = self._local_between(begin, end)
        if reverse:
            local_keys.reverse()
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

    def _local_between(self, begin: bytes, end: bytes) -> list[bytes]:
        """The keys this transaction wrote in [begin, end), ascending."""
        keys = self._local_keys
        return keys[bisect.bisect_left(keys, begin):bisect.bisect_left(keys, end)]

    def _put_local(self, key: bytes, entry: tuple[bool, bytes | None, list[Mutation]]) -> None:
        if key not in self._local:
            bisect.insort(self._local_keys, key)
        self._local[key] = entry

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
        self._put_local(key, (True, value, []))
        self._writes.add_key(key)

    def clear(self, key: bytes) -> None:
        if len(key) > MAX_KEY_SIZE and isinstance(key, bytes) and not key.startswith(b"\xff"):
            return  # no such key can exist: nothing to clear (as on FoundationDB)
        if self._refused(lambda: check_key(key)):
            return
        self._record(Mutation(Op.CLEAR, key), len(key))
        self._put_local(key, (True, None, []))
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
        for key in self._local_between(begin, end):
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
                self._put_local(key, (True, apply_atomic(op, None, param), []))
            else:
                self._put_local(key, (False, None, [m]))
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
        if self._local.pop(key, None) is not None:
            self._local_keys.pop(bisect.bisect_left(self._local_keys, key))
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
            self._engine.give_back_reader(conn)

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
                self._read_version = self._engine.version
        assert self._read_version is not None
        self._release()
        self._committing = True
        loop = asyncio.get_running_loop()
        c = Commit(self._read_version, self._reads, self._writes, self._mutations,
                    loop.create_future())
        try:
            _, stamp = await self._engine.send_commit(c)
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
