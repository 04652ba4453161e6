"""The store contract, on every engine: versionstamped keys and values."""

from __future__ import annotations


import pytest

from fdb_layers import keys
from fdb_layers.engine import base
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from tests.fdb_layers.engine.helpers import S, read_key, write_key


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
    assert await read_key(plain_engine, S.pack(("vsv",))) == stamp + b"tail"


async def test_reading_a_versionstamped_value_is_accessed_unreadable(plain_engine: Engine) -> None:
    """FoundationDB: a key written with set_versionstamped_value cannot be read
    in the same transaction (1036 accessed_unreadable), snapshot or not, alone or
    in a range, even after a plain write of it in the same transaction (as FoundationDB
    7.3 does); other keys read as ever; a commit applies the writes in order."""
    sub = S["vsv-unread"]
    key, other = sub.pack(("k",)), sub.pack(("other",))
    await write_key(plain_engine, key, b"stored")
    await write_key(plain_engine, other, b"o")
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
    assert await read_key(plain_engine, key) == b"plain"  # the writes apply in order


async def test_reading_where_a_versionstamped_key_may_land_is_accessed_unreadable(
        plain_engine: Engine) -> None:
    """FoundationDB: set_versionstamped_key makes every key its stamp could give
    unreadable in the same transaction; keys outside that range read as ever."""
    log = S["vsk-unread"]
    before = log.pack(("before",))  # a string sorts before every versionstamp
    await write_key(plain_engine, before, b"b")
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
