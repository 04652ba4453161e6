"""The commit socket's wire: frames, and what they carry.

A frame is ``<request id: u32><length: u32><body>``; a body is a pickle of
builtins only (lists, tuples, sets, bytes, str, int, None), loaded by an
unpickler that refuses every global, so a frame can describe data and nothing
else.

A client sends requests, each answered by a frame of the same id:

* a commit: ``(read version, read points, read ranges, write points, write
  ranges, [(op, key, param), ...])``, answered ``(OK, version, versionstamp)`` or
  ``(error code, message)``;
* ``("watch", [key, ...])``: push these keys when a commit writes them, answered
  ``(OK, version)`` once registered;
* ``("unwatch", [key, ...])`` (request id 0: not answered): forget them.

The server pushes, with request id 0 (:data:`PUSH_ID`, never a request's), the
keys a commit wrote that the client asked for, as ``[key, ...]``; each key is
pushed once per ``watch``.
"""

from __future__ import annotations

import asyncio
import io
import pickle
import struct
from dataclasses import dataclass

from ..base import MAX_KEY_SIZE, MAX_TRANSACTION_SIZE, ErrorCode, StoreError, TransactionTooLarge
from .commit import Commit, CommitResult
from .conflicts import ConflictSet
from .mutations import ATOMIC, Mutation, Op, check_key, check_range, check_value, split_versionstamp

HEADER = struct.Struct("<II")
MAX_FRAME = 64 * 1024 * 1024  # a transaction is at most 10 MB of mutations plus conflict keys
OK = 0
PUSH_ID = 0  # the server's pushes, and requests that want no answer
_OPS = {op.value: op for op in Op}


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"refused: {module}.{name}")


def loads(body: bytes) -> object:
    return _DataOnly(io.BytesIO(body)).load()


def dumps(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=5)


def error_for(code: int, message: str) -> StoreError:
    """The contract's exception for ``code`` (NotCommitted for not_committed, ...)."""
    error_code = ErrorCode(code)
    todo = [StoreError]
    while todo:
        cls = todo.pop()
        if cls.code is error_code and cls is not StoreError:
            return cls(message)
        todo.extend(cls.__subclasses__())
    return StoreError(message, code=error_code)


def frame(request_id: int, body: bytes) -> bytes:
    return HEADER.pack(request_id, len(body)) + body


def encode_commit(c: Commit) -> bytes:
    return dumps((c.read_version, c.reads.points, c.reads.ranges, c.writes.points,
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


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """Push (``watch``) or stop pushing (not ``watch``) these keys' writes."""

    watch: bool
    keys: list[bytes]


def encode_watch(keys: list[bytes], *, watch: bool = True) -> bytes:
    return dumps(("watch" if watch else "unwatch", keys))


def encode_push(keys: list[bytes]) -> bytes:
    return dumps(keys)


def decode_push(body: bytes) -> list[bytes]:
    """The keys of a push frame; ValueError if it is not one."""
    keys = loads(body)
    if not (isinstance(keys, list) and all(isinstance(k, bytes) for k in keys)):
        raise ValueError("malformed push")
    return keys


def decode_request(body: bytes, future: asyncio.Future[CommitResult]) -> Commit | WatchRequest:
    """A request from its frame body; ValueError if it is not one."""
    try:
        fields = loads(body)
    except Exception as e:  # any malformed pickle, or a refused global
        raise ValueError(f"undecodable request: {e}") from e
    if isinstance(fields, tuple) and len(fields) == 2 and fields[0] in ("watch", "unwatch"):
        keys = fields[1]
        if not (isinstance(keys, list) and all(isinstance(k, bytes) for k in keys)):
            raise ValueError("malformed watch request")
        for key in keys:
            check_key(key)  # StoreError: refused as a watch on FoundationDB would be
        return WatchRequest(fields[0] == "watch", keys)
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
    return Commit(read_version, _conflict_set(rpoints, rranges),
                  _conflict_set(wpoints, wranges), mutations, future)


def check_commit(c: Commit) -> None:
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


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    request_id, length = HEADER.unpack(await reader.readexactly(HEADER.size))
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes")
    return request_id, await reader.readexactly(length)

