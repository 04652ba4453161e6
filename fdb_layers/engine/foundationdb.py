"""The FoundationDB engine, on the official ``foundationdb`` binding.

The binding blocks and its asyncio mode does not work on current Python, so
this adapter never blocks the event loop: point reads, commits, ``on_error``
and watches are FDB futures bridged with ``Future.on_ready`` (the callback runs
on the binding's network thread and hands the result to the loop), and range
reads, whose iterator blocks, run in a worker thread.  Nothing else in the
project touches the binding.

Not exercised on machines without a FoundationDB cluster: the contract tests
run it only where ``FDB_CLUSTER_FILE`` is set and ``libfdb_c`` loads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from .base import InvalidOperation, KeyValue, StoreError, error_for_code

_api_selected: int | None = None


class ClientLibraryMissing(RuntimeError):
    """``libfdb_c`` could not be loaded."""


def load_fdb(api_version: int) -> Any:
    """Import the binding and select the API version (once per process)."""
    global _api_selected
    if api_version < 730:
        raise InvalidOperation("fdbmail needs FoundationDB API version 730 or newer")
    import fdb

    if _api_selected is None:
        try:
            fdb.api_version(api_version)
        except Exception as e:  # the binding raises a bare Exception when libfdb_c is absent
            raise ClientLibraryMissing(
                "the FoundationDB client library (libfdb_c) could not be loaded: install the "
                "foundationdb-clients package for your platform (from FoundationDB's "
                f"releases) so that libfdb_c.so is on the library path ({e})"
            ) from e
        _api_selected = api_version
    return fdb


def _convert(e: BaseException) -> BaseException:
    code = getattr(e, "code", None)
    if isinstance(code, int) and type(e).__name__ == "FDBError":
        err = error_for_code(code, str(e))
        err.native = e  # type: ignore[attr-defined]
        return err
    return e


async def _await(fut: Any, extract: Callable[[Any], Any] = lambda f: f.wait()) -> Any:
    """Await an FDB future without blocking the loop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def ready(f: Any) -> None:
        try:
            result = extract(f)
        except BaseException as e:  # handed to the loop below
            loop.call_soon_threadsafe(_set_exception, done, _convert(e))
        else:
            loop.call_soon_threadsafe(_set_result, done, result)

    fut.on_ready(ready)
    return await done


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class FdbWatch:
    def __init__(self, fut: Any) -> None:
        self._fut = fut

    async def wait(self) -> None:
        await _await(self._fut)

    def cancel(self) -> None:
        self._fut.cancel()


class FoundationDbEngine:
    name = "foundationdb"

    def __init__(self, fdb: Any, db: Any) -> None:
        self._fdb = fdb
        self._db = db

    @classmethod
    async def open(cls, cluster_file: str = "", api_version: int = 730) -> FoundationDbEngine:
        fdb = load_fdb(api_version)
        path = cluster_file or os.environ.get("FDB_CLUSTER_FILE") or None
        db = await asyncio.to_thread(fdb.open, path)
        return cls(fdb, db)

    def create_transaction(self) -> FdbTransaction:
        return FdbTransaction(self._fdb, self._db.create_transaction())

    async def watch(self, key: bytes) -> FdbWatch:
        tr = self._db.create_transaction()
        while True:
            try:
                w = tr.watch(key)
                await _await(tr.commit())
                return FdbWatch(w)
            except StoreError as e:
                await _await(tr.on_error(int(e.code)))

    async def close(self) -> None:
        self._db = None


class FdbTransaction:
    def __init__(self, fdb: Any, tr: Any) -> None:
        self._fdb = fdb
        self._tr = tr

    async def get(self, key: bytes, *, snapshot: bool = False) -> bytes | None:
        source = self._tr.snapshot if snapshot else self._tr
        value = await _await(source.get(key), lambda f: f.value)  # a ready Value: no block
        return None if value is None else bytes(value)

    async def get_range(
        self,
        begin: bytes,
        end: bytes,
        *,
        limit: int = 0,
        reverse: bool = False,
        snapshot: bool = False,
    ) -> list[KeyValue]:
        source = self._tr.snapshot if snapshot else self._tr
        mode = self._fdb.StreamingMode.want_all

        def read() -> list[KeyValue]:
            return [KeyValue(bytes(kv.key), bytes(kv.value))
                    for kv in source.get_range(begin, end, limit, reverse, mode)]

        try:
            return await asyncio.to_thread(read)
        except BaseException as e:
            raise _convert(e) from None

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as e:
            raise _convert(e) from None

    def set(self, key: bytes, value: bytes) -> None:
        self._call(self._tr.set, key, value)

    def clear(self, key: bytes) -> None:
        self._call(self._tr.clear, key)

    def clear_range(self, begin: bytes, end: bytes) -> None:
        self._call(self._tr.clear_range, begin, end)

    def add(self, key: bytes, delta: int) -> None:
        self._call(self._tr.add, key, (delta % 2**64).to_bytes(8, "little"))

    def max(self, key: bytes, value: int) -> None:
        self._call(self._tr.max, key, value.to_bytes(8, "little"))

    def min(self, key: bytes, value: int) -> None:
        self._call(self._tr.min, key, value.to_bytes(8, "little"))

    def compare_and_clear(self, key: bytes, value: bytes) -> None:
        self._call(self._tr.compare_and_clear, key, value)

    def set_versionstamped_key(self, key: bytes, value: bytes) -> None:
        self._call(self._tr.set_versionstamped_key, key, value)

    def set_versionstamped_value(self, key: bytes, value: bytes) -> None:
        self._call(self._tr.set_versionstamped_value, key, value)

    def add_read_conflict_key(self, key: bytes) -> None:
        self._call(self._tr.add_read_conflict_key, key)

    def add_write_conflict_key(self, key: bytes) -> None:
        self._call(self._tr.add_write_conflict_key, key)

    async def get_read_version(self) -> int:
        return int(await _await(self._tr.get_read_version()))

    def get_versionstamp(self) -> asyncio.Future[bytes]:
        fut = self._tr.get_versionstamp()
        return asyncio.ensure_future(_await(fut, lambda f: bytes(f.value)))

    async def commit(self) -> None:
        await _await(self._tr.commit())

    async def on_error(self, error: StoreError) -> None:
        # the binding takes the code (errors injected by the faults wrapper have no native one)
        await _await(self._tr.on_error(int(error.code)))

    def reset(self) -> None:
        self._tr.reset()

    def cancel(self) -> None:
        self._tr.cancel()
