"""The store contract, on every available engine (see conftest.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fdb_layers import keys
from fdb_layers.engine import base
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.faults import FaultyEngine
from fdb_layers.engine.run import transact
from fdb_layers.engine.sqlite import SqliteEngine
from fdb_layers.layout import check_layouts, get_layouts
from tests.support import disk
from tests.support.disk import TinyDisk

S = keys.Subspace(("test",))
tiny_disk = disk.tiny_disk  # a small filesystem to fill (a fixture)


async def _get(engine: Engine, key: bytes) -> bytes | None:
    async def body(tr: Transaction) -> bytes | None:
        return await tr.get(key)

    return await transact(engine, body)


async def _set(engine: Engine, key: bytes, value: bytes) -> None:
    async def body(tr: Transaction) -> None:
        tr.set(key, value)

    await transact(engine, body)


# -- keys -----------------------------------------------------------------------

tuple_elements = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=8),
    st.binary(max_size=8),
)


@given(st.lists(st.tuples(tuple_elements, tuple_elements), min_size=2, max_size=10))
def test_tuple_keys_order_like_their_tuples_within_one_type(
    pairs: list[tuple[object, object]],
) -> None:
    first = pairs[0]
    typed = [p for p in pairs if type(p[0]) is type(first[0]) and type(p[1]) is type(first[1])]
    packed = sorted(typed, key=lambda t: keys.pack(t))
    assert [keys.unpack(keys.pack(t)) for t in packed] == sorted(typed)  # type: ignore[type-var]


def test_tuple_ints_sort_numerically() -> None:
    numbers = [-(2**40), -300, -1, 0, 1, 255, 256, 70000, 2**40]
    assert sorted(numbers, key=lambda n: keys.pack((n,))) == numbers


def test_subspace_range_holds_its_keys_and_nothing_else() -> None:
    sub = S["box"]
    begin, end = sub.range()
    assert begin <= sub.pack((1,)) < end
    assert begin <= sub.pack(("z", b"\xff" * 3)) < end
    assert not begin <= S["boy"].pack((1,)) < end
    assert sub.unpack(sub.pack((5, "x"))) == (5, "x")


# -- reads and writes -------------------------------------------------------------

async def test_set_get_clear_and_read_your_writes(engine: Engine) -> None:
    async def body(tr: Transaction) -> tuple[bytes | None, bytes | None]:
        tr.set(S.pack(("a",)), b"1")
        seen = await tr.get(S.pack(("a",)))
        tr.clear(S.pack(("a",)))
        return seen, await tr.get(S.pack(("a",)))

    assert await transact(engine, body) == (b"1", None)
    await _set(engine, S.pack(("b",)), b"2")
    assert await _get(engine, S.pack(("b",))) == b"2"
    assert await _get(engine, S.pack(("missing",))) is None


async def test_get_range_limit_reverse_and_local_writes(engine: Engine) -> None:
    async def fill(tr: Transaction) -> None:
        for i in range(10):
            tr.set(S.pack(("r", i)), str(i).encode())

    await transact(engine, fill)
    begin, end = S["r"].range()

    async def read(tr: Transaction) -> dict[str, list[bytes]]:
        out = {
            "all": [kv.value for kv in await tr.get_range(begin, end)],
            "first3": [kv.value for kv in await tr.get_range(begin, end, limit=3)],
            "last3": [kv.value for kv in await tr.get_range(begin, end, limit=3, reverse=True)],
        }
        tr.clear_range(S.pack(("r", 2)), S.pack(("r", 5)))
        tr.set(S.pack(("r", 3)), b"new")
        tr.add(S.pack(("r", 7)), 0)
        out["merged"] = [kv.value for kv in await tr.get_range(begin, end)]
        out["merged_rev2"] = [kv.value for kv in await tr.get_range(begin, end, limit=2,
                                                                      reverse=True)]
        return out

    got = await transact(engine, read)
    assert got["all"] == [str(i).encode() for i in range(10)]
    assert got["first3"] == [b"0", b"1", b"2"]
    assert got["last3"] == [b"9", b"8", b"7"]
    # the ADD of 0 on a one-byte value truncates it to the operand's 8 bytes
    seven = (ord("7")).to_bytes(8, "little")
    assert got["merged"] == [b"0", b"1", b"new", b"5", b"6", seven, b"8", b"9"]
    assert got["merged_rev2"] == [b"9", b"8"]


async def test_inverted_range_reads_nothing_and_system_keys_are_refused(engine: Engine) -> None:
    """As FoundationDB: a range read with begin after end is empty; a read of a
    system key (0xFF...) raises at once."""
    await _set(engine, S.pack(("inv",)), b"x")
    tr = engine.create_transaction()
    try:
        assert await tr.get_range(S.pack(("z",)), S.pack(("a",))) == []
        with pytest.raises(base.KeyOutsideLegalRange):
            await tr.get(b"\xff/system")
        with pytest.raises(base.KeyOutsideLegalRange):
            await tr.get_range(b"\xff", b"\xff\xff")
    finally:
        tr.cancel()


# FoundationDB does not refuse a bad write at the call: the transaction keeps the
# error (with FoundationDB's code), every later read raises it, and so does the
# commit; nothing of the transaction is written.  Both engines keep that.
_BAD_WRITES = {
    "key_too_large": (base.KeyTooLarge,
                      lambda tr: tr.set(b"k" * (base.MAX_KEY_SIZE + 1), b"x")),
    "value_too_large": (base.ValueTooLarge,
                        lambda tr: tr.set(S.pack(("v",)), b"x" * (base.MAX_VALUE_SIZE + 1))),
    "atomic_key_too_large": (base.KeyTooLarge,
                             lambda tr: tr.add(b"k" * (base.MAX_KEY_SIZE + 1), 1)),
    "inverted_clear_range": (base.InvertedRange,
                             lambda tr: tr.clear_range(S.pack(("z",)), S.pack(("a",)))),
    "system_key": (base.KeyOutsideLegalRange, lambda tr: tr.set(b"\xff/system", b"x")),
    "versionstamp_offset": (base.InvalidOperation,
                            lambda tr: tr.set_versionstamped_key(b"abc" + bytes(4), b"v")),
}


@pytest.mark.parametrize("bad", sorted(_BAD_WRITES))
async def test_a_refused_write_fails_later_reads_and_the_commit(
    plain_engine: Engine, bad: str
) -> None:
    error, write = _BAD_WRITES[bad]
    tr = plain_engine.create_transaction()
    try:
        tr.set(S.pack(("before",)), b"1")
        write(tr)  # does not raise here
        tr.set(S.pack(("after",)), b"1")  # nor do later writes
        with pytest.raises(error):
            await tr.get(S.pack(("before",)))
        with pytest.raises(error):
            await tr.get_range(*S.range())
        with pytest.raises(error):
            await tr.commit()
    finally:
        tr.cancel()
    assert await _get(plain_engine, S.pack(("before",))) is None
    assert await _get(plain_engine, S.pack(("after",))) is None


async def test_a_refused_write_is_not_retried(engine: Engine) -> None:
    runs = 0

    async def body(tr: Transaction) -> None:
        nonlocal runs
        runs += 1
        tr.set(b"k" * (base.MAX_KEY_SIZE + 1), b"x")

    with pytest.raises(base.KeyTooLarge):
        await transact(engine, body)
    assert runs == 1


async def test_keys_longer_than_the_limit_do_not_exist(plain_engine: Engine) -> None:
    """Reading or clearing a key over 10,000 bytes is no error: there is none."""
    tr = plain_engine.create_transaction()
    try:
        assert await tr.get(b"k" * (base.MAX_KEY_SIZE + 1)) is None
        tr.clear(b"k" * (base.MAX_KEY_SIZE + 1))
        tr.clear_range(S.pack(("a",)), b"k" * (base.MAX_KEY_SIZE + 5))
        tr.set(S.pack(("long-ok",)), b"1")
        await tr.commit()
    finally:
        tr.cancel()
    assert await _get(plain_engine, S.pack(("long-ok",))) == b"1"


async def test_snapshot_isolation_reads_ignore_later_commits(plain_engine: Engine) -> None:
    key = S.pack(("iso",))
    await _set(plain_engine, key, b"before")
    t1 = plain_engine.create_transaction()
    try:
        assert await t1.get(key) == b"before"
        await _set(plain_engine, key, b"after")
        assert await t1.get(key) == b"before"  # same snapshot
    finally:
        t1.cancel()
    assert await _get(plain_engine, key) == b"after"


# -- conflicts --------------------------------------------------------------------

async def test_conflicting_transaction_fails_then_retry_sees_other_write(
    plain_engine: Engine,
) -> None:
    key = S.pack(("conflict",))
    await _set(plain_engine, key, b"0")
    t1 = plain_engine.create_transaction()
    try:
        seen = await t1.get(key)
        await _set(plain_engine, key, b"other")
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
    await _set(plain_engine, key, b"fast")
    release.set()
    await task
    assert attempts[0] == b"other"
    assert attempts[-1] == b"fast"  # the retry saw the other transaction's write
    assert await _get(plain_engine, key) == b"fast+slow"


async def test_snapshot_reads_do_not_conflict(plain_engine: Engine) -> None:
    key = S.pack(("snap",))
    await _set(plain_engine, key, b"0")
    t1 = plain_engine.create_transaction()
    try:
        await t1.get(key, snapshot=True)
        await _set(plain_engine, key, b"1")
        t1.set(S.pack(("snap-out",)), b"x")
        await t1.commit()
    finally:
        t1.cancel()


async def test_range_read_conflicts_with_insert_inside_range(plain_engine: Engine) -> None:
    begin, end = S["phantom"].range()
    t1 = plain_engine.create_transaction()
    try:
        assert await t1.get_range(begin, end) == []
        await _set(plain_engine, S["phantom"].pack((5,)), b"x")
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
    assert await _get(engine, key) == b"200"


async def test_reads_inside_own_clear_range_add_no_read_conflict(plain_engine: Engine) -> None:
    """A key or range this transaction cleared is answered from its own writes:
    FoundationDB adds no read conflict for it, so another transaction's write
    there does not fail this one (its clear simply comes later)."""
    begin, end = S["own-clear"].range()
    inside = S["own-clear"].pack((5,))
    await _set(plain_engine, inside, b"old")
    t1 = plain_engine.create_transaction()
    try:
        t1.clear_range(begin, end)
        assert await t1.get(inside) is None
        assert await t1.get_range(begin, end) == []
        await _set(plain_engine, inside, b"new")
        t1.set(S.pack(("own-clear-out",)), b"x")
        await t1.commit()
    finally:
        t1.cancel()
    assert await _get(plain_engine, inside) is None  # t1's clear committed after the set


async def test_range_read_conflicts_outside_own_clear_range(plain_engine: Engine) -> None:
    """Only the cleared part of a range read is left out of its read conflicts."""
    sub = S["part-clear"]
    t1 = plain_engine.create_transaction()
    try:
        t1.clear_range(sub.pack((0,)), sub.pack((5,)))
        assert await t1.get_range(*sub.range()) == []
        await _set(plain_engine, sub.pack((7,)), b"x")
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
        await _set(plain_engine, key, b"1")
        t1.set(S.pack(("rck-out",)), b"1")
        await t1.commit()
    finally:
        t1.cancel()
    t2 = plain_engine.create_transaction()
    try:
        await t2.get_read_version()
        t2.add_read_conflict_key(key)
        await _set(plain_engine, key, b"2")
        t2.set(S.pack(("rck-out",)), b"2")
        with pytest.raises(base.NotCommitted):
            await t2.commit()
    finally:
        t2.cancel()


# -- atomic ops -------------------------------------------------------------------

async def test_one_thousand_concurrent_atomic_adds(plain_engine: Engine) -> None:
    key = S.pack(("counter",))

    async def incr(tr: Transaction) -> None:
        tr.add(key, 1)

    await asyncio.gather(*(transact(plain_engine, incr) for _ in range(1000)))
    assert keys.decode_int(await _get(plain_engine, key)) == 1000


async def test_concurrent_blind_writes_apply_in_commit_order(plain_engine: Engine) -> None:
    """Transactions that commit together (the sqlite engine writes them in one
    batch) each apply, in commit order, on top of the ones before: sets, clears,
    atomic ops on the same keys, range clears between them."""
    import random

    rng = random.Random(11)
    names = [S.pack(("blind-mix", i)) for i in range(8)]
    # keys 0-5 see every kind of write; 6 and 7 only atomic ops, on a stored base
    plans = [[(rng.choice(["set", "add", "max", "clear", "range"]), rng.randrange(6),
               rng.randrange(1, 50)) for _ in range(rng.randrange(1, 5))]
             + [(rng.choice(["add", "max"]), rng.randrange(6, 8), rng.randrange(1, 200))]
             for _ in range(80)]
    await _set(plain_engine, names[6], (3).to_bytes(8, "little"))
    await _set(plain_engine, names[7], (90).to_bytes(8, "little"))

    async def run(plan: list[tuple[str, int, int]]) -> bytes:
        tr = plain_engine.create_transaction()
        try:
            for op, i, n in plan:
                if op == "set":
                    tr.set(names[i], n.to_bytes(8, "little"))
                elif op == "add":
                    tr.add(names[i], n)
                elif op == "max":
                    tr.max(names[i], n)
                elif op == "clear":
                    tr.clear(names[i])
                else:
                    tr.clear_range(names[i], S.pack(("blind-mix", i + 2)))
            stamp = tr.get_versionstamp()
            await tr.commit()
            return await stamp
        finally:
            tr.cancel()

    stamps = await asyncio.gather(*(run(p) for p in plans))
    model: dict[int, int] = {6: 3, 7: 90}
    for _, plan in sorted(zip(stamps, plans, strict=True)):
        for op, i, n in plan:
            if op == "set":
                model[i] = n
            elif op == "add":
                model[i] = model.get(i, 0) + n
            elif op == "max":
                model[i] = max(model.get(i, 0), n)
            elif op == "clear":
                model.pop(i, None)
            else:
                for j in range(i, i + 2):
                    model.pop(j, None)
    got = {i: keys.decode_int(v) for i in range(8)
           if (v := await _get(plain_engine, names[i])) is not None}
    assert got == model
    assert len(set(stamps)) == len(plans)


async def test_counter_with_marker_is_exact_under_fault_injection(engine: Engine) -> None:
    """The idempotent pattern layers use: the caller's id marks the work as done."""
    key = S.pack(("exact",))

    async def incr(tr: Transaction, op_id: str) -> None:
        marker = S.pack(("exact-op", op_id))
        if await tr.get(marker) is not None:
            return
        tr.set(marker, b"")
        tr.add(key, 1)

    ids = [uuid.uuid4().hex for _ in range(300)]
    await asyncio.gather(*(transact(engine, incr, i) for i in ids))
    assert keys.decode_int(await _get(engine, key)) == 300
    if isinstance(engine, FaultyEngine):
        assert engine.injected_unknown_result > 0 and engine.injected_not_committed > 0


async def test_atomic_max_min_add_negative_compare_and_clear(plain_engine: Engine) -> None:
    async def body(tr: Transaction) -> None:
        tr.max(S.pack(("max",)), 5)
        tr.max(S.pack(("max",)), 3)
        tr.min(S.pack(("min",)), 5)
        tr.min(S.pack(("min",)), 9)
        tr.add(S.pack(("neg",)), 10)
        tr.add(S.pack(("neg",)), -25)
        tr.set(S.pack(("cac",)), b"gone")
        tr.set(S.pack(("cac2",)), b"stays")

    await transact(plain_engine, body)

    async def body2(tr: Transaction) -> None:
        tr.compare_and_clear(S.pack(("cac",)), b"gone")
        tr.compare_and_clear(S.pack(("cac2",)), b"other")

    await transact(plain_engine, body2)
    assert keys.decode_int(await _get(plain_engine, S.pack(("max",)))) == 5
    assert keys.decode_int(await _get(plain_engine, S.pack(("min",)))) == 5
    assert keys.decode_int(await _get(plain_engine, S.pack(("neg",)))) == -15
    assert await _get(plain_engine, S.pack(("cac",))) is None
    assert await _get(plain_engine, S.pack(("cac2",))) == b"stays"


async def test_atomic_add_does_not_conflict(plain_engine: Engine) -> None:
    key = S.pack(("blind",))
    t1 = plain_engine.create_transaction()
    try:
        t1.add(key, 1)
        await _set(plain_engine, key, keys.encode_int(10))
        await t1.commit()
    finally:
        t1.cancel()
    assert keys.decode_int(await _get(plain_engine, key)) == 11


# -- versionstamps ----------------------------------------------------------------

async def test_versionstamped_keys_sort_in_commit_order(engine: Engine) -> None:
    log = S["log"]

    async def append(tr: Transaction, i: int) -> None:
        marker = S.pack(("log-done", i))
        if await tr.get(marker) is not None:
            return
        tr.set(marker, b"")
        tr.set_versionstamped_key(log.pack_with_versionstamp((keys.Versionstamp(),)),
                                  str(i).encode())

    for i in range(20):
        await transact(engine, append, i)
    begin, end = log.range()

    async def read(tr: Transaction) -> list[base.KeyValue]:
        return await tr.get_range(begin, end)

    rows = await transact(engine, read)
    assert [kv.value for kv in rows] == [str(i).encode() for i in range(20)]
    stamps = [log.unpack(kv.key)[0] for kv in rows]
    assert all(s.is_complete() for s in stamps)


async def test_versionstamp_is_reported_after_commit(plain_engine: Engine) -> None:
    tr = plain_engine.create_transaction()
    try:
        tr.set_versionstamped_value(S.pack(("vsv",)), b"\x00" * 10 + b"tail" +
                                    (0).to_bytes(4, "little"))
        stamp_future = tr.get_versionstamp()
        await tr.commit()
        stamp = await stamp_future
    finally:
        tr.cancel()
    assert len(stamp) == 10
    assert await _get(plain_engine, S.pack(("vsv",))) == stamp + b"tail"


async def test_reading_a_versionstamped_value_is_accessed_unreadable(plain_engine: Engine) -> None:
    """FoundationDB: a key written with set_versionstamped_value cannot be read
    in the same transaction (1036 accessed_unreadable), snapshot or not, alone or
    in a range, even after a plain write of it in the same transaction (as FoundationDB
    7.3 does); other keys read as ever; a commit applies the writes in order."""
    sub = S["vsv-unread"]
    key, other = sub.pack(("k",)), sub.pack(("other",))
    await _set(plain_engine, key, b"stored")
    await _set(plain_engine, other, b"o")
    tr = plain_engine.create_transaction()
    try:
        tr.set_versionstamped_value(key, b"\x00" * 10 + (0).to_bytes(4, "little"))
        with pytest.raises(base.AccessedUnreadable) as raised:
            await tr.get(key)
        assert raised.value.code == 1036
        with pytest.raises(base.AccessedUnreadable):
            await tr.get(key, snapshot=True)
        with pytest.raises(base.AccessedUnreadable):
            await tr.get_range(*sub.range())
        assert await tr.get(other) == b"o"
        assert await tr.get_range(other, sub.range()[1]) == [base.KeyValue(other, b"o")]
        tr.set(key, b"plain")  # a later plain write leaves the key unreadable
        with pytest.raises(base.AccessedUnreadable):
            await tr.get(key)
    finally:
        tr.cancel()  # (FoundationDB then fails the commit too: not asserted here)

    async def write(tr: Transaction) -> None:
        tr.set_versionstamped_value(key, b"\x00" * 10 + (0).to_bytes(4, "little"))
        tr.set(key, b"plain")

    await transact(plain_engine, write)
    assert await _get(plain_engine, key) == b"plain"  # the writes apply in order


async def test_reading_where_a_versionstamped_key_may_land_is_accessed_unreadable(
        plain_engine: Engine) -> None:
    """FoundationDB: set_versionstamped_key makes every key its stamp could give
    unreadable in the same transaction; keys outside that range read as ever."""
    log = S["vsk-unread"]
    before = log.pack(("before",))  # a string sorts before every versionstamp
    await _set(plain_engine, before, b"b")
    tr = plain_engine.create_transaction()
    try:
        tr.set_versionstamped_key(log.pack_with_versionstamp((keys.Versionstamp(),)), b"v")
        with pytest.raises(base.AccessedUnreadable):
            await tr.get_range(*log.range())
        with pytest.raises(base.AccessedUnreadable):
            await tr.get_range(*log.range(), reverse=True)
        assert await tr.get(before) == b"b"
        assert await tr.get_range(log.range()[0], log.pack(("before", 1))) == [
            base.KeyValue(before, b"b")]
    finally:
        tr.cancel()  # (FoundationDB fails the commit of a transaction that read so)

    async def write(tr: Transaction) -> None:
        tr.set_versionstamped_key(log.pack_with_versionstamp((keys.Versionstamp(),)), b"v")

    await transact(plain_engine, write)

    async def read(tr: Transaction) -> list[base.KeyValue]:
        return await tr.get_range(*log.range())

    assert [kv.value for kv in await transact(plain_engine, read)] == [b"b", b"v"]


# -- limits -----------------------------------------------------------------------

async def test_key_and_value_limits(plain_engine: Engine) -> None:
    """Keys of 10,000 bytes and values of 100,000 are fine; one byte more is
    refused (see test_a_refused_write_fails_later_reads_and_the_commit)."""
    async def at_limit(tr: Transaction) -> None:
        tr.set(b"k" * base.MAX_KEY_SIZE, b"ok")
        tr.set(b"v", b"x" * base.MAX_VALUE_SIZE)

    await transact(plain_engine, at_limit)
    assert await _get(plain_engine, b"k" * base.MAX_KEY_SIZE) == b"ok"
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
    assert await _get(plain_engine, b"v") == b"x" * base.MAX_VALUE_SIZE


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
    assert await _get(plain_engine, S.pack(("old",))) is None


async def test_non_retryable_error_in_body_writes_nothing(engine: Engine) -> None:
    async def body(tr: Transaction) -> None:
        tr.set(S.pack(("half",)), b"x")
        raise RuntimeError("domain failure")

    with pytest.raises(RuntimeError):
        await transact(engine, body)
    assert await _get(engine, S.pack(("half",))) is None


# -- watches ----------------------------------------------------------------------

async def test_watch_fires_when_the_key_changes(engine: Engine) -> None:
    key = S.pack(("watched",))
    await _set(engine, key, b"1")
    watch = await engine.watch(key)
    waiter = asyncio.create_task(watch.wait())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await _set(engine, key, b"2")
    await asyncio.wait_for(waiter, 5)


# -- layout versions ----------------------------------------------------------------

async def test_layout_versions_refuse_newer_major(engine: Engine) -> None:
    await transact(engine, check_layouts, {"mailbox": (1, 2)})
    await transact(engine, check_layouts, {"mailbox": (1, 3)})
    assert (await transact(engine, get_layouts))["mailbox"] == (1, 3)
    await transact(engine, check_layouts, {"mailbox": (1, 1)})  # older minor still reads it
    with pytest.raises(base.LayoutVersionError, match="newer fdbmail"):
        await transact(engine, check_layouts, {"mailbox": (0, 9)})


# -- durability (sqlite: a killed process keeps what it committed) ---------------------

_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from fdb_layers.engine.sqlite import SqliteEngine
    from fdb_layers.engine.run import transact

    async def main():
        engine = await SqliteEngine.open(sys.argv[1])
        for i in range(50):
            async def body(tr, i=i):
                tr.set(b"durable/%03d" % i, b"v%d" % i)
            await transact(engine, body)
            print(i, flush=True)  # acknowledged: committed and fsynced
        await asyncio.sleep(3600)  # killed here, without closing anything

    asyncio.run(main())
    """
)


async def test_committed_data_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "durable.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    acknowledged = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged == 49:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert acknowledged == 49
    engine = await SqliteEngine.open(path)
    try:
        async def read(tr: Transaction) -> list[base.KeyValue]:
            return await tr.get_range(b"durable/", b"durable0")

        rows = await transact(engine, read)
    finally:
        await engine.close()
    assert [kv.value for kv in rows] == [b"v%d" % i for i in range(50)]


async def test_second_process_commits_are_seen_and_conflict(tmp_path: Path) -> None:
    """Two engines on one file (two processes in production) stay serializable."""
    path = tmp_path / "shared.sqlite3"
    a = await SqliteEngine.open(path)
    b = await SqliteEngine.open(path)
    try:
        key = b"shared/k"
        await _set(a, key, b"a")
        t = a.create_transaction()
        try:
            await t.get(key)
            await _set(b, key, b"b")
            t.set(key, b"a2")
            with pytest.raises(base.NotCommitted):
                await t.commit()
        finally:
            t.cancel()
        assert await _get(a, key) == b"b"
    finally:
        await a.close()
        await b.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "clear", "clear_range", "add", "max", "min",
                                           "compare_and_clear"]),
                          st.integers(0, 15), st.integers(0, 15)), max_size=25))
def test_local_writes_read_like_committed_writes(ops: list[tuple[str, int, int]]) -> None:
    """Reads inside a transaction see its own writes exactly as a later
    transaction sees them once committed (read-your-writes is exact)."""

    async def run() -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            engine = await SqliteEngine.open(f"{d}/s.sqlite3")
            try:
                async def seed(tr: Transaction) -> None:
                    for i in range(0, 16, 3):
                        tr.set(S.pack(("p", i)), b"seed%d" % i)

                await transact(engine, seed)
                begin, end = S["p"].range()

                async def body(tr: Transaction) -> list[base.KeyValue]:
                    for op, x, y in ops:
                        k = S.pack(("p", x))
                        if op == "set":
                            tr.set(k, b"v%d" % y)
                        elif op == "clear":
                            tr.clear(k)
                        elif op == "clear_range":
                            lo, hi = sorted((x, y))
                            tr.clear_range(S.pack(("p", lo)), S.pack(("p", hi)))
                        elif op == "max":
                            tr.max(k, y)
                        elif op == "min":
                            tr.min(k, y)
                        elif op == "compare_and_clear":
                            tr.compare_and_clear(k, b"v%d" % y)
                        else:
                            tr.add(k, y)
                    inside = await tr.get_range(begin, end)
                    inside_rev = await tr.get_range(begin, end, reverse=True, limit=4)
                    assert inside_rev == list(reversed(inside))[:4]
                    for kv in inside:
                        assert await tr.get(kv.key) == kv.value
                    return inside

                inside = await transact(engine, body)

                async def after(tr: Transaction) -> list[base.KeyValue]:
                    return await tr.get_range(begin, end)

                assert await transact(engine, after) == inside
            finally:
                await engine.close()

    asyncio.run(run())


async def test_wal_is_truncated_under_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The WAL does not grow without end while transactions keep running."""
    import fdb_layers.engine.sqlite.writer as sqlite_writer

    monkeypatch.setattr(sqlite_writer, "_WAL_CHECK_EVERY", 10)
    monkeypatch.setattr(sqlite_writer, "_WAL_TRUNCATE_BYTES", 256 * 1024)
    engine = await SqliteEngine.open(tmp_path / "wal.sqlite3")
    try:
        async def write(tr: Transaction, i: int) -> None:
            await tr.get(b"wal/%d" % (i - 1))
            tr.set(b"wal/%d" % i, b"x" * 20_000)

        sizes = []
        for i in range(300):
            await transact(engine, write, i)
            sizes.append(os.path.getsize(tmp_path / "wal.sqlite3-wal"))
    finally:
        await engine.close()
    assert max(sizes) > 256 * 1024  # it did grow past the threshold ...
    assert any(b < a for a, b in zip(sizes, sizes[1:], strict=False))  # ... and was truncated
    assert max(sizes) < 300 * 20_000


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


async def test_failed_sqlite_commit_is_reported_as_unknown_result(tmp_path: Path) -> None:
    """An I/O error at COMMIT may or may not have made the batch durable: the
    caller gets commit_unknown_result (retryable, so layer writes must be
    idempotent), and a reader older than the uncertain commit then conflicts."""
    import sqlite3

    engine = await SqliteEngine.open(tmp_path / "io.sqlite3")
    assert engine._writer is not None
    real = engine._writer.conn
    assert real is not None

    class CommitFails:
        """The writer connection, except that COMMIT reports an I/O error after committing."""

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            cursor = real.execute(sql, *args)
            if sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return cursor

    try:
        await _set(engine, b"io/seen", b"0")
        reader = engine.create_transaction()
        await reader.get(b"io/seen")
        engine._writer.conn = CommitFails()  # type: ignore[assignment]
        tr = engine.create_transaction()
        tr.set(b"io/seen", b"1")
        with pytest.raises(base.CommitUnknownResult):
            await tr.commit()
        tr.cancel()
        engine._writer.conn = real
        reader.set(b"io/out", b"x")
        with pytest.raises(base.NotCommitted):  # it did commit: the older reader conflicts
            await reader.commit()
        reader.cancel()
        assert await _get(engine, b"io/seen") == b"1"
    finally:
        engine._writer.conn = real
        await engine.close()


async def test_large_transaction_of_mixed_mutations_commits_exactly(engine: Engine) -> None:
    """More keys than one multi-row statement holds, atomic ops on stored and on
    fresh keys, clears and a range clear in between: the committed result is what
    the transaction read of its own writes."""
    n = 1000

    async def seed(tr: Transaction) -> None:
        for i in range(0, n, 2):
            tr.set(S.pack(("big", i)), (i).to_bytes(8, "little"))

    await transact(engine, seed)

    async def body(tr: Transaction) -> list[base.KeyValue]:
        for i in range(n):
            k = S.pack(("big", i))
            if i % 5 == 0:
                tr.add(k, 7)                  # on a stored value or on nothing
            elif i % 5 == 1:
                tr.set(k, b"x")
                tr.add(k, 1)                  # on a value of this transaction
            elif i % 5 == 2:
                tr.clear(k)
            elif i % 5 == 3:
                tr.max(k, 500)
                tr.min(k, 700)
        tr.clear_range(S.pack(("big", 100)), S.pack(("big", 200)))
        for i in range(150, 160):
            tr.add(S.pack(("big", i)), 3)     # after the range clear: on nothing
        return await tr.get_range(*S["big"].range())

    expected = await transact(engine, body)
    assert len(expected) > 500

    async def after(tr: Transaction) -> list[base.KeyValue]:
        return await tr.get_range(*S["big"].range())

    assert await transact(engine, after) == expected


async def test_failed_wal_checkpoint_does_not_fail_a_durable_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpoint after COMMIT runs on a batch that is already durable: if it
    raises, the commits are still acknowledged, and the next one commits too."""
    import sqlite3

    import fdb_layers.engine.sqlite.writer as sqlite_writer

    monkeypatch.setattr(sqlite_writer, "_WAL_CHECK_EVERY", 1)
    monkeypatch.setattr(sqlite_writer, "_WAL_TRUNCATE_BYTES", 0)
    engine = await SqliteEngine.open(tmp_path / "ckpt.sqlite3")
    assert engine._writer is not None
    real = engine._writer.conn
    assert real is not None

    class CheckpointFails:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if "wal_checkpoint" in sql:
                raise sqlite3.OperationalError("disk I/O error")
            return real.execute(sql, *args)

    engine._writer.conn = CheckpointFails()  # type: ignore[assignment]
    try:
        await _set(engine, b"ckpt/a", b"1")
        await _set(engine, b"ckpt/b", b"2")
        assert await _get(engine, b"ckpt/a") == b"1"
        assert await _get(engine, b"ckpt/b") == b"2"
    finally:
        engine._writer.conn = real
        await engine.close()


@pytest.mark.parametrize("kind", ["sqlite", "sqlite-remote"])
async def test_a_read_version_older_than_the_conflict_history_is_too_old(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the commits after a transaction's read version have left the conflict
    history, its commit fails with transaction_too_old (1007, as FoundationDB's
    resolvers answer), not with a conflict it cannot know of."""
    import fdb_layers.engine.sqlite.writer as sqlite_writer

    from tests.support.engines import make_engine

    monkeypatch.setattr(sqlite_writer, "_HISTORY_SECONDS", 0.2)
    engine = await make_engine(kind, tmp_path)
    try:
        tr = engine.create_transaction()
        await tr.get(S.pack(("hist", "read")))
        await _set(engine, S.pack(("hist", "elsewhere")), b"1")
        await asyncio.sleep(0.3)
        await _set(engine, S.pack(("hist", "later")), b"1")  # prunes the history
        tr.set(S.pack(("hist", "out")), b"x")
        with pytest.raises(base.TransactionTooOld):
            await tr.commit()
        tr.cancel()
    finally:
        await engine.close()


async def test_a_full_disk_fails_commits_fast_and_clears_when_space_returns(
        tiny_disk: TinyDisk, caplog: pytest.LogCaptureFixture) -> None:
    """On a real full filesystem (ENOSPC while the WAL grows) a commit fails at
    once with StoreFull, a temporary store error that the retry loop does not
    retry; it is logged once, not per commit; the engine reports it until a write
    fits again, and commits succeed again once space returns."""
    import logging
    import time

    engine = await SqliteEngine.open(tiny_disk.path / "store.sqlite3")
    try:
        await _set(engine, b"full/before", b"x")
        tiny_disk.fill()
        caplog.set_level(logging.WARNING, logger="fdb_layers.engine.sqlite")

        async def big(tr: Transaction, i: int) -> None:
            tr.set(b"full/%d" % i, b"x" * 50_000)

        started = time.monotonic()
        for i in range(20):
            with pytest.raises(base.StoreFull) as raised:
                await asyncio.wait_for(transact(engine, big, i), 2)
            assert not raised.value.retryable
        assert time.monotonic() - started < 2
        assert len([r for r in caplog.records if "disk full" in r.getMessage()]) == 1
        with pytest.raises(base.StoreFull, match="disk full since"):
            await engine.check_writable()
        assert await _get(engine, b"full/before") == b"x"  # reads go on

        tiny_disk.free()
        await engine.check_writable()
        await transact(engine, big, 99)
        assert await _get(engine, b"full/99") == b"x" * 50_000
    finally:
        await engine.close()


async def test_a_full_database_is_a_store_full_error_through_a_commit_server(
        tmp_path: Path) -> None:
    """SQLite's size limit gives the same SQLITE_FULL: the error reaches a client
    of the commit server as StoreFull too; raising the limit lets commits in."""
    from tests.support.engines import make_engine

    engine = await make_engine("sqlite-remote", tmp_path)
    owner = engine.served[1]  # type: ignore[attr-defined]
    writer = owner._writer.conn
    assert writer is not None
    try:
        await _set(engine, b"cap/a", b"x")
        pages = writer.execute("PRAGMA page_count").fetchone()[0]
        await asyncio.get_running_loop().run_in_executor(
            owner._writer._pool, writer.execute, f"PRAGMA max_page_count={pages}")

        async def big(tr: Transaction) -> None:
            tr.set(b"cap/big", b"x" * 50_000)

        with pytest.raises(base.StoreFull):
            await asyncio.wait_for(transact(engine, big), 2)
        await asyncio.get_running_loop().run_in_executor(
            owner._writer._pool, writer.execute, "PRAGMA max_page_count=1073741823")
        await transact(engine, big)
        assert await _get(engine, b"cap/big") == b"x" * 50_000
    finally:
        await engine.close()
