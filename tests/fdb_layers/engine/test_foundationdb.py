"""What only the FoundationDB engine has: the pinned binding and API version,
FoundationDB's own retry decisions, range reads off the default thread pool."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fdb_layers.engine import base
from fdb_layers.engine.base import Engine, StoreError, Transaction
from fdb_layers.engine.run import RETRIES, transact
from tests.support.engines import FDB_SKIP_REASON, make_engine

ROOT = Path(__file__).resolve().parents[3]
needs_fdb = pytest.mark.skipif(FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or "")


# -- the binding is pinned to the client API the engine selects ---------------------

def test_binding_is_pinned_to_foundationdb_7_3() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if re.match(r"foundationdb\b", d)]
    assert pins, "pyproject.toml does not depend on the foundationdb binding"
    pin = pins[0].replace(" ", "")
    assert re.fullmatch(r"foundationdb(==7\.3\.\d+|>=7\.3(\.\d+)?,<7\.4)", pin), pin
    import importlib.metadata

    import fdb

    assert importlib.metadata.version("foundationdb").startswith("7.3.")
    assert fdb.LATEST_API_VERSION == 730


def _load_in_child(code: str) -> subprocess.CompletedProcess[str]:
    """load_fdb selects the API once per process: each case gets its own."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_api_version_newer_than_the_binding_is_a_version_mismatch() -> None:
    result = _load_in_child("""
        from fdb_layers.engine.foundationdb import ClientVersionMismatch, load_fdb
        try:
            load_fdb(740)
        except ClientVersionMismatch as e:
            print("mismatch:", e)
        """)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("mismatch: FoundationDB version mismatch")
    assert "740" in out and "foundationdb 7.3." in out and "730" in out
    assert "could not be loaded" not in out


@needs_fdb
def test_binding_newer_than_the_client_library_is_a_version_mismatch() -> None:
    """The 8.0 binding asks libfdb_c for API 800; a 7.3 library refuses.  That is
    a version mismatch naming both versions, not "library missing"."""
    result = _load_in_child("""
        import fdb
        fdb.LATEST_API_VERSION = 800  # what the 8.0 binding asks for
        from fdb_layers.engine.foundationdb import ClientLibraryMissing, ClientVersionMismatch
        from fdb_layers.engine.foundationdb import load_fdb
        try:
            load_fdb(730)
        except ClientLibraryMissing as e:
            print("missing:", e)
        except ClientVersionMismatch as e:
            print("mismatch:", e)
        """)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("mismatch: FoundationDB version mismatch"), out
    assert "API version 800" in out and "up to 730" in out and "FoundationDB 7.3" in out


def test_serve_reports_a_version_mismatch_as_such(tmp_path: Path) -> None:
    result = _load_in_child(f"""
        import asyncio
        from server.node.parts import StartupError, open_store
        from server.config import load_config

        config = load_config(None, env={{"FDBMAIL_STORE_ENGINE": "foundationdb"}}).with_overrides(
            {{"server": {{"data_dir": {str(tmp_path)!r}}}, "store": {{"fdb_api_version": 740}}}})
        try:
            asyncio.run(open_store(config))
        except StartupError as e:
            print("startup:", e)
        """)
    assert result.returncode == 0, result.stderr
    assert re.match(r"startup: FoundationDB version mismatch.*740.*foundationdb 7\.3\.",
                    result.stdout), result.stdout


# -- error codes are FoundationDB's own -------------------------------------------------

def test_unknown_codes_keep_their_number() -> None:
    err = base.error_for_code(1037, "storage process behind")
    assert err.code == 1037 and err.reason == "process_behind"
    odd = base.error_for_code(1600, "an unknown code")  # (1510 io_error is StoreFull's now)
    assert odd.code == 1600 and odd.reason == "error_1600"
    assert int(odd.code) != base.ErrorCode.INTERNAL_ERROR
    assert isinstance(base.error_for_code(1020), base.NotCommitted)
    # the embedded engine's classification, for the codes it raises
    assert base.error_for_code(1020).retryable and not base.error_for_code(2102).retryable
    assert base.error_for_code(1037, retryable=True).retryable


@needs_fdb
def test_foundationdb_errors_are_classified_by_the_binding() -> None:
    import fdb

    from fdb_layers.engine.foundationdb import convert_error

    for code in (1007, 1009, 1020, 1021, 1037, 1038, 1039, 1042, 1051, 1078, 1213):
        err = convert_error(fdb.FDBError(code))
        assert isinstance(err, StoreError) and err.code == code and err.retryable, code
    for code in (1004, 1036, 1510, 2101, 2102, 4100):
        err = convert_error(fdb.FDBError(code))
        assert isinstance(err, StoreError) and err.code == code and not err.retryable, code


@pytest.fixture
async def fdb_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    if FDB_SKIP_REASON is not None:
        pytest.skip(FDB_SKIP_REASON)
    engine = await make_engine("foundationdb", tmp_path)
    try:
        yield engine
    finally:
        await engine.close()


def _native(code: int) -> BaseException:
    import fdb

    from fdb_layers.engine.foundationdb import convert_error

    return convert_error(fdb.FDBError(code))


async def test_on_error_of_foundationdb_retries_what_it_retries(
    fdb_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """process_behind, throttling, proxy memory limits (not retried before):
    FoundationDB's on_error backs off and the body runs again.  (The binding's
    predicate also calls cluster_version_changed retryable; on_error retries it
    only in the multi-version client, and on_error decides.)"""
    from fdb_layers.engine.foundationdb import FdbTransaction

    seen: list[int] = []
    real_on_error = FdbTransaction.on_error

    async def spy(self: FdbTransaction, error: StoreError) -> None:
        seen.append(int(error.code))
        await real_on_error(self, error)

    monkeypatch.setattr(FdbTransaction, "on_error", spy)
    codes = [1037, 1213, 1042, 1051]
    before = RETRIES.labels("foundationdb", "process_behind")._value.get()

    async def body(tr: Transaction) -> str:
        if codes:
            raise _native(codes.pop(0))
        tr.set(b"retried", b"yes")
        return "done"

    assert await transact(fdb_engine, body) == "done"
    assert seen == [1037, 1213, 1042, 1051]
    assert RETRIES.labels("foundationdb", "process_behind")._value.get() == before + 1

    async def read(tr: Transaction) -> bytes | None:
        return await tr.get(b"retried")

    assert await transact(fdb_engine, read) == b"yes"


async def test_errors_foundationdb_does_not_retry_propagate_with_their_code(
    fdb_engine: Engine,
) -> None:
    for code in (1510, 2102, 1004):
        runs = 0

        async def body(tr: Transaction, code: int = code) -> None:
            nonlocal runs
            runs += 1
            raise _native(code)

        with pytest.raises(StoreError) as caught:
            await transact(fdb_engine, body)
        assert caught.value.code == code and runs == 1


async def test_injected_conflict_is_retried_by_foundationdb_on_error(fdb_engine: Engine) -> None:
    """An error made in Python (the fault wrapper's) has no native error: on_error
    takes its code."""
    runs = 0

    async def body(tr: Transaction) -> int:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise base.NotCommitted("injected")
        return runs

    assert await transact(fdb_engine, body) == 3


# -- range reads ---------------------------------------------------------------------

async def test_range_reads_page_through_futures_without_threads(
    fdb_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than one page (want_all returns a few hundred KB a page), with and
    without limit, forward and reverse; asyncio's default pool is never used."""
    n, value = 3000, b"v" * 300

    async def fill(tr: Transaction, start: int) -> None:
        for i in range(start, min(start + 1000, n)):
            tr.set(b"page/%05d" % i, value)

    for start in range(0, n, 1000):
        await transact(fdb_engine, fill, start)

    loop = asyncio.get_running_loop()

    def no_threads(*args: object) -> None:
        raise AssertionError("a range read used a thread")

    monkeypatch.setattr(loop, "run_in_executor", no_threads)

    async def read(tr: Transaction) -> dict[str, list[bytes]]:
        return {
            "all": [kv.key for kv in await tr.get_range(b"page/", b"page0")],
            "rev": [kv.key for kv in await tr.get_range(b"page/", b"page0", reverse=True)],
            "lim": [kv.key for kv in await tr.get_range(b"page/", b"page0", limit=2500)],
            "revlim": [kv.key for kv in await tr.get_range(b"page/", b"page0", limit=2001,
                                                           reverse=True)],
            "snap": [kv.key for kv in await tr.get_range(b"page/", b"page0", snapshot=True)],
        }

    got = await transact(fdb_engine, read)
    keys = [b"page/%05d" % i for i in range(n)]
    assert got["all"] == keys and got["snap"] == keys
    assert got["rev"] == keys[::-1]
    assert got["lim"] == keys[:2500]
    assert got["revlim"] == keys[::-1][:2001]


async def test_a_cancelled_range_read_cancels_its_future(fdb_engine: Engine) -> None:
    """A task cancelled while a page is outstanding cancels that page's future
    (no thread is left blocked on it)."""
    tr = fdb_engine.create_transaction()
    try:
        native_tr = tr._tr  # type: ignore[attr-defined]
        real = native_tr._get_range
        pages: list[_SlowPage] = []

        def slow(*args: object) -> object:
            pages.append(_SlowPage(real(*args)))
            return pages[-1]

        native_tr._get_range = slow
        task = asyncio.create_task(tr.get_range(b"", b"\xff"))
        await asyncio.sleep(0)  # the task asks for its first page and waits for it
        assert pages
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pages[0].cancelled
    finally:
        tr.cancel()


class _SlowPage:
    """A range future whose result never arrives (a slow storage server)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.cancelled = False

    def on_ready(self, callback: object) -> None:
        pass

    def cancel(self) -> None:
        self.cancelled = True
        self.inner.cancel()  # type: ignore[attr-defined]
