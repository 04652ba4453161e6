"""Concurrent asks for one thing share one look-up: the first starts the work as a task
of its own, the others that ask while it runs wait for the same result (or exception).
A caller that goes away (cancelled: its client hung up) leaves the work running for the
others.  Nothing is kept once the work ends: the next ask starts a new look-up.

Used where a burst of identical asks would otherwise pay one expensive call each: the
directory cache's misses and password versions, the credential check of logins that
arrive together (a client opening its connections at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlight(Generic[K, T]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[T]] = {}

    def __contains__(self, key: K) -> bool:
        """Whether work for ``key`` is under way (an ask now would share it)."""
        return key in self._running

    async def run(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._running[key] = task
            task.add_done_callback(lambda done: self._ended(key, done))
        return await asyncio.shield(task)

    def _ended(self, key: K, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()    # retrieved: no "never retrieved" warning when all left
