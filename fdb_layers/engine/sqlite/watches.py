"""Watches on the embedded engine: a future per watched key, fired when a commit
writes the key.

Commits of this process fire them at once (the engine tells :class:`Watches`
which keys each durable batch wrote).  Commits of other processes on the same
file are seen in two ways: a node's worker processes get the keys they watch
pushed by the commit server (:mod:`.remote`) as soon as any process's commit is
durable; and every engine also polls its watched keys' values, for writers it
has no connection to.  FoundationDB needs none of this: its watches are
cluster-wide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .conflicts import ConflictSet


@dataclass(slots=True)
class WatchState:
    key: bytes
    value: bytes | None  # the value when the watch was set (polling compares it)
    future: asyncio.Future[None]


class SqliteWatch:
    """The contract's :class:`~fdb_layers.engine.base.Watch` for one key."""

    def __init__(self, watches: Watches, state: WatchState) -> None:
        self._watches = watches
        self._state = state

    async def wait(self) -> None:
        await asyncio.shield(self._state.future)

    def set_value(self, value: bytes | None) -> None:
        """The key's value the watch was set on, once read (polling compares it)."""
        self._state.value = value

    def cancel(self) -> None:
        self._watches.drop(self._state)
        if not self._state.future.done():
            self._state.future.cancel()


class Watches:
    """The watches of one engine, by key."""

    def __init__(self) -> None:
        self._by_key: dict[bytes, list[WatchState]] = {}
        # told a key that no watch waits on any more after a cancel (the commit
        # server then stops pushing it)
        self.on_unwatched: Callable[[bytes], object] | None = None

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def keys(self) -> list[bytes]:
        return list(self._by_key)

    def add(self, key: bytes, value: bytes | None) -> SqliteWatch:
        state = WatchState(key, value, asyncio.get_running_loop().create_future())
        self._by_key.setdefault(key, []).append(state)
        return SqliteWatch(self, state)

    def drop(self, state: WatchState) -> None:
        states = self._by_key.get(state.key)
        if states and state in states:
            states.remove(state)
            if not states:
                del self._by_key[state.key]
                if self.on_unwatched is not None:
                    self.on_unwatched(state.key)

    def fire(self, keys: Iterable[bytes]) -> list[bytes]:
        """Fire (and forget) every watch on ``keys``; the keys that had some."""
        fired = []
        for key in keys:
            states = self._by_key.pop(key, None)
            if states is None:
                continue
            fired.append(key)
            for state in states:
                if not state.future.done():
                    state.future.set_result(None)
        return fired

    def fire_written(self, written: Iterable[ConflictSet]) -> list[bytes]:
        """Fire the watches on keys that any of ``written`` (commits' write sets) holds."""
        if not self._by_key:
            return []
        sets = list(written)
        return self.fire([k for k in self._by_key if any(w.contains(k) for w in sets)])

    def fire_changed(self, values: dict[bytes, bytes | None]) -> None:
        """Polling: fire the watches whose key's value (in ``values``) is not the one
        they were set on."""
        for key, value in values.items():
            for state in list(self._by_key.get(key, [])):
                if state.value != value:
                    self.drop(state)
                    if not state.future.done():
                        state.future.set_result(None)

    def cancel_all(self) -> None:
        for states in self._by_key.values():
            for state in states:
                if not state.future.done():
                    state.future.cancel()
        self._by_key.clear()
