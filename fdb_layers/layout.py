"""Layout versions: each layer declares ``(major, minor)`` at the top of its
module; :func:`registered_layouts` lists them all, the store records them, and
:func:`check_store_layouts` refuses a store written by a newer major version of
any of them.  A node checks when it opens the store (``server.app.open_store``);
the leased workers (blob GC, maintenance) check again before each run, so that a
node left running cannot write an older layout into a store a newer one moved on.

Registering a layer: give its module a ``LAYOUT = (major, minor)`` and add it to
:func:`registered_layouts` (a test fails for a module whose ``LAYOUT`` is missing
there).  Bump the minor version for a change that older nodes still read right;
the major version for one they would not (they then refuse the store)."""

from __future__ import annotations

from collections.abc import Mapping

from .engine.base import LayoutVersionError, Transaction
from .keys import Subspace, pack, unpack

# All keys of this module.
LAYOUT = Subspace(("layout",))  # (layer name,) -> packed (major, minor)

# The store as a whole (the layout subspace itself, engines' conventions).
STORE_LAYOUT = (1, 0)


def registered_layouts() -> dict[str, tuple[int, int]]:
    """Every layer's layout version, by the name the store records it under."""
    from . import identities, push, tokens
    from .blobs import refs as blobrefs  # they import this module
    from .mail import layout as mail_layout
    from .mail import maintenance
    from .queue import layout as queue_layout
    from . import submissions, vacation
    from . import settings as store_settings
    from . import mtasts

    return {
        "store": STORE_LAYOUT,
        "mail": mail_layout.LAYOUT,
        "blobrefs": blobrefs.LAYOUT,
        "maintenance": maintenance.LAYOUT,
        "queue": queue_layout.LAYOUT,
        "identities": identities.LAYOUT,
        "submissions": submissions.LAYOUT,
        "vacation": vacation.LAYOUT,
        "tokens": tokens.LAYOUT,
        "settings": store_settings.LAYOUT,
        "push": push.LAYOUT,
        "mtasts": mtasts.LAYOUT,
    }


async def check_store_layouts(tr: Transaction) -> None:
    """:func:`check_layouts` for every registered layer; LayoutVersionError if the
    store has a major version of one that this node does not."""
    await check_layouts(tr, registered_layouts())


async def check_layouts(tr: Transaction, layers: Mapping[str, tuple[int, int]]) -> None:
    """Record each layer's layout version, refusing newer major versions.

    A store of an older major version would need a migration; none exists yet,
    so it is refused too, with a message that says so.
    """
    stored = await get_layouts(tr)  # one range read for them all
    for name, (major, minor) in sorted(layers.items()):
        key = LAYOUT.pack((name,))
        found = stored.get(name)
        if found is None:
            tr.set(key, pack((major, minor)))
            continue
        stored_major, stored_minor = found
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
