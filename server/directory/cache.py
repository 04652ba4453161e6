"""A short-lived cache in front of any directory: answers are reused for ``ttl`` seconds at
most, so a change in LDAP/SQL shows within the TTL (DESIGN.md: "short TTL caches at most").
Concurrent misses for the same key share one look-up.  Errors are not cached.  Passwords are
never cached: :meth:`authenticate` always asks the directory, and so does
:meth:`password_version` (concurrent asks for one login share the look-up under way)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import Counter

from server.singleflight import SingleFlight

from .base import Directory, Principal, password_versions

CACHE_REQUESTS = Counter(
    "fdbmail_directory_cache_requests_total",
    "Directory cache look-ups by operation and result (hit, miss, or shared: a miss that "
    "waited for the same look-up already under way).",
    ["op", "result"],
)

T = TypeVar("T")


class TtlCache:
    """Values by key, each dropped ``ttl`` seconds after it was stored; at most ``size``."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.size = max(1, size)
        self.clock = clock
        self._items: OrderedDict[tuple[str, str], tuple[float, object]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> tuple[bool, object]:
        item = self._items.get(key)
        if item is None:
            return False, None
        expires, value = item
        if self.clock() >= expires:
            del self._items[key]
            return False, None
        return True, value

    def put(self, key: tuple[str, str], value: object) -> None:
        self._items[key] = (self.clock() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class CachedDirectory:
    """Wraps a :class:`Directory`; same interface, answers cached for a few seconds."""

    def __init__(self, inner: Directory, ttl: float, size: int = 10000,
                 clock: Callable[[], float] = time.monotonic):
        self.inner = inner
        self._versions = password_versions(inner)
        self.cache = TtlCache(ttl, size, clock)
        self._inflight: SingleFlight[tuple[str, str], object] = SingleFlight()

    async def _cached(self, op: str, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        hit, value = self.cache.get((op, key))
        if hit:
            CACHE_REQUESTS.labels(op, "hit").inc()
            return value  # type: ignore[return-value]
        return await self._shared(op, key, fetch, keep=True)

    async def _shared(self, op: str, key: str, fetch: Callable[[], Awaitable[T]], *,
                      keep: bool) -> T:
        """``fetch``'s answer, shared with the callers that ask for the same while it is
        under way (:class:`server.singleflight.SingleFlight`); kept in the cache if
        ``keep``."""
        CACHE_REQUESTS.labels(op, "shared" if (op, key) in self._inflight else "miss").inc()

        async def look_up() -> object:
            fresh = await fetch()
            if keep:
                self.cache.put((op, key), fresh)
            return fresh

        return await self._inflight.run((op, key), look_up)  # type: ignore[return-value]

    async def authenticate(self, login: str, secret: str) -> Principal | None:
        return await self.inner.authenticate(login, secret)

    async def password_version(self, login: str) -> str | None:
        """Never cached: the credential cache relies on it being current.  Callers that
        ask while a look-up of the same login is under way share its answer (read after
        the first of them asked): a client's concurrent requests, each checking its
        Basic credentials (JMAP), make one look-up, not one each."""
        inner = self._versions
        if inner is None:
            return None
        return await self._shared("password_version", login,
                                  lambda: inner.password_version(login), keep=False)

    async def get_principal(self, name: str) -> Principal | None:
        return await self._cached("get_principal", name,
                                  lambda: self.inner.get_principal(name))

    async def resolve_recipient(self, address: str) -> list[Principal]:
        found = await self._cached("resolve_recipient", address,
                                   lambda: self.inner.resolve_recipient(address))
        return list(found)

    async def is_local_domain(self, domain: str) -> bool:
        return await self._cached("is_local_domain", domain,
                                  lambda: self.inner.is_local_domain(domain))

    async def list_domains(self) -> list[str]:
        return list(await self._cached("list_domains", "", self.inner.list_domains))

    async def close(self) -> None:
        self.cache.clear()
        await self.inner.close()
