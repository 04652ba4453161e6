"""The FoundationDB engine, on the official ``foundationdb`` binding.

Pinned to FoundationDB 7.3: the binding ``foundationdb==7.3.*`` and client API
730 (``libfdb_c`` of 7.3 or newer).  A binding that asks for another API than the
library offers is reported as a version mismatch naming both.

The binding blocks and its asyncio mode does not work on current Python, so
this adapter never blocks the event loop nor a thread: every call that waits
(point reads, each page of a range read, commits, ``on_error``, watches) is an
FDB future bridged with ``Future.on_ready`` (the callback runs on the binding's
network thread and hands the result to the loop).  A task cancelled while it
waits cancels the future.  Nothing else in the project touches the binding.

Errors keep FoundationDB's code; whether one is retried, and after what
backoff, is FoundationDB's decision (``fdb.predicates``, ``on_error``).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
from collections.abc import Callable, Sequence
from typing import Any

from .base import InvalidOperation, KeyValue, StoreError, error_for_code

API_VERSION = 730  # FoundationDB 7.3; pyproject pins the binding to match
_api_selected: int | None = None


class ClientLibraryError(RuntimeError):
    """The FoundationDB client cannot be used; the message says what to install."""


class ClientLibraryMissing(ClientLibraryError):
    """``libfdb_c`` could not be loaded."""


class ClientVersionMismatch(ClientLibraryError):
    """The binding, the client library and the API version do not go together."""


def _release(api: int) -> str:
    return f"{api // 100}.{api % 100 // 10}"


def _binding_version() -> str:
    try:
        return importlib.metadata.version("foundationdb")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def load_fdb(api_version: int = API_VERSION) -> Any:
    """Import the binding and select the API version (once per process)."""
    global _api_selected
    if api_version < API_VERSION:
        raise InvalidOperation(f"fdbmail needs FoundationDB API version {API_VERSION} or newer")
    import fdb

    if _api_selected is not None:
        if _api_selected != api_version:
            raise ClientVersionMismatch(
                f"FoundationDB API version {_api_selected} is already selected in this "
                f"process; {api_version} was asked for")
        return fdb
    binding = _binding_version()
    header = int(fdb.LATEST_API_VERSION)
    if api_version > header:
        raise ClientVersionMismatch(
            f"FoundationDB version mismatch: API version {api_version} "
            f"(FoundationDB {_release(api_version)}) was asked for, but the Python binding "
            f"foundationdb {binding} knows API versions up to {header}; fdbmail is pinned to "
            f"API {API_VERSION} with the binding foundationdb==7.3.*")
    try:
        import fdb.impl
    except Exception as e:  # the binding raises a bare Exception when libfdb_c is absent
        raise ClientLibraryMissing(
            "the FoundationDB client library (libfdb_c) could not be loaded: install the "
            "foundationdb-clients package for your platform (from FoundationDB's "
            f"releases, 7.3) so that libfdb_c.so is on the library path ({e})"
        ) from e
    library_max = int(fdb.impl._capi.fdb_get_max_api_version())
    if library_max < header or library_max < api_version:
        raise ClientVersionMismatch(
            f"FoundationDB version mismatch: the Python binding foundationdb {binding} "
            f"needs a client library that supports API version {header} "
            f"(FoundationDB {_release(header)}), but the installed libfdb_c supports API "
            f"versions up to {library_max} (FoundationDB {_release(library_max)}); install "
            f"the binding that matches the library (foundationdb=={_release(library_max)}.* "
            "for a 7.3 library) or a newer client library")
    try:
        fdb.api_version(api_version)
    except Exception as e:
        raise ClientVersionMismatch(
            f"FoundationDB refused API version {api_version} (binding foundationdb "
            f"{binding}, client library up to API {library_max}): {e}") from e
    _api_selected = api_version
    return fdb


def convert_error(e: BaseException) -> BaseException:
    """An FDBError as the contract's StoreError, with its native code kept and
    its retryability as the binding's predicate says."""
    code = getattr(e, "code", None)
    if isinstance(code, int) and type(e).__name__ == "FDBError":
        import fdb

        description = getattr(e, "description", b"")
        if isinstance(description, bytes):
            description = description.decode("utf-8", "replace")
        err = error_for_code(code, f"{description} ({code})",
                             retryable=bool(fdb.predicates.is_retryable(e)))
        err.native = e  # type: ignore[attr-defined]
        return err
    return e


async def _await(fut: Any, extract: Callable[[Any], Any] = lambda f: f.wait()) -> Any:
    """Await an FDB future without blocking the loop; cancelling the awaiting
    task cancels the future."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def ready(f: Any) -> None:
        # runs on the binding's network thread (or here, if already ready)
        try:
            result = extract(f)
        except BaseException as e:  # handed to the loop below
            _hand_over(loop, _set_exception, done, convert_error(e))
        else:
            _hand_over(loop, _set_result, done, result)

    fut.on_ready(ready)
    try:
        return await done
    except asyncio.CancelledError:
        fut.cancel()
        raise


def _hand_over(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass


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

    async def get_many(self, keys: Sequence[bytes], *, snapshot: bool = False
                       ) -> list[bytes | None]:
        source = self._tr.snapshot if snapshot else self._tr
        futures = [source.get(key) for key in keys]  # all in flight before the first wait
        out: list[bytes | None] = []
        try:
            for fut in futures:
                value = await _await(fut, lambda f: f.value)
                out.append(None if value is None else bytes(value))
        except BaseException:
            for fut in futures[len(out) + 1:]:
                fut.cancel()
            raise
        return out

    async def get_range(
        self,
        begin: bytes,
        end: bytes,
        *,
        limit: int = 0,
        reverse: bool = False,
        snapshot: bool = False,
    ) -> list[KeyValue]:
        """Pages of range futures, each awaited through its callback (see the
        module docstring), until ``limit`` pairs or the end of the range."""
        source = self._tr.snapshot if snapshot else self._tr
        fdb = self._fdb
        if limit < 0:
            raise InvalidOperation("limit must not be negative")
        mode = fdb.StreamingMode.want_all
        first_ge = fdb.KeySelector.first_greater_or_equal
        bsel, esel = first_ge(begin), first_ge(end)
        out: list[KeyValue] = []
        iteration = 1
        while True:
            try:
                fut = source._get_range(bsel, esel, limit - len(out) if limit else 0, mode,
                                        iteration, reverse)
            except BaseException as e:
                raise convert_error(e) from None
            kvs, count, more = await _await(fut)
            out.extend(KeyValue(bytes(kv.key), bytes(kv.value)) for kv in kvs)
            if not count or not more or (limit and len(out) >= limit):
                return out
            iteration += 1
            if reverse:
                esel = first_ge(kvs[-1].key)
            else:
                bsel = fdb.KeySelector.first_greater_than(kvs[-1].key)

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as e:
            raise convert_error(e) from None

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
        """FoundationDB's own on_error: for an error it retries it resets the
        transaction and returns after its backoff; any other it raises (as
        ``error`` itself).  It takes the code, so errors made in Python (the
        fault-injection wrapper's) are decided alike."""
        try:
            await _await(self._tr.on_error(int(error.code)))
        except StoreError as e:
            if e.code != error.code:
                raise
        else:
            return
        raise error

    def reset(self) -> None:
        self._tr.reset()

    def cancel(self) -> None:
        self._tr.cancel()
