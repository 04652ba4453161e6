"""The store contract, on every engine: atomic operations."""

from __future__ import annotations

import asyncio
import uuid


from fdb_layers import keys
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.faults import FaultyEngine
from fdb_layers.engine.run import transact
from tests.fdb_layers.engine.helpers import S, read_key, write_key


# -- atomic ops -------------------------------------------------------------------

async def test_one_thousand_concurrent_atomic_adds(plain_engine: Engine) -> None:
    key = S.pack(("counter",))

    async def incr(tr: Transaction) -> None:
        tr.add(key, 1)

    await asyncio.gather(*(transact(plain_engine, incr) for _ in range(1000)))
    assert keys.decode_int(await read_key(plain_engine, key)) == 1000


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
    await write_key(plain_engine, names[6], (3).to_bytes(8, "little"))
    await write_key(plain_engine, names[7], (90).to_bytes(8, "little"))

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
           if (v := await read_key(plain_engine, names[i])) is not None}
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
    assert keys.decode_int(await read_key(engine, key)) == 300
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
    assert keys.decode_int(await read_key(plain_engine, S.pack(("max",)))) == 5
    assert keys.decode_int(await read_key(plain_engine, S.pack(("min",)))) == 5
    assert keys.decode_int(await read_key(plain_engine, S.pack(("neg",)))) == -15
    assert await read_key(plain_engine, S.pack(("cac",))) is None
    assert await read_key(plain_engine, S.pack(("cac2",))) == b"stays"


async def test_atomic_add_does_not_conflict(plain_engine: Engine) -> None:
    key = S.pack(("blind",))
    t1 = plain_engine.create_transaction()
    try:
        t1.add(key, 1)
        await write_key(plain_engine, key, keys.encode_int(10))
        await t1.commit()
    finally:
        t1.cancel()
    assert keys.decode_int(await read_key(plain_engine, key)) == 11
