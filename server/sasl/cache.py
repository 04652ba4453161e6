"""A short-lived, bounded cache of verified credentials (issue 12: repeated logins do not
pay a full password hash each time), as Dovecot's auth cache does.

An entry is keyed by an HMAC, under a random key made when the process starts, of the
login, the secret and the directory's current *password version*
(:class:`server.directory.base.PasswordVersions`): the secret itself is never kept, the
key dies with the process, and a password changed in the directory changes the version,
so the old entry is never found again -- the change takes effect at once.  Only successes
are cached; a directory without password versions is always asked."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from prometheus_client import Counter

from server.directory.base import Principal

CACHE_LOOKUPS = Counter("fdbmail_sasl_credential_cache_lookups_total",
                        "Credential cache look-ups by result (hit, miss).", ["result"])

DEFAULT_TTL = 60.0
DEFAULT_SIZE = 10_000


class CredentialCache:
    def __init__(self, ttl: float = DEFAULT_TTL, size: int = DEFAULT_SIZE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.size = max(1, size)
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._items: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def key(self, login: str, secret: str, version: str) -> bytes:
        message = "\0".join((login, secret, version)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def get(self, key: bytes) -> Principal | None:
        item = self._items.get(key)
        if item is None or item[0] <= self.clock():
            if item is not None:
                del self._items[key]
            CACHE_LOOKUPS.labels("miss").inc()
            return None
        CACHE_LOOKUPS.labels("hit").inc()
        return item[1]

    def put(self, key: bytes, principal: Principal) -> None:
        self._items[key] = (self.clock() + self.ttl, principal)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


__all__ = ["CredentialCache"]
