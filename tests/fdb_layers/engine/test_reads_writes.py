"""The store contract, on every engine: reads, writes, read-your-writes, refused writes."""

from __future__ import annotations


import pytest

from fdb_layers.engine import base
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from tests.fdb_layers.engine.helpers import S, read_key, write_key


# -- reads and writes -------------------------------------------------------------

async def test_set_get_clear_and_read_your_writes(engine: Engine) -> None:
    async def body(tr: Transaction) -> tuple[bytes | None, bytes | None]:
        tr.set(S.pack(("a",)), b"1")
        seen = await tr.get(S.pack(("a",)))
        tr.clear(S.pack(("a",)))
        return seen, await tr.get(S.pack(("a",)))

    assert await transact(engine, body) == (b"1", None)
    await write_key(engine, S.pack(("b",)), b"2")
    assert await read_key(engine, S.pack(("b",))) == b"2"
    assert await read_key(engine, S.pack(("missing",))) is None


async def test_get_many_reads_as_get_of_each(engine: Engine) -> None:
    """get_many gives what get of each key gives, in order, missing and repeated keys
    included, the transaction's own writes and clears seen (read-your-writes)."""
    await write_key(engine, S.pack(("m", 1)), b"one")
    await write_key(engine, S.pack(("m", 2)), b"two")
    keys = [S.pack(("m", 2)), S.pack(("m", 9)), S.pack(("m", 1)), S.pack(("m", 2))]

    tr = engine.create_transaction()  # never committed: its writes are its own
    try:
        assert await tr.get_many(keys) == [b"two", None, b"one", b"two"]
        assert await tr.get_many([]) == []
        tr.set(S.pack(("m", 9)), b"nine")
        tr.clear(S.pack(("m", 1)))
        assert await tr.get_many(keys) == [b"two", b"nine", None, b"two"]
        assert await tr.get_many(keys, snapshot=True) == [b"two", b"nine", None, b"two"]
        with pytest.raises(base.KeyOutsideLegalRange):
            await tr.get_many([S.pack(("m", 1)), b"\xff/system"])
    finally:
        tr.cancel()


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
    await write_key(engine, S.pack(("inv",)), b"x")
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
    assert await read_key(plain_engine, S.pack(("before",))) is None
    assert await read_key(plain_engine, S.pack(("after",))) is None


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
    assert await read_key(plain_engine, S.pack(("long-ok",))) == b"1"


async def test_snapshot_isolation_reads_ignore_later_commits(plain_engine: Engine) -> None:
    key = S.pack(("iso",))
    await write_key(plain_engine, key, b"before")
    t1 = plain_engine.create_transaction()
    try:
        assert await t1.get(key) == b"before"
        await write_key(plain_engine, key, b"after")
        assert await t1.get(key) == b"before"  # same snapshot
    finally:
        t1.cancel()
    assert await read_key(plain_engine, key) == b"after"


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
