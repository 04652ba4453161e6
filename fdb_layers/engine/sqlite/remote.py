"""Commits to the embedded engine from other processes on the same machine.

FoundationDB's split, on one machine: every process reads the SQLite file
itself (WAL snapshots, as :mod:`.transaction` does), but one process, the one
that opened the store with a :class:`CommitServer`, resolves conflicts and
writes.  The others open the store with ``SqliteEngine.open(path,
commit_socket=...)`` and send it their commits: read version, read and write
conflict sets, mutations.  The server holds the history of every commit, so
conflicts are exact (as with FoundationDB's resolvers) and several processes'
commits share one group commit and one fsync.

Watches across processes: a client registers the keys its process watches;
once any commit (of the serving process or of any client) that writes one is
durable, the server pushes that key to the client at once, so a commit made in
any process wakes the watches of every process without waiting for a poll.
FoundationDB needs none of this: its watches are cluster-wide.

The wire is :mod:`.wire`.  The socket is created 0600 in the data folder: only
the user the node runs as (who can write the SQLite file anyway) can connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
from collections.abc import Callable, Iterable
from typing import Protocol

from ..base import CommitUnknownResult, ErrorCode, NotCommitted, StoreError
from .commit import Commit, CommitResult
from .conflicts import ConflictSet
from .wire import (
    OK,
    PUSH_ID,
    WatchRequest,
    check_commit,
    decode_push,
    decode_request,
    dumps,
    encode_commit,
    encode_push,
    encode_watch,
    error_for,
    frame,
    loads,
    read_frame,
)

log = logging.getLogger(__name__)


class CommitSink(Protocol):
    """What the server needs of the engine that writes the file."""

    @property
    def version(self) -> int: ...

    def submit(self, c: Commit) -> asyncio.Future[CommitResult]: ...

    def add_commit_listener(self, listener: Callable[[list[ConflictSet]], None]) -> None: ...

    def remove_commit_listener(
        self, listener: Callable[[list[ConflictSet]], None]) -> None: ...


class CommitServer:
    """Serves ``engine``'s commits to other processes on a Unix socket, and pushes
    to each the watched keys that any process's commits write."""

    def __init__(self, engine: CommitSink, path: str) -> None:
        self.engine = engine
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        # each client's watched keys (pushed once, then forgotten until watched again)
        self._clients: dict[asyncio.StreamWriter, set[bytes]] = {}

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.engine.add_commit_listener(self._committed)

    def _committed(self, written: list[ConflictSet]) -> None:
        """A batch of commits is durable: push each client the keys it watches."""
        for writer, watched in self._clients.items():
            if not watched:
                continue
            hits = [k for k in watched if any(w.contains(k) for w in written)]
            if hits:
                watched.difference_update(hits)
                self._send(writer, PUSH_ID, encode_push(hits))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        watched: set[bytes] = set()
        self._clients[writer] = watched
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    request_id, body = await read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                future: asyncio.Future[CommitResult] = loop.create_future()
                try:
                    request = decode_request(body, future)
                    if isinstance(request, WatchRequest):
                        if request.watch:
                            watched.update(request.keys)
                        else:
                            watched.difference_update(request.keys)
                        self._reply(writer, request_id, (OK, self.engine.version))
                        continue
                    check_commit(request)
                except ValueError as e:
                    log.warning("refused a commit request: %s", e)
                    self._reply(writer, request_id, (int(ErrorCode.INTERNAL_ERROR), str(e)))
                    continue
                except StoreError as e:  # over a limit, or malformed: this transaction only
                    self._reply(writer, request_id, (int(e.code), str(e)))
                    continue
                future.add_done_callback(
                    lambda f, rid=request_id: self._answer(writer, rid, f))  # type: ignore[misc]
                self.engine.submit(request)
        except ValueError as e:  # an oversized frame: the stream is out of step, drop it
            log.warning("dropped a commit client: %s", e)
        finally:
            self._clients.pop(writer, None)
            writer.close()

    def _answer(self, writer: asyncio.StreamWriter, request_id: int,
                future: asyncio.Future[CommitResult]) -> None:
        if future.cancelled():
            reply: tuple[object, ...] = (int(ErrorCode.COMMIT_UNKNOWN_RESULT), "cancelled")
        elif (e := future.exception()) is not None:
            code = e.code if isinstance(e, StoreError) else ErrorCode.INTERNAL_ERROR
            reply = (int(code), str(e))
        else:
            version, stamp = future.result()
            reply = (OK, version, stamp)
        self._reply(writer, request_id, reply)

    @classmethod
    def _reply(cls, writer: asyncio.StreamWriter, request_id: int,
               reply: tuple[object, ...]) -> None:
        if request_id != PUSH_ID:  # a request that wants no answer gets none, not even an error
            cls._send(writer, request_id, dumps(reply))

    @staticmethod
    def _send(writer: asyncio.StreamWriter, request_id: int, body: bytes) -> None:
        if not writer.is_closing():
            writer.write(frame(request_id, body))

    async def close(self) -> None:
        self.engine.remove_commit_listener(self._committed)
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class CommitClient:
    """One connection to a :class:`CommitServer`, shared by a process's commits
    and watches; replies are matched to requests by id, so requests overlap.

    ``on_written`` is given the watched keys the server pushes; ``watched`` tells
    which keys to register again on a new connection (a lost one forgot them)."""

    def __init__(self, path: str, *, on_written: Callable[[list[bytes]], object] | None = None,
                 watched: Callable[[], Iterable[bytes]] | None = None) -> None:
        self.path = path
        self._on_written = on_written
        self._watched = watched
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[tuple[object, ...]]] = {}
        self._next_id = 0
        self._connecting: asyncio.Lock | None = None

    async def _connection(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is None or self._writer.is_closing():
                reader, writer = await asyncio.open_unix_connection(self.path)
                self._writer = writer
                self._reader_task = asyncio.get_running_loop().create_task(
                    self._read_replies(reader, writer))
                keys = list(self._watched()) if self._watched is not None else []
                if keys:  # not answered: a push on them may come before any reply
                    writer.write(frame(PUSH_ID, encode_watch(keys)))
            return self._writer

    async def _request(self, body: bytes) -> tuple[object, ...]:
        """Send a request and await its reply (an ``OK`` tuple; errors raise)."""
        writer = await self._connection()
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1  # 0 is PUSH_ID
        request_id = self._next_id
        future: asyncio.Future[tuple[object, ...]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        writer.write(frame(request_id, body))
        try:
            return await future
        finally:
            self._waiting.pop(request_id, None)

    async def commit(self, c: Commit) -> CommitResult:
        try:
            await self._connection()
        except OSError as e:  # nothing was sent: the commit did not happen
            raise NotCommitted(f"store commit server unreachable: {e}") from e
        reply = await self._request(encode_commit(c))
        version, stamp = reply[1], reply[2]
        if not isinstance(version, int) or not isinstance(stamp, bytes):
            raise CommitUnknownResult("malformed reply from the store commit server")
        return version, stamp

    async def watch(self, key: bytes) -> None:
        """Have the server push ``key`` when a commit writes it; returns once it will."""
        await self._request(encode_watch([key]))

    def unwatch(self, keys: list[bytes]) -> None:
        """No more pushes of ``keys`` (no answer awaited; a push already on its way
        may still come)."""
        if keys and self._writer is not None and not self._writer.is_closing():
            self._writer.write(frame(PUSH_ID, encode_watch(keys, watch=False)))

    async def _read_replies(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        why = "connection to the store commit server lost"
        try:
            while True:
                request_id, body = await read_frame(reader)
                if request_id == PUSH_ID:
                    keys = decode_push(body)
                    if self._on_written is not None:
                        self._on_written(keys)
                    continue
                future = self._waiting.get(request_id)
                if future is None or future.done():
                    continue
                reply = loads(body)
                if not isinstance(reply, tuple) or not reply or not isinstance(reply[0], int):
                    raise ValueError("malformed reply")
                if reply[0] == OK:
                    future.set_result(reply)
                else:
                    future.set_exception(error_for(reply[0], str(reply[1])))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError,
                pickle.UnpicklingError) as e:
            why = f"{why}: {e or type(e).__name__}"
        finally:
            writer.close()
            if self._writer is writer:
                self._writer = None
            # sent, not answered: it may or may not have committed
            for future in list(self._waiting.values()):
                if not future.done():
                    future.set_exception(CommitUnknownResult(why))
            self._waiting.clear()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
