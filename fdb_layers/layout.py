"""Layout versions: each layer declares ``(major, minor)``; the store records
them, and a node refuses a store written by a newer major version."""

from __future__ import annotations

from collections.abc import Mapping

from .engine.base import LayoutVersionError, Transaction
from .keys import Subspace, pack, unpack

# All keys of this module.
LAYOUT = Subspace(("layout",))  # (layer name,) -> packed (major, minor)

# The store as a whole; layers add their own entries through check_layouts.
STORE_LAYOUT = (1, 0)


async def check_layouts(tr: Transaction, layers: Mapping[str, tuple[int, int]]) -> None:
    """Record each layer's layout version, refusing newer major versions.

    A store of an older major version would need a migration; none exists yet,
    so it is refused too, with a message that says so.
    """
    for name, (major, minor) in sorted(layers.items()):
        key = LAYOUT.pack((name,))
        raw = await tr.get(key)
        if raw is None:
            tr.set(key, pack((major, minor)))
            continue
        stored_major, stored_minor = unpack(raw)
        if stored_major > major:
            raise LayoutVersionError(
                f"the store's {name!r} layout is version {stored_major}.{stored_minor}, written "
                f"by a newer fdbmail; this node knows {major}.{minor}: upgrade this node"
            )
        if stored_major < major:
            raise LayoutVersionError(
                f"the store's {name!r} layout is version {stored_major}.{stored_minor}, older "
                f"than this node's {major}.{minor}, and no migration exists for it"
            )
        if stored_minor < minor:
            tr.set(key, pack((major, minor)))


async def get_layouts(tr: Transaction) -> dict[str, tuple[int, int]]:
    begin, end = LAYOUT.range()
    out: dict[str, tuple[int, int]] = {}
    for kv in await tr.get_range(begin, end):
        (name,) = LAYOUT.unpack(kv.key)
        major, minor = unpack(kv.value)
        out[str(name)] = (int(major), int(minor))
    return out
