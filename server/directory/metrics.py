"""Metrics of directory look-ups, emitted by a wrapper around any backend: look-ups by
backend, operation and result, their latency, and authentication attempts by result.  Labels
are bounded: never a login, an address or a domain."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import Counter, Histogram

from .base import Directory, DirectoryError, Principal, password_versions

LOOKUPS = Counter(
    "fdbmail_directory_lookups_total",
    "Directory look-ups by backend, operation and result (found, not_found, error).",
    ["backend", "op", "result"],
)
LOOKUP_SECONDS = Histogram(
    "fdbmail_directory_lookup_seconds",
    "Latency of directory look-ups by backend and operation.",
    ["backend", "op"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
AUTH_ATTEMPTS = Counter(
    "fdbmail_directory_auth_attempts_total",
    "Authentication attempts by backend and result (success, failure, error).",
    ["backend", "result"],
)

T = TypeVar("T")


class InstrumentedDirectory:
    """Wraps a :class:`Directory` and counts and times every call."""

    def __init__(self, inner: Directory, backend: str):
        self.inner = inner
        self.backend = backend
        self._versions = password_versions(inner)

    async def _observe(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        start = time.perf_counter()
        try:
            value = await call()
        except Exception:
            LOOKUPS.labels(self.backend, op, "error").inc()
            raise
        finally:
            LOOKUP_SECONDS.labels(self.backend, op).observe(time.perf_counter() - start)
        LOOKUPS.labels(self.backend, op, "found" if value else "not_found").inc()
        return value

    async def authenticate(self, login: str, secret: str) -> Principal | None:
        try:
            found = await self._observe("authenticate",
                                        lambda: self.inner.authenticate(login, secret))
        except DirectoryError:
            AUTH_ATTEMPTS.labels(self.backend, "error").inc()
            raise
        AUTH_ATTEMPTS.labels(self.backend, "success" if found else "failure").inc()
        return found

    async def password_version(self, login: str) -> str | None:
        inner = self._versions
        if inner is None:
            return None
        return await self._observe("password_version", lambda: inner.password_version(login))

    async def get_principal(self, name: str) -> Principal | None:
        return await self._observe("get_principal", lambda: self.inner.get_principal(name))

    async def resolve_recipient(self, address: str) -> list[Principal]:
        return await self._observe("resolve_recipient",
                                   lambda: self.inner.resolve_recipient(address))

    async def is_local_domain(self, domain: str) -> bool:
        return await self._observe("is_local_domain",
                                   lambda: self.inner.is_local_domain(domain))

    async def list_domains(self) -> list[str]:
        return await self._observe("list_domains", self.inner.list_domains)

    async def close(self) -> None:
        await self.inner.close()
