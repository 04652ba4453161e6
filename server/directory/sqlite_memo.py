"""Password versions of an SQLite directory, reused while nothing was committed to its file.

Each Basic request (JMAP sends the password with every request) asks the directory for
the login's password version, so that a password change shows at once
(:class:`~server.directory.base.PasswordVersions`).  For an SQLite file, ``PRAGMA
data_version`` says the same more cheaply: its value, on one connection, changes whenever
any other connection -- the CLI, another node process, this directory's own worker
threads -- has committed to the file since it was last asked (https://sqlite.org/pragma.html
#pragma_data_version).  It reads the file's header (a few microseconds, no thread hop): the
versions looked up since it last changed are still the database's.  The connection asked
is this object's own, read-only, opened on first use, and never waits for a lock (busy
timeout 0): when it cannot tell (a writer is committing, the file is missing or damaged),
the caller asks the database as before.  A value is comparable only with others of the
same connection, so a reopened connection starts with nothing remembered."""

from __future__ import annotations

import sqlite3
from pathlib import Path

ENTRIES = 10_000
"""Logins remembered at one data version (a login's entry is a short string)."""


class PasswordVersionMemo:
    """Login -> password version, as looked up since the file's data version last changed."""

    def __init__(self, path: Path, entries: int = ENTRIES) -> None:
        self.path, self.entries = path, entries
        self._conn: sqlite3.Connection | None = None
        self._stamp: int | None = None
        self._versions: dict[str, str | None] = {}

    def look(self) -> int | None:
        """The file's data version now, to pass to :meth:`get` and :meth:`put`; None when
        it cannot be told (then the database must be asked)."""
        try:
            if self._conn is None:
                if not self.path.exists():
                    return None
                self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro",
                                             uri=True, timeout=0, check_same_thread=False,
                                             isolation_level=None)
                self._stamp, self._versions = None, {}
            row = self._conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e):  # a writer committing: ask again next time
                self.close()
            return None
        except sqlite3.Error:
            self.close()
            return None
        stamp = int(row[0])
        if stamp != self._stamp:
            self._stamp, self._versions = stamp, {}
        return stamp

    def get(self, login: str, stamp: int) -> tuple[bool, str | None]:
        """(True, the version) if ``login``'s was looked up at data version ``stamp``
        (read by :meth:`look` just now)."""
        if stamp != self._stamp or login not in self._versions:
            return False, None
        return True, self._versions[login]

    def put(self, login: str, stamp: int, version: str | None) -> None:
        """``login``'s version, looked up after :meth:`look` gave ``stamp``: kept unless the
        data version moved meanwhile."""
        if stamp != self._stamp:
            return
        if len(self._versions) >= self.entries:
            self._versions.clear()
        self._versions[login] = version

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._stamp, self._versions = None, {}
        if conn is not None:
            conn.close()
