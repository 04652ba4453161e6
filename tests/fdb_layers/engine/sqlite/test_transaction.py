"""The embedded engine's transactions: read-your-writes is exact (hypothesis)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from fdb_layers.engine import base
from fdb_layers.engine.base import Transaction
from fdb_layers.engine.run import transact
from fdb_layers.engine.sqlite import SqliteEngine
from tests.fdb_layers.engine.helpers import S


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
