"""Commits to the embedded engine from other processes on the same machine.

FoundationDB's split, on one machine: every process reads the SQLite file
itself (WAL snapshots, as :mod:`.sqlite` does), but one process, the one that
opened the store with a :class:`CommitServer`, resolves conflicts and writes.
The others open the store with ``SqliteEngine.open(path, commit_socket=...)``
and send it their commits: read version, read and write conflict sets,
mutations.  The server holds the history of every commit, so conflicts are
exact (as with FoundationDB's resolvers) and several processes' commits share
one group commit and one fsync.

The wire: a frame is ``<request id: u32><length: u32><body>``; a body is a
pickle of builtins only (lists, tuples, sets, bytes, str, int, None), loaded by
an unpickler that refuses every global, so a frame can describe data and
nothing else.  The socket is created 0600 in the data folder: only the user the
node runs as (who can write the SQLite file anyway) can connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import pickle
import struct
from typing import TYPE_CHECKING

from ._mutations import (
    ATOMIC,
    ConflictSet,
    Mutation,
    Op,
    check_key,
    check_range,
    check_value,
    split_versionstamp,
)
from .base import (
    MAX_KEY_SIZE,
    MAX_TRANSACTION_SIZE,
    CommitUnknownResult,
    ErrorCode,
    NotCommitted,
    StoreError,
    TransactionTooLarge,
)

if TYPE_CHECKING:
    from .sqlite import SqliteEngine, _Commit

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
MAX_FRAME = 64 * 1024 * 1024  # a transaction is at most 10 MB of mutations plus conflict keys
_OK = 0
_OPS = {op.value: op for op in Op}


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"refused: {module}.{name}")


def _loads(body: bytes) -> object:
    return _DataOnly(io.BytesIO(body)).load()


def _dumps(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=5)


def _error(code: int, message: str) -> StoreError:
    """The contract's exception for ``code`` (NotCommitted for not_committed, ...)."""
    error_code = ErrorCode(code)
    todo = [StoreError]
    while todo:
        cls = todo.pop()
        if cls.code is error_code and cls is not StoreError:
            return cls(message)
        todo.extend(cls.__subclasses__())
    return StoreError(message, code=error_code)


def _frame(request_id: int, body: bytes) -> bytes:
    return _HEADER.pack(request_id, len(body)) + body


def encode_commit(c: _Commit) -> bytes:
    return _dumps((c.read_version, c.reads.points, c.reads.ranges, c.writes.points,
                   c.writes.ranges, [(m.op.value, m.key, m.param) for m in c.mutations]))


def _conflict_set(points: object, ranges: object) -> ConflictSet:
    out = ConflictSet()
    if not isinstance(points, set) or not isinstance(ranges, list):
        raise ValueError("malformed conflict set")
    for key in points:
        if not isinstance(key, bytes):
            raise ValueError("malformed conflict key")
    for r in ranges:
        if not (isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], bytes)
                and isinstance(r[1], bytes)):
            raise ValueError("malformed conflict range")
    out.points = points
    out.ranges = ranges
    return out


def decode_commit(body: bytes, future: asyncio.Future[tuple[int, bytes]]) -> _Commit:
    """A commit request from its frame body; ValueError if it is not one."""
    from .sqlite import _Commit

    try:
        fields = _loads(body)
    except Exception as e:  # any malformed pickle, or a refused global
        raise ValueError(f"undecodable commit: {e}") from e
    if not (isinstance(fields, tuple) and len(fields) == 6):
        raise ValueError("malformed commit")
    read_version, rpoints, rranges, wpoints, wranges, raw = fields
    if not isinstance(read_version, int) or not isinstance(raw, list):
        raise ValueError("malformed commit")
    mutations = []
    for m in raw:
        if not (isinstance(m, tuple) and len(m) == 3 and m[0] in _OPS
                and isinstance(m[1], bytes) and isinstance(m[2], bytes)):
            raise ValueError("malformed mutation")
        mutations.append(Mutation(_OPS[m[0]], m[1], m[2]))
    return _Commit(read_version, _conflict_set(rpoints, rranges),
                   _conflict_set(wpoints, wranges), mutations, future)


def check_commit(c: _Commit) -> None:
    """FoundationDB's limits on what a client sends, checked again by the server
    (a worker's transaction checks them too, but the server trusts no frame): the
    error is the one the transaction would have raised, and fails it alone."""
    size = c.reads.byte_size() + c.writes.byte_size()
    for m in c.mutations:
        op = m.op
        if op is Op.SET or op in ATOMIC:
            check_key(m.key)
            check_value(m.param)
        elif op is Op.CLEAR:
            check_key(m.key)
        elif op is Op.CLEAR_RANGE:
            # a range's end may be longer than a key (a long end is clamped to its first
            # MAX_KEY_SIZE bytes + 0, as FoundationDB does): only its first bytes must be legal
            check_range(m.key, m.param[:MAX_KEY_SIZE])
        elif op is Op.VS_KEY:
            check_key(split_versionstamp(m.key)[0])
            check_value(m.param)
        elif op is Op.VS_VALUE:
            check_key(m.key)
            check_value(split_versionstamp(m.param)[0])
        size += len(m.key) + len(m.param)
        if op is Op.VS_KEY or op is Op.VS_VALUE:
            size -= 4  # the placeholder's offset is not written (counted as the client does)
    if size > MAX_TRANSACTION_SIZE:
        raise TransactionTooLarge(f"transaction of {size} bytes exceeds {MAX_TRANSACTION_SIZE}")


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    request_id, length = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes")
    return request_id, await reader.readexactly(length)


class CommitServer:
    """Serves ``engine``'s commits to other processes on a Unix socket."""

    def __init__(self, engine: SqliteEngine, path: str) -> None:
        self.engine = engine
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    request_id, body = await _read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                future: asyncio.Future[tuple[int, bytes]] = loop.create_future()
                try:
                    commit = decode_commit(body, future)
                    check_commit(commit)
                except ValueError as e:
                    log.warning("refused a commit request: %s", e)
                    self._reply(writer, request_id, (int(ErrorCode.INTERNAL_ERROR), str(e)))
                    continue
                except StoreError as e:  # over a limit, or malformed: this transaction only
                    self._reply(writer, request_id, (int(e.code), str(e)))
                    continue
                future.add_done_callback(
                    lambda f, rid=request_id: self._answer(writer, rid, f))  # type: ignore[misc]
                self.engine._submit(commit)
        except ValueError as e:  # an oversized frame: the stream is out of step, drop it
            log.warning("dropped a commit client: %s", e)
        finally:
            self._clients.discard(writer)
            writer.close()

    def _answer(self, writer: asyncio.StreamWriter, request_id: int,
                future: asyncio.Future[tuple[int, bytes]]) -> None:
        if future.cancelled():
            reply: tuple[object, ...] = (int(ErrorCode.COMMIT_UNKNOWN_RESULT), "cancelled")
        elif (e := future.exception()) is not None:
            code = e.code if isinstance(e, StoreError) else ErrorCode.INTERNAL_ERROR
            reply = (int(code), str(e))
        else:
            version, stamp = future.result()
            reply = (_OK, version, stamp)
        self._reply(writer, request_id, reply)

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, request_id: int, reply: tuple[object, ...]) -> None:
        if not writer.is_closing():
            writer.write(_frame(request_id, _dumps(reply)))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class CommitClient:
    """One connection to a :class:`CommitServer`, shared by a process's commits;
    replies are matched to requests by id, so commits overlap."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
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
            return self._writer

    async def commit(self, c: _Commit) -> tuple[int, bytes]:
        try:
            writer = await self._connection()
        except OSError as e:  # nothing was sent: the commit did not happen
            raise NotCommitted(f"store commit server unreachable: {e}") from e
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        request_id = self._next_id
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        writer.write(_frame(request_id, encode_commit(c)))
        try:
            return await future
        finally:
            self._waiting.pop(request_id, None)

    async def _read_replies(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        why = "connection to the store commit server lost"
        try:
            while True:
                request_id, body = await _read_frame(reader)
                future = self._waiting.get(request_id)
                if future is None or future.done():
                    continue
                reply = _loads(body)
                if not isinstance(reply, tuple) or not reply or not isinstance(reply[0], int):
                    raise ValueError("malformed reply")
                if reply[0] == _OK:
                    future.set_result((reply[1], reply[2]))
                else:
                    future.set_exception(_error(reply[0], str(reply[1])))
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
