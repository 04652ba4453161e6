"""Metrics for any blob store: a wrapper that times and counts what it is given.

Every backend gets the same metrics without repeating them: ``open_blob_store``
wraps the store it opens in :class:`MeteredBlobStore`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from typing import TypeVar

from prometheus_client import Counter, Histogram

from .base import BlobNotFound, BlobRef, BlobStore

log = logging.getLogger(__name__)
T = TypeVar("T")

OPERATIONS = Counter(
    "fdbmail_blobs_operations_total",
    "Blob store operations, by backend, operation and result (ok, not_found, error).",
    ["backend", "op", "result"],
)
BYTES = Counter(
    "fdbmail_blobs_bytes_total",
    "Bytes written (put, put_stream) or read (get, read_range, open) by blob store "
    "operations, by backend, operation and result.",
    ["backend", "op", "result"],
)
SECONDS = Histogram(
    "fdbmail_blobs_operation_seconds",
    "Duration of blob store operations (streams: first call to last chunk).",
    ["backend", "op"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
             5.0, 10.0, 30.0, 60.0),
)


def _result(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, BlobNotFound):
        return "not_found"
    return "error"


class MeteredBlobStore:
    """A :class:`BlobStore` that records metrics around another one."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.capabilities = inner.capabilities

    async def release_space(self) -> None:
        """The inner store's :meth:`BlobStore.release_space`, if it declares one."""
        if self.capabilities.releases_space:
            started = time.perf_counter()
            try:
                await self.inner.release_space()
            except Exception as e:
                self._record("release_space", started, e)
                raise
            self._record("release_space", started, None)

    def _record(self, op: str, started: float, error: BaseException | None,
                nbytes: int = 0) -> None:
        result = _result(error)
        SECONDS.labels(self.backend, op).observe(time.perf_counter() - started)
        OPERATIONS.labels(self.backend, op, result).inc()
        if nbytes:
            BYTES.labels(self.backend, op, result).inc(nbytes)
        if result == "error":
            log.warning("blob %s failed on %s: %r", op, self.backend, error)

    async def put(self, data: bytes) -> BlobRef:
        started = time.perf_counter()
        try:
            ref = await self.inner.put(data)
        except BaseException as e:
            self._record("put", started, e)
            raise
        self._record("put", started, None, ref.size)
        return ref

    async def put_stream(self, chunks: AsyncIterable[bytes]) -> BlobRef:
        started = time.perf_counter()
        try:
            ref = await self.inner.put_stream(chunks)
        except BaseException as e:
            self._record("put_stream", started, e)
            raise
        self._record("put_stream", started, None, ref.size)
        return ref

    async def get(self, blob_id: str) -> bytes:
        started = time.perf_counter()
        try:
            data = await self.inner.get(blob_id)
        except BaseException as e:
            self._record("get", started, e)
            raise
        self._record("get", started, None, len(data))
        return data

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        started = time.perf_counter()
        try:
            data = await self.inner.read_range(blob_id, start, end)
        except BaseException as e:
            self._record("read_range", started, e)
            raise
        self._record("read_range", started, None, len(data))
        return data

    async def open(self, blob_id: str, start: int = 0,
                   end: int | None = None) -> AsyncIterator[bytes]:
        started = time.perf_counter()
        total = 0
        error: BaseException | None = None
        try:
            async for chunk in self.inner.open(blob_id, start, end):
                total += len(chunk)
                yield chunk
        except GeneratorExit:  # the reader stopped early: not a failure
            raise
        except BaseException as e:
            error = e
            raise
        finally:
            self._record("open", started, error, total)

    async def exists(self, blob_id: str) -> bool:
        return await self._simple("exists", self.inner.exists(blob_id))

    async def size(self, blob_id: str) -> int:
        return await self._simple("size", self.inner.size(blob_id))

    async def modified(self, blob_id: str) -> float:
        return await self._simple("modified", self.inner.modified(blob_id))

    async def delete(self, blob_id: str) -> None:
        await self._simple("delete", self.inner.delete(blob_id))

    async def delete_if_older(self, blob_id: str, cutoff: float) -> bool:
        return await self._simple("delete_if_older", self.inner.delete_if_older(blob_id, cutoff))

    async def _simple(self, op: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            value = await call
        except BaseException as e:
            self._record(op, started, e)
            raise
        self._record(op, started, None)
        return value

    async def list(self) -> AsyncIterator[tuple[str, float]]:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            async for entry in self.inner.list():
                yield entry
        except GeneratorExit:
            raise
        except BaseException as e:
            error = e
            raise
        finally:
            self._record("list", started, error)

    async def close(self) -> None:
        await self.inner.close()
