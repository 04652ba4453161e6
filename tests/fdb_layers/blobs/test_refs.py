"""Blob reference counts (fdb_layers/blobs/refs.py), on every engine (sqlite, sqlite
under injected faults, FoundationDB when a cluster is configured)."""

from __future__ import annotations


import pytest

from fdb_layers.blobs.refs import (
    add_blob_ref,
    get_blob_size,
    list_unreferenced,
    remove_blob_ref,
)
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from tests.fdb_layers.blobs.helpers import refcount

HOUR = 3600.0
ID = "a" * 64


# --- reference counts ------------------------------------------------------------------


async def test_refcounts(engine: Engine) -> None:
    assert await refcount(engine, ID) == 0
    assert await transact(engine, get_blob_size, ID) is None

    async def add_twice(tr: Transaction) -> None:
        await add_blob_ref(tr, ID, 1234)
        await add_blob_ref(tr, ID, 1234)

    async def remove_one(tr: Transaction) -> int:
        return await remove_blob_ref(tr, ID, now=1000.0)

    # a bare add is not idempotent: guard it with a marker, as callers must
    marker = b"test-delivery-1"

    async def guarded(tr: Transaction) -> None:
        if await tr.get(marker) is None:
            tr.set(marker, b"")
            await add_twice(tr)

    await transact(engine, guarded)
    await transact(engine, guarded)
    assert await refcount(engine, ID) == 2
    assert await transact(engine, get_blob_size, ID) == 1234

    assert await transact(engine, remove_blob_ref, ID, ref_id="absent") == 2
    removed = b"test-removal-1"

    async def guarded_remove(tr: Transaction) -> None:
        if await tr.get(removed) is None:
            tr.set(removed, b"")
            await remove_one(tr)

    await transact(engine, guarded_remove)
    await transact(engine, guarded_remove)
    assert await refcount(engine, ID) == 1
    assert await transact(engine, list_unreferenced, 1e12) == []


async def test_named_refs_are_idempotent(engine: Engine) -> None:
    """Each write runs twice (and, on the faulty engine, may commit and report unknown)."""
    for ref_id in ("alice/1", "bob/7"):
        for _ in range(2):
            await transact(engine, add_blob_ref, ID, 10, ref_id=ref_id)
    assert await refcount(engine, ID) == 2
    assert not await transact(engine, add_blob_ref, ID, 10, ref_id="alice/1")
    for _ in range(2):
        assert await transact(engine, remove_blob_ref, ID, ref_id="alice/1", now=50.0) == 1
    for _ in range(2):
        assert await transact(engine, remove_blob_ref, ID, ref_id="bob/7", now=60.0) == 0
    assert await refcount(engine, ID) == 0
    assert await transact(engine, list_unreferenced, 1e12) == [(60.0, ID)]


async def test_count_never_goes_below_zero(engine: Engine) -> None:
    assert await transact(engine, remove_blob_ref, ID) == 0
    assert await refcount(engine, ID) == 0
    await transact(engine, add_blob_ref, ID, 1, ref_id="r")
    assert await refcount(engine, ID) == 1


async def test_unreferenced_index(engine: Engine) -> None:
    other = "b" * 64
    await transact(engine, add_blob_ref, ID, 1, ref_id="x")
    await transact(engine, add_blob_ref, other, 1, ref_id="y")
    await transact(engine, remove_blob_ref, ID, ref_id="x", now=100.0)
    await transact(engine, remove_blob_ref, other, ref_id="y", now=200.0)
    assert await transact(engine, list_unreferenced, 150.0) == [(100.0, ID)]
    assert await transact(engine, list_unreferenced, 300.0) == [(100.0, ID), (200.0, other)]
    # referenced again: no longer a candidate
    await transact(engine, add_blob_ref, ID, 1, ref_id="z")
    assert await transact(engine, list_unreferenced, 300.0) == [(200.0, other)]


async def test_bad_blob_ids_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError):
        await transact(engine, add_blob_ref, "../x", 1)


# --- the collector ---------------------------------------------------------------------
