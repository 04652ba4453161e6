"""The embedded engine: FoundationDB's contract on one SQLite file.

How it keeps the contract (each part in its module):

* **Snapshot reads** and buffered writes: :mod:`.transaction`.
* **Serializable commits** (optimistic, like FoundationDB's resolvers) and a
  **durable group commit**: :mod:`.writer`.
* **Watches** fire on this process's commits at once; other processes' commits
  are pushed to a node's workers or found by polling: :mod:`.watches`.
* **Other processes' commits** (a node's workers): opened with
  ``commit_socket``, an engine reads the file itself and sends its commits to
  the process serving that socket (:mod:`.remote`), whose history then holds
  every commit: conflicts stay exact and all share its group commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Self

from ..base import InvalidOperation, StoreError
from .commit import Commit, CommitResult
from .conflicts import ConflictSet
from .mutations import check_key
from .remote import CommitClient
from .storage import connect, read_version
from .transaction import SqliteTransaction
from .watches import SqliteWatch, Watches
from .writer import Writer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how often watched keys are read for writers we hear nothing from
_MAX_IDLE_READERS = 128

CommitListener = Callable[[list[ConflictSet]], None]
"""Told the write conflict sets of each batch of durable commits."""


class SqliteEngine:
    """Open with ``await SqliteEngine.open(path)``; close with ``await engine.close()``."""

    name = "sqlite"

    def __init__(self, path: str, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.path = path
        self.poll_seconds = poll_seconds
        self._readers: list[sqlite3.Connection] = []
        self._writer: Writer | None = None  # this process writes the file
        self._remote: CommitClient | None = None  # or another one does
        self._remote_version = 0  # the last version a remote commit told of
        self._watches = Watches()
        self._poller: asyncio.Task[None] | None = None
        self._listeners: list[CommitListener] = []
        self._closed = False

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, commit_socket: str | None = None,
                   poll_seconds: float = POLL_SECONDS) -> Self:
        """Open the store; with ``commit_socket``, commits go to the process that
        serves it (see :mod:`.remote`) and this one only reads the file.
        ``poll_seconds``: how often watched keys are polled (see :mod:`.watches`)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = cls(str(path), poll_seconds=poll_seconds)
        if commit_socket is not None:
            remote = CommitClient(commit_socket, on_written=engine._watches.fire,
                                  watched=engine._watches.keys)
            engine._remote = remote
            engine._watches.on_unwatched = lambda key: remote.unwatch([key])
            conn = engine.take_reader()
            try:
                version = read_version(conn)
            except sqlite3.OperationalError as e:
                conn.close()
                raise StoreError(f"no store at {path}: {e}") from e
            engine.give_back_reader(conn)
            engine._remote_version = version
            return engine
        engine._writer = Writer(engine.path, engine._committed)
        await engine._writer.open()
        return engine

    @property
    def version(self) -> int:
        """The last commit version this process made or observed."""
        return self._writer.version if self._writer is not None else self._remote_version

    # -- transactions -------------------------------------------------------------

    def create_transaction(self) -> SqliteTransaction:
        if self._closed:
            raise InvalidOperation("the engine is closed")
        return SqliteTransaction(self)

    def take_reader(self) -> sqlite3.Connection:
        if self._readers:
            return self._readers.pop()
        return connect(self.path)

    def give_back_reader(self, conn: sqlite3.Connection) -> None:
        if self._closed or len(self._readers) >= _MAX_IDLE_READERS:
            conn.close()
        else:
            self._readers.append(conn)

    async def send_commit(self, c: Commit) -> CommitResult:
        """Commit ``c`` through this process's writer or the commit server."""
        if self._remote is not None:
            result = await self._remote.commit(c)
            self._remote_version = max(self._remote_version, result[0])
            # the server pushes it to the other processes; this one's own watches fire here
            self._watches.fire_written([c.writes])
            return result
        return await self.submit(c)

    def submit(self, c: Commit) -> asyncio.Future[CommitResult]:
        """Queue ``c`` for this process's writer (the commit server's way in)."""
        if self._writer is None:
            raise InvalidOperation("this engine sends its commits to another process")
        return self._writer.submit(c)

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Tell ``listener`` the write sets of every batch of commits once durable
        (the commit server forwards them to its clients' watches)."""
        self._listeners.append(listener)

    def remove_commit_listener(self, listener: CommitListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _committed(self, written: list[ConflictSet]) -> None:
        self._watches.fire_written(written)
        for listener in self._listeners:
            try:
                listener(written)
            except Exception:
                log.exception("a commit listener failed")

    # -- health -------------------------------------------------------------------

    async def check_writable(self) -> None:
        """Raise StoreFull while commits fail for a full disk (see :mod:`.writer`)."""
        if self._writer is not None:
            await self._writer.check_writable()

    # -- watches ------------------------------------------------------------------

    async def watch(self, key: bytes) -> SqliteWatch:
        check_key(key)
        if self._remote is None:
            watch = self._watches.add(key, await self._read_snapshot(key))
        else:
            # Registered with the commit server before the value is read: a commit
            # after the registration is pushed, one before it is in what is read.
            watch = self._watches.add(key, None)
            try:
                await self._remote.watch(key)
            except (OSError, StoreError) as e:
                log.debug("watch not registered with the commit server (polled): %s", e)
            watch.set_value(await self._read_snapshot(key))
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll_watches())
        return watch

    async def _read_snapshot(self, key: bytes) -> bytes | None:
        tr = self.create_transaction()
        try:
            return await tr.get(key, snapshot=True)
        finally:
            tr.cancel()

    async def _poll_watches(self) -> None:
        """Catch commits made by processes this one hears nothing from."""
        while self._watches and not self._closed:
            await asyncio.sleep(self.poll_seconds)
            keys = self._watches.keys()
            tr = self.create_transaction()
            try:
                values = {key: await tr.get(key, snapshot=True) for key in keys}
            finally:
                tr.cancel()
            self._watches.fire_changed(values)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
        if self._writer is not None:
            await self._writer.close()  # commits already handed in finish first
        self._watches.cancel_all()
        for conn in self._readers:
            conn.close()
        self._readers.clear()
        if self._remote is not None:
            await self._remote.close()
