"""The store contract, on every engine: FoundationDB's limits and non-retryable errors."""

from __future__ import annotations

import asyncio

import pytest

from fdb_layers.engine import base
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from tests.fdb_layers.engine.helpers import S, read_key


# -- limits -----------------------------------------------------------------------

async def test_key_and_value_limits(plain_engine: Engine) -> None:
    """Keys of 10,000 bytes and values of 100,000 are fine; one byte more is
    refused (see test_a_refused_write_fails_later_reads_and_the_commit)."""
    async def at_limit(tr: Transaction) -> None:
        tr.set(b"k" * base.MAX_KEY_SIZE, b"ok")
        tr.set(b"v", b"x" * base.MAX_VALUE_SIZE)

    await transact(plain_engine, at_limit)
    assert await read_key(plain_engine, b"k" * base.MAX_KEY_SIZE) == b"ok"
    for error, write in (
        (base.KeyTooLarge, lambda tr: tr.set(b"k" * (base.MAX_KEY_SIZE + 1), b"x")),
        (base.ValueTooLarge, lambda tr: tr.set(b"v", b"x" * (base.MAX_VALUE_SIZE + 1))),
    ):
        tr = plain_engine.create_transaction()
        try:
            write(tr)
            with pytest.raises(error):
                await tr.commit()
        finally:
            tr.cancel()
    assert await read_key(plain_engine, b"v") == b"x" * base.MAX_VALUE_SIZE


async def test_transaction_size_limit(engine: Engine) -> None:
    async def too_big(tr: Transaction) -> None:
        for i in range(110):
            tr.set(S.pack(("big", i)), b"x" * 99_000)

    with pytest.raises(base.TransactionTooLarge):
        await transact(engine, too_big)
    begin, end = S["big"].range()

    async def read(tr: Transaction) -> list[base.KeyValue]:
        return await tr.get_range(begin, end)

    assert await transact(engine, read) == []  # nothing of it was written


@pytest.mark.slow
async def test_transaction_older_than_five_seconds_is_too_old(plain_engine: Engine) -> None:
    tr = plain_engine.create_transaction()
    try:
        await tr.get(S.pack(("old",)))
        await asyncio.sleep(base.MAX_TRANSACTION_SECONDS + 0.3)
        tr.set(S.pack(("old",)), b"x")
        with pytest.raises(base.TransactionTooOld):
            await tr.get(S.pack(("old",)))
            await tr.commit()
    finally:
        tr.cancel()
    assert await read_key(plain_engine, S.pack(("old",))) is None


async def test_non_retryable_error_in_body_writes_nothing(engine: Engine) -> None:
    async def body(tr: Transaction) -> None:
        tr.set(S.pack(("half",)), b"x")
        raise RuntimeError("domain failure")

    with pytest.raises(RuntimeError):
        await transact(engine, body)
    assert await read_key(engine, S.pack(("half",))) is None
