"""Bulk operations wait for the store a fixed number of times per batch, whatever the
number of messages in it: on FoundationDB every awaited read is a network round trip,
and an EXPUNGE that awaited seven per message did 320 messages a second (100,000 in
312 s).  Counted here at the layer: a *round* is a read issued while no other read of
the transaction is in flight (reads issued together, get_many or concurrently, are one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from fdb_layers.engine.base import Engine, KeyValue, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.mail import accounts
from fdb_layers.mail.messages import (
    append_email,
    copy_messages,
    expunge_messages,
    move_messages,
    store_keywords,
)

from .fixtures import ACCOUNT, new_email

ENGINE_KINDS = ["sqlite", "foundationdb"]   # no injected retries: one attempt counted


class _Counting:
    """A transaction that counts its rounds of reads and passes everything through."""

    def __init__(self, tr: Transaction) -> None:
        self._tr = tr
        self.rounds = 0
        self._in_flight = 0

    async def _read(self, read: Callable[[], Awaitable[Any]]) -> Any:
        if self._in_flight == 0:
            self.rounds += 1
        self._in_flight += 1
        try:
            await asyncio.sleep(0)   # reads started together are all in flight first
            return await read()
        finally:
            self._in_flight -= 1

    async def get(self, key: bytes, *, snapshot: bool = False) -> bytes | None:
        result: bytes | None = await self._read(lambda: self._tr.get(key, snapshot=snapshot))
        return result

    async def get_many(self, keys: Sequence[bytes], *, snapshot: bool = False
                       ) -> list[bytes | None]:
        result: list[bytes | None] = await self._read(
            lambda: self._tr.get_many(keys, snapshot=snapshot))
        return result

    async def get_range(self, begin: bytes, end: bytes, **kwargs: Any) -> list[KeyValue]:
        result: list[KeyValue] = await self._read(
            lambda: self._tr.get_range(begin, end, **kwargs))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tr, name)


async def _rounds(engine: Engine, fn: Callable[..., Awaitable[Any]], *args: Any,
                  **kwargs: Any) -> int:
    counted: list[int] = []

    async def body(tr: Transaction) -> None:
        counting = _Counting(tr)
        await fn(counting, *args, **kwargs)
        counted.append(counting.rounds)

    await transact(engine, body)
    return counted[-1]


async def _fill(engine: Engine, n: int) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for i in range(n):
        await transact(engine, append_email, ACCOUNT, "inbox",
                       new_email(i, keywords=("$seen",) if i % 2 else ()), delivery_id=f"d{i}")


async def _each_operation(engine: Engine, n: int) -> dict[str, int]:
    """The rounds of a STORE, COPY, MOVE and EXPUNGE of ``n`` messages each."""
    await _fill(engine, n)
    uids = list(range(1, n + 1))
    out = {
        "store": await _rounds(engine, store_keywords, ACCOUNT, "inbox", uids,
                               add=["$deleted", "$flagged"]),
        "copy": await _rounds(engine, copy_messages, ACCOUNT, "inbox", uids, "archive"),
        "move": await _rounds(engine, move_messages, ACCOUNT, "archive", uids, "trash",
                              op_id="m"),
        # the emails are in Trash too: removed from INBOX, not destroyed
        "expunge": await _rounds(engine, expunge_messages, ACCOUNT, "inbox", op_id="x"),
        # destroyed with their threads and blob references
        "expunge and destroy": await _rounds(engine, expunge_messages, ACCOUNT, "trash",
                                             uids=uids, only_deleted=False, op_id="y"),
    }
    return out


@pytest.mark.parametrize("n", [40])
async def test_bulk_operations_wait_a_fixed_number_of_rounds(engine: Engine, n: int) -> None:
    few = await _each_operation(engine, 5)
    await transact(engine, _clear_all)
    many = await _each_operation(engine, n)
    assert many == few, (few, many)
    assert max(many.values()) <= 20, many


async def _clear_all(tr: Transaction) -> None:
    tr.clear_range(b"", b"\xff")
