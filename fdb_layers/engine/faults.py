"""Fault injection around any engine.

At configurable rates a commit fails with ``not_committed`` (a conflict: nothing
written) or is *applied* and then reported as ``commit_unknown_result``, the two
outcomes FoundationDB clients must survive.  Layer tests run under it to prove
that every write is idempotent.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Sequence

from .base import (
    CommitUnknownResult,
    Engine,
    KeyValue,
    NotCommitted,
    StoreError,
    Transaction,
    Watch,
)


class FaultyEngine:
    def __init__(
        self,
        inner: Engine,
        *,
        not_committed_rate: float = 0.0,
        unknown_result_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= not_committed_rate + unknown_result_rate <= 1.0:
            raise ValueError("fault rates must add up to at most 1")
        self.inner = inner
        self.name = inner.name
        self.not_committed_rate = not_committed_rate
        self.unknown_result_rate = unknown_result_rate
        self.random = random.Random(seed)
        self.injected_not_committed = 0
        self.injected_unknown_result = 0

    def create_transaction(self) -> Transaction:
        return FaultyTransaction(self, self.inner.create_transaction())

    async def watch(self, key: bytes) -> Watch:
        return await self.inner.watch(key)

    async def close(self) -> None:
        await self.inner.close()


class FaultyTransaction:
    def __init__(self, engine: FaultyEngine, inner: Transaction) -> None:
        self._engine = engine
        self._inner = inner

    async def get(self, key: bytes, *, snapshot: bool = False) -> bytes | None:
        return await self._inner.get(key, snapshot=snapshot)

    async def get_many(self, keys: Sequence[bytes], *, snapshot: bool = False
                       ) -> list[bytes | None]:
        return await self._inner.get_many(keys, snapshot=snapshot)

    async def get_range(
        self,
        begin: bytes,
        end: bytes,
        *,
        limit: int = 0,
        reverse: bool = False,
        snapshot: bool = False,
    ) -> list[KeyValue]:
        return await self._inner.get_range(
            begin, end, limit=limit, reverse=reverse, snapshot=snapshot
        )

    def set(self, key: bytes, value: bytes) -> None:
        self._inner.set(key, value)

    def clear(self, key: bytes) -> None:
        self._inner.clear(key)

    def clear_range(self, begin: bytes, end: bytes) -> None:
        self._inner.clear_range(begin, end)

    def add(self, key: bytes, delta: int) -> None:
        self._inner.add(key, delta)

    def max(self, key: bytes, value: int) -> None:
        self._inner.max(key, value)

    def min(self, key: bytes, value: int) -> None:
        self._inner.min(key, value)

    def compare_and_clear(self, key: bytes, value: bytes) -> None:
        self._inner.compare_and_clear(key, value)

    def set_versionstamped_key(self, key: bytes, value: bytes) -> None:
        self._inner.set_versionstamped_key(key, value)

    def set_versionstamped_value(self, key: bytes, value: bytes) -> None:
        self._inner.set_versionstamped_value(key, value)

    def add_read_conflict_key(self, key: bytes) -> None:
        self._inner.add_read_conflict_key(key)

    def add_write_conflict_key(self, key: bytes) -> None:
        self._inner.add_write_conflict_key(key)

    async def get_read_version(self) -> int:
        return await self._inner.get_read_version()

    def get_versionstamp(self) -> Awaitable[bytes]:
        return self._inner.get_versionstamp()

    async def commit(self) -> None:
        e = self._engine
        roll = e.random.random()
        if roll < e.not_committed_rate:
            e.injected_not_committed += 1
            raise NotCommitted("injected fault: not committed")
        await self._inner.commit()
        if roll < e.not_committed_rate + e.unknown_result_rate:
            e.injected_unknown_result += 1
            raise CommitUnknownResult("injected fault: committed, reported unknown")

    async def on_error(self, error: StoreError) -> None:
        await self._inner.on_error(error)

    def reset(self) -> None:
        self._inner.reset()

    def cancel(self) -> None:
        self._inner.cancel()
