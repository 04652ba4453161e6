"""Small blobs packed in one SQLite file, for the ``fs`` blob store.

One file per blob costs the filesystem an inode, a folder entry and a journal
commit for each; with a small message that is most of the work of a delivery
(on ext4, creating files right after many were deleted costs several times
more again).  Blobs up to ``[blobs] fs_pack_max_bytes`` therefore go into
``<root>/packed.sqlite3`` instead: a batch of puts is one multi-row INSERT and
one COMMIT, made durable by one fsync of SQLite's write-ahead log
(``synchronous=FULL``) before any of its puts returns.  SQLite gives what a
pack format would otherwise have to build: an index by blob id, crash
recovery (a torn last write is rolled back on open), several processes on one
folder, and free space reused after deletes.

This is the blob store's own file, not the metadata store (``fdb_layers``):
the store never holds bodies (DESIGN.md), and the two are made durable
separately, the blob first.

Every method blocks: the ``fs`` store calls them in worker threads.  Writes go
through one connection used by one thread at a time (the store's pack
writer); reads take a connection from a small pool.  Blob ids are stored as
their 32 raw bytes; ``mtime`` is the unix time of the last put (the garbage
collector's age).  A delete only frees pages inside the file, which later puts
reuse; :meth:`BlobPack.release_space` gives free pages back to the filesystem.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FILE_NAME = "packed.sqlite3"
_ROWS_PER_INSERT = 200  # 4 parameters a row, well under SQLite's 32,766
_WAL_CHECKPOINT_PAGES = 4096  # 16 MiB of 4 KiB pages between checkpoints
_MAX_IDLE_READERS = 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    id BLOB PRIMARY KEY,       -- SHA-256 of data, 32 bytes
    mtime REAL NOT NULL,       -- unix time of the last put
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""


class BlobPack:
    """Open with ``BlobPack(path, durable=...)``; see the module docstring."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        # auto_vacuum must be chosen before anything is written, WAL mode included.
        self._writer = self._connect(before="PRAGMA auto_vacuum=INCREMENTAL")
        self._writer.executescript(_SCHEMA)
        self._writer.execute(f"PRAGMA wal_autocheckpoint={_WAL_CHECKPOINT_PAGES}")

    def _connect(self, before: str = "") -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=30.0)
        if before:
            conn.execute(before)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'OFF'}")
        conn.execute("PRAGMA temp_store=MEMORY")  # statement journals: no temporary files
        return conn

    # -- writes (the pack writer thread) --------------------------------------

    def put_many(self, rows: Sequence[tuple[bytes, bytes]], now: float) -> None:
        """Store ``(sha256 digest, data)`` rows in one transaction, durable when
        this returns (with ``durable``); a row whose id is there already only
        gets ``now`` as its new mtime.  Raises if nothing was stored."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            for i in range(0, len(rows), _ROWS_PER_INSERT):
                chunk = rows[i:i + _ROWS_PER_INSERT]
                params = [x for digest, data in chunk for x in (digest, now, len(data), data)]
                conn.execute(
                    "INSERT INTO blobs (id, mtime, size, data) VALUES "
                    + ",".join(["(?,?,?,?)"] * len(chunk))
                    + " ON CONFLICT(id) DO UPDATE SET mtime=excluded.mtime", params)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def delete(self, digest: bytes) -> None:
        self._writer.execute("DELETE FROM blobs WHERE id=?", (digest,))

    def delete_if_older(self, digest: bytes, cutoff: float) -> bool:
        """Remove the blob if its last put was before ``cutoff``; one statement,
        so atomic with respect to puts (those of other processes too)."""
        cur = self._writer.execute("DELETE FROM blobs WHERE id=? AND mtime<?", (digest, cutoff))
        return cur.rowcount > 0

    def release_space(self, pages: int) -> int:
        """Give up to ``pages`` free pages back to the filesystem; how many stay free."""
        # executescript steps the pragma to the end (execute would free one page)
        self._writer.executescript(f"PRAGMA incremental_vacuum({max(1, int(pages))});")
        return int(self._writer.execute("PRAGMA freelist_count").fetchone()[0])

    # -- reads (any worker thread) --------------------------------------------

    def read(self, digest: bytes, start: int = 0, end: int | None = None) -> bytes | None:
        """``data[start:end]``, or None if the blob is not here."""
        args: tuple[object, ...]
        if end is None:
            sql, args = "SELECT substr(data, ?) FROM blobs WHERE id=?", (start + 1, digest)
        else:
            sql = "SELECT substr(data, ?, ?) FROM blobs WHERE id=?"
            args = (start + 1, max(0, end - start), digest)
        row = self._query_one(sql, args)
        if row is None:
            return None
        return b"" if row[0] is None else bytes(row[0])  # substr of an empty blob: NULL

    def stat(self, digest: bytes) -> tuple[int, float] | None:
        """``(size, mtime)``, or None if the blob is not here."""
        row = self._query_one("SELECT size, mtime FROM blobs WHERE id=?", (digest,))
        return None if row is None else (int(row[0]), float(row[1]))

    def present(self, digests: Iterable[bytes]) -> set[bytes]:
        """Which of ``digests`` are here."""
        wanted = list(digests)
        found: set[bytes] = set()
        conn = self._take_reader()
        try:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                found.update(row[0] for row in conn.execute(
                    f"SELECT id FROM blobs WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        finally:
            self._give_back(conn)
        return found

    def scan(self, after: bytes, limit: int) -> list[tuple[bytes, float]]:
        """Up to ``limit`` ``(digest, mtime)`` in id order, ids after ``after``."""
        conn = self._take_reader()
        try:
            return [(bytes(r[0]), float(r[1])) for r in conn.execute(
                "SELECT id, mtime FROM blobs WHERE id>? ORDER BY id LIMIT ?", (after, limit))]
        finally:
            self._give_back(conn)

    def _query_one(self, sql: str, args: tuple[object, ...]) -> tuple[Any, ...] | None:
        conn = self._take_reader()
        try:
            row: tuple[Any, ...] | None = conn.execute(sql, args).fetchone()
            return row
        finally:
            self._give_back(conn)

    def _take_reader(self) -> sqlite3.Connection:
        with self._lock:
            if self._readers:
                return self._readers.pop()
        return self._connect()

    def _give_back(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if not self._closed and len(self._readers) < _MAX_IDLE_READERS:
                self._readers.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._writer.close()
