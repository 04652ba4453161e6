"""Layout versions: one registry of every layer's, checked when the store opens
(fdb_layers/layout.py; the node's side is in tests/server/test_app.py)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import fdb_layers
from fdb_layers.engine.base import Engine, LayoutVersionError, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.keys import pack
from fdb_layers.layout import (
    LAYOUT,
    check_layouts,
    check_store_layouts,
    get_layouts,
    registered_layouts,
)





def _declared() -> dict[str, tuple[int, int]]:
    """Every module of fdb_layers that declares a ``LAYOUT = (major, minor)``."""
    out = {}
    for info in pkgutil.walk_packages(fdb_layers.__path__, "fdb_layers."):
        module = importlib.import_module(info.name)
        layout = getattr(module, "LAYOUT", None)
        if isinstance(layout, tuple) and len(layout) == 2:
            out[info.name] = layout
    return out


def test_every_layer_that_declares_a_layout_is_registered() -> None:
    registered = registered_layouts()
    declared = _declared()
    assert {"fdb_layers.mail.layout", "fdb_layers.blobs.refs",
            "fdb_layers.mail.maintenance"} <= set(declared)
    for module, version in declared.items():
        assert version in registered.values(), f"{module}.LAYOUT is not in registered_layouts()"
    assert registered["mail"] == declared["fdb_layers.mail.layout"]
    assert registered["blobrefs"] == declared["fdb_layers.blobs.refs"]
    assert registered["maintenance"] == declared["fdb_layers.mail.maintenance"]


async def test_a_fresh_store_records_every_registered_layout(engine: Engine) -> None:
    await transact(engine, check_store_layouts)
    await transact(engine, check_store_layouts)  # again: nothing changes
    assert await transact(engine, get_layouts) == registered_layouts()


@pytest.mark.parametrize("name", sorted(registered_layouts()))
async def test_a_newer_major_version_of_any_layer_is_refused(engine: Engine, name: str) -> None:
    major, minor = registered_layouts()[name]

    async def newer(tr: Transaction) -> None:
        tr.set(LAYOUT.pack((name,)), pack((major + 1, 0)))

    await transact(engine, newer)
    with pytest.raises(LayoutVersionError, match=f"{name}.*newer fdbmail"):
        await transact(engine, check_store_layouts)


async def test_a_newer_minor_version_is_read_and_kept(engine: Engine) -> None:
    major, minor = registered_layouts()["mail"]

    async def newer_minor(tr: Transaction) -> None:
        tr.set(LAYOUT.pack(("mail",)), pack((major, minor + 3)))

    await transact(engine, newer_minor)
    await transact(engine, check_store_layouts)
    assert (await transact(engine, get_layouts))["mail"] == (major, minor + 3)


async def test_layout_versions_refuse_newer_major(engine: Engine) -> None:
    await transact(engine, check_layouts, {"mailbox": (1, 2)})
    await transact(engine, check_layouts, {"mailbox": (1, 3)})
    assert (await transact(engine, get_layouts))["mailbox"] == (1, 3)
    await transact(engine, check_layouts, {"mailbox": (1, 1)})  # older minor still reads it
    with pytest.raises(LayoutVersionError, match="newer fdbmail"):
        await transact(engine, check_layouts, {"mailbox": (0, 9)})
