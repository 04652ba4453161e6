"""What the mail layer's API lets out of fdb_layers (fdb_layers/mail/store.py): the
store's failures as domain errors, a body's own errors as they are, and a batch
part's failure told apart from the transaction's."""

from __future__ import annotations

import pytest

from fdb_layers import mail
from fdb_layers.engine.base import Engine, LayoutVersionError, NotCommitted, StoreFull, Transaction
from fdb_layers.mail import PartFailed, StorageFull, StoreUnavailable, run_part, transact
from tests.fdb_layers.engine.helpers import S, read_key

ENGINE_KINDS = ["sqlite"]


async def test_a_full_disk_is_storage_full(engine: Engine) -> None:
    async def body(tr: Transaction) -> None:
        raise StoreFull("no space left")

    with pytest.raises(StorageFull) as caught:
        await transact(engine, body)
    assert isinstance(caught.value, StoreUnavailable)  # a kind of unavailable store


@pytest.mark.parametrize("error", [
    StoreUnavailable, StorageFull, mail.EmailExists, ValueError,
])
async def test_domain_and_caller_errors_pass_as_they_are(
        engine: Engine, error: type[Exception]) -> None:
    async def body(tr: Transaction) -> None:
        raise error("refused")

    with pytest.raises(error):
        await transact(engine, body)


async def test_a_layout_this_node_cannot_use_is_an_unavailable_store(engine: Engine) -> None:
    async def body(tr: Transaction) -> None:
        raise LayoutVersionError("written by a newer fdbmail")

    with pytest.raises(StoreUnavailable, match="newer fdbmail"):
        await transact(engine, body)


async def test_a_store_error_that_outlives_the_retries_is_unavailable(engine: Engine) -> None:
    calls = 0

    async def body(tr: Transaction) -> None:
        nonlocal calls
        calls += 1
        tr.set(S.pack(("never",)), b"x")
        raise StoreFull("full") if calls > 3 else NotCommitted("conflict")

    with pytest.raises(StorageFull):
        await transact(engine, body)
    assert calls == 4  # the conflicts were retried by the engine's loop
    assert await read_key(engine, S.pack(("never",))) is None


async def test_run_part_wraps_the_parts_own_error_and_passes_the_stores(engine: Engine) -> None:
    async def refuses(tr: Transaction) -> None:
        raise mail.QuotaExceeded(10, 5, 6)

    async def conflicts(tr: Transaction) -> None:
        raise NotCommitted("conflict")

    async def writes(tr: Transaction) -> int:
        tr.set(S.pack(("part",)), b"1")
        return 7

    async def body(tr: Transaction) -> list[object]:
        out: list[object] = [await run_part(tr, writes)]
        try:
            await run_part(tr, refuses)
        except PartFailed as e:
            out.append(e.error)
        with pytest.raises(NotCommitted):
            await run_part(tr, conflicts)
        return out

    value, refusal = await transact(engine, body)
    assert value == 7 and isinstance(refusal, mail.QuotaExceeded)
    assert await read_key(engine, S.pack(("part",))) == b"1"
