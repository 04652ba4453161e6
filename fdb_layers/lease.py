"""Leases: work that must run on one node at a time (GC, maintenance) holds a
key naming its holder and an expiry.  The caller owns the key (its layer's
subspace); these functions only read and write the value ``(holder, expires)``."""

from __future__ import annotations

from .engine.base import Transaction
from .keys import pack, unpack


async def take_lease(tr: Transaction, key: bytes, holder: str, now: float,
                     seconds: float) -> bool:
    """Take or renew the lease for ``holder``; False if another holder has it."""
    raw = await tr.get(key)
    if raw is not None:
        current, expires = unpack(raw)
        if current != holder and float(expires) > now:
            return False
    tr.set(key, pack((holder, now + seconds)))
    return True


async def release_lease(tr: Transaction, key: bytes, holder: str) -> None:
    """Give the lease up, if ``holder`` still has it."""
    raw = await tr.get(key)
    if raw is not None and unpack(raw)[0] == holder:
        tr.clear(key)


async def get_lease(tr: Transaction, key: bytes) -> tuple[str, float] | None:
    """``(holder, expires)`` of the lease, or None."""
    raw = await tr.get(key)
    if raw is None:
        return None
    holder, expires = unpack(raw)
    return str(holder), float(expires)
