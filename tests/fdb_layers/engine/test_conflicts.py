"""The store contract, on every engine: serializable transactions and their conflicts."""

from __future__ import annotations

import asyncio

import pytest

from fdb_layers.engine import base
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from tests.fdb_layers.engine.helpers import S, read_key, write_key


# -- conflicts --------------------------------------------------------------------

async def test_conflicting_transaction_fails_then_retry_sees_other_write(
    plain_engine: Engine,
) -> None:
    key = S.pack(("conflict",))
    await write_key(plain_engine, key, b"0")
    t1 = plain_engine.create_transaction()
    try:
        seen = await t1.get(key)
        await write_key(plain_engine, key, b"other")
        t1.set(key, (seen or b"") + b"+t1")
        with pytest.raises(base.NotCommitted):
            await t1.commit()
    finally:
        t1.cancel()

    attempts: list[bytes | None] = []
    release = asyncio.Event()

    async def slow_append(tr: Transaction) -> None:
        value = await tr.get(key)
        attempts.append(value)
        if len(attempts) == 1:
            first_read.set()
            await release.wait()
        tr.set(key, (value or b"") + b"+slow")

    first_read = asyncio.Event()
    task = asyncio.create_task(transact(plain_engine, slow_append))
    await first_read.wait()
    await write_key(plain_engine, key, b"fast")
    release.set()
    await task
    assert attempts[0] == b"other"
    assert attempts[-1] == b"fast"  # the retry saw the other transaction's write
    assert await read_key(plain_engine, key) == b"fast+slow"


@pytest.mark.parametrize("snapshot", [False, True])
async def test_get_many_conflicts_as_get(plain_engine: Engine, snapshot: bool) -> None:
    """Each key get_many reads is in the read conflict set, as get's (not when
    ``snapshot``): another transaction's write to one of them fails the commit."""
    keys = [S.pack(("many", i)) for i in range(3)]
    for key in keys:
        await write_key(plain_engine, key, b"0")
    t1 = plain_engine.create_transaction()
    try:
        assert await t1.get_many(keys, snapshot=snapshot) == [b"0"] * 3
        await write_key(plain_engine, keys[1], b"1")
        t1.set(S.pack(("many-out",)), b"x")
        if snapshot:
            await t1.commit()
        else:
            with pytest.raises(base.NotCommitted):
                await t1.commit()
    finally:
        t1.cancel()


async def test_snapshot_reads_do_not_conflict(plain_engine: Engine) -> None:
    key = S.pack(("snap",))
    await write_key(plain_engine, key, b"0")
    t1 = plain_engine.create_transaction()
    try:
        await t1.get(key, snapshot=True)
        await write_key(plain_engine, key, b"1")
        t1.set(S.pack(("snap-out",)), b"x")
        await t1.commit()
    finally:
        t1.cancel()


async def test_range_read_conflicts_with_insert_inside_range(plain_engine: Engine) -> None:
    begin, end = S["phantom"].range()
    t1 = plain_engine.create_transaction()
    try:
        assert await t1.get_range(begin, end) == []
        await write_key(plain_engine, S["phantom"].pack((5,)), b"x")
        t1.set(S.pack(("count",)), b"0")
        with pytest.raises(base.NotCommitted):
            await t1.commit()
    finally:
        t1.cancel()


async def test_concurrent_read_modify_write_is_serializable(engine: Engine) -> None:
    key = S.pack(("rmw",))

    async def incr(tr: Transaction, n: int) -> None:
        marker = S.pack(("rmw-done", n))
        if await tr.get(marker) is not None:  # idempotent under unknown results
            return
        value = int(await tr.get(key) or b"0")
        tr.set(key, str(value + 1).encode())
        tr.set(marker, b"")

    await asyncio.gather(*(transact(engine, incr, n) for n in range(200)))
    assert await read_key(engine, key) == b"200"


async def test_reads_inside_own_clear_range_add_no_read_conflict(plain_engine: Engine) -> None:
    """A key or range this transaction cleared is answered from its own writes:
    FoundationDB adds no read conflict for it, so another transaction's write
    there does not fail this one (its clear simply comes later)."""
    begin, end = S["own-clear"].range()
    inside = S["own-clear"].pack((5,))
    await write_key(plain_engine, inside, b"old")
    t1 = plain_engine.create_transaction()
    try:
        t1.clear_range(begin, end)
        assert await t1.get(inside) is None
        assert await t1.get_range(begin, end) == []
        await write_key(plain_engine, inside, b"new")
        t1.set(S.pack(("own-clear-out",)), b"x")
        await t1.commit()
    finally:
        t1.cancel()
    assert await read_key(plain_engine, inside) is None  # t1's clear committed after the set


async def test_range_read_conflicts_outside_own_clear_range(plain_engine: Engine) -> None:
    """Only the cleared part of a range read is left out of its read conflicts."""
    sub = S["part-clear"]
    t1 = plain_engine.create_transaction()
    try:
        t1.clear_range(sub.pack((0,)), sub.pack((5,)))
        assert await t1.get_range(*sub.range()) == []
        await write_key(plain_engine, sub.pack((7,)), b"x")
        t1.set(S.pack(("part-clear-out",)), b"x")
        with pytest.raises(base.NotCommitted):
            await t1.commit()
    finally:
        t1.cancel()


async def test_read_conflict_key_without_reads_is_checked_from_the_commit(
        plain_engine: Engine) -> None:
    """A transaction that never read gets its read version at commit (as
    FoundationDB's does): an explicit read conflict key then conflicts only with
    writes after that; with a read version taken earlier, with writes after it."""
    key = S.pack(("rck",))
    t1 = plain_engine.create_transaction()
    try:
        t1.add_read_conflict_key(key)
        await write_key(plain_engine, key, b"1")
        t1.set(S.pack(("rck-out",)), b"1")
        await t1.commit()
    finally:
        t1.cancel()
    t2 = plain_engine.create_transaction()
    try:
        await t2.get_read_version()
        t2.add_read_conflict_key(key)
        await write_key(plain_engine, key, b"2")
        t2.set(S.pack(("rck-out",)), b"2")
        with pytest.raises(base.NotCommitted):
            await t2.commit()
    finally:
        t2.cancel()


async def test_explicit_conflict_keys(plain_engine: Engine) -> None:
    """add_write_conflict_key makes readers of that key conflict, as a write would."""
    key = S.pack(("explicit",))
    t1 = plain_engine.create_transaction()
    try:
        await t1.get(key)
        t2 = plain_engine.create_transaction()
        try:
            t2.add_write_conflict_key(key)
            t2.set(S.pack(("elsewhere",)), b"x")
            await t2.commit()
        finally:
            t2.cancel()
        t1.set(S.pack(("out",)), b"y")
        with pytest.raises(base.NotCommitted):
            await t1.commit()
    finally:
        t1.cancel()
