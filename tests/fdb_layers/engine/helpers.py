"""Helpers of the engine tests: a subspace of their own, one-key reads and writes."""

from __future__ import annotations

from fdb_layers import keys
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact

S = keys.Subspace(("test",))


async def read_key(engine: Engine, key: bytes) -> bytes | None:
    """``key``'s value, in a transaction of its own."""
    async def body(tr: Transaction) -> bytes | None:
        return await tr.get(key)

    return await transact(engine, body)


async def write_key(engine: Engine, key: bytes, value: bytes) -> None:
    """Set ``key`` to ``value``, in a transaction of its own."""
    async def body(tr: Transaction) -> None:
        tr.set(key, value)

    await transact(engine, body)
