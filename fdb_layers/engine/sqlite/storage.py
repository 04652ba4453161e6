"""The SQLite file: its schema, connections, and how a batch's mutations are
written (folded into each key's final value, a few statements a batch)."""

from __future__ import annotations

import sqlite3

from .mutations import ATOMIC, Mutation, Op, apply_atomic, fill_versionstamp, split_versionstamp

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('version', 0);
"""

_SQLITE_FULL = 13


def is_full(e: BaseException) -> bool:
    """SQLITE_FULL: the disk (or the database's size limit) is full."""
    if not isinstance(e, sqlite3.Error):
        return False
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF == _SQLITE_FULL
    return "database or disk is full" in str(e)


def connect(path: str) -> sqlite3.Connection:
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


def read_values(conn: sqlite3.Connection, keys: list[bytes]) -> dict[bytes, bytes]:
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


def write_values(conn: sqlite3.Connection, values: dict[bytes, bytes | None]) -> None:
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


class Fold:
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
            bases = read_values(self.conn, list(chains))
            for key, ops in chains.items():
                value = bases.get(key)
                for op, param in ops:
                    value = apply_atomic(op, value, param)
                final[key] = value
            chains.clear()
        if final:
            write_values(self.conn, final)
            final.clear()



def read_version(conn: sqlite3.Connection) -> int:
    """The version of the last commit the connection's snapshot holds."""
    return int(conn.execute("SELECT value FROM meta WHERE name='version'").fetchone()[0])
