"""Per-process caches of what a method computed from an account's data at one state.

The mail layer gives an account a new modseq -- its JMAP state -- in every transaction
that changes anything of it (a new email, a destroy, a move, a keyword, a mailbox, a
thread: :mod:`fdb_layers.mail.changes`), whichever process or protocol made the change.
So a value computed in a transaction that read the state S is the value for every later
transaction that reads S again: a mail list view's refresh asks the same Email/query and
Email/get of the same page over and over, and while nothing changed the answer is the one
computed last time (Cyrus keeps such a JMAP query cache).  An entry is used only after the
state was read in the caller's transaction -- the read a fresh computation would make --
and only when it equals the entry's: a stale answer is impossible, and nothing needs to
tell the cache of a change.  Keys begin with the account id, so one account never sees
what was computed for another.  Nothing but memory is lost when a process drops an entry
(DESIGN.md: droppable caches)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from prometheus_client import Counter

STATE_CACHE = Counter(
    "fdbmail_jmap_state_cache_total",
    "Look-ups of the per-process caches of results at one account state, by cache "
    "(query: Email/query's ids of a mailbox listing; email: Email/get's records; answer: "
    "Email/get's answer of a list view) and result (hit, miss).",
    ["cache", "result"])

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class StateCache(Generic[K, V]):
    """Least recently used values, each stored with the state it was computed at; at most
    ``entries``.  Keys are tuples whose first item is the account id."""

    def __init__(self, name: str, entries: int) -> None:
        self.name, self.entries = name, entries
        self._items: OrderedDict[K, tuple[str, V]] = OrderedDict()
        self._hits = STATE_CACHE.labels(name, "hit")
        self._misses = STATE_CACHE.labels(name, "miss")

    def get(self, key: K, state: str) -> tuple[bool, V | None]:
        """(True, the value) if one was stored for ``key`` at ``state``, else (False,
        None).  ``state`` must have been read in the caller's transaction.  The metric
        counts look-ups (a transaction's body that runs again looks up again)."""
        item = self._items.get(key)
        if item is None or item[0] != state:
            self._misses.inc()
            return False, None
        self._hits.inc()
        self._items.move_to_end(key)
        return True, item[1]

    def put(self, key: K, state: str, value: V) -> None:
        """Keep ``value``, computed in a transaction that read ``state``."""
        self._items[key] = (state, value)
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
