"""Upload references (fdb_layers/blobs/uploads.py): a JMAP upload (RFC 8620 section 6.1)
keeps its blob from the collector until it expires, then the blob is collected like any
unreferenced one; on every engine (faults included: each write may run twice)."""

from __future__ import annotations

from pathlib import Path

from fdb_layers.blobs.gc import collect_blobs
from fdb_layers.blobs.refs import add_blob_ref, remove_blob_ref
from fdb_layers.blobs.refs import list_blob_refs
from fdb_layers.blobs.uploads import add_upload, expire_uploads, get_upload
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from server.blobs.fs import FsBlobStore
from tests.fdb_layers.blobs.helpers import Clock, refcount
from tests.support.blobs import set_modified

HOUR = 3600.0
ID = "b" * 64


async def test_an_upload_is_a_reference_until_it_expires(engine: Engine) -> None:
    await transact(engine, add_upload, "acc1", ID, 10, 5000.0)
    await transact(engine, add_upload, "acc1", ID, 10, 5000.0)  # again: one reference
    assert await refcount(engine, ID) == 1
    assert await transact(engine, get_upload, "acc1", ID) == 5000.0
    assert await transact(engine, get_upload, "acc2", ID) is None  # another account's

    await transact(engine, add_upload, "acc1", ID, 10, 9000.0)  # uploaded again later
    await transact(engine, add_upload, "acc1", ID, 10, 7000.0)  # an earlier expiry: kept
    assert await transact(engine, get_upload, "acc1", ID) == 9000.0
    assert await transact(engine, expire_uploads, 8999.0) == 0
    assert await refcount(engine, ID) == 1

    assert await transact(engine, expire_uploads, 9001.0) == 1
    assert await transact(engine, get_upload, "acc1", ID) is None
    assert await refcount(engine, ID) == 0


async def test_an_expired_upload_that_an_email_refers_to_stays(engine: Engine) -> None:
    await transact(engine, add_upload, "acc1", ID, 10, 100.0)
    await transact(engine, add_blob_ref, ID, 10, ref_id="mail/acc1/e1")
    await transact(engine, expire_uploads, 200.0)
    assert await refcount(engine, ID) == 1
    assert await transact(engine, list_blob_refs, ID, "mail/acc1/") == ["mail/acc1/e1"]
    assert await transact(engine, list_blob_refs, ID, "mail/acc2/") == []
    await transact(engine, remove_blob_ref, ID, ref_id="mail/acc1/e1", now=300.0)
    assert await refcount(engine, ID) == 0


async def test_the_collector_expires_uploads_then_collects_them(engine: Engine,
                                                                 tmp_path: Path) -> None:
    store = await FsBlobStore.create(tmp_path / "blobs", fsync=False)
    try:
        clock = Clock()
        ref = await store.put(b"uploaded, never used")
        set_modified(store, ref.id, clock() - 2 * HOUR)
        await transact(engine, add_upload, "acc1", ref.id, ref.size, clock() + 24 * HOUR)

        result = await collect_blobs(engine, store, clock=clock)
        assert await store.exists(ref.id)
        assert await transact(engine, get_upload, "acc1", ref.id) is not None

        clock.advance(24 * HOUR + 1)  # expired: the reference goes, the blob is kept a grace
        result = await collect_blobs(engine, store, clock=clock)
        # (the count is the collector's report; under injected faults a commit whose
        # result was unknown is retried and finds nothing left to drop)
        assert result.deleted == 0
        assert await transact(engine, get_upload, "acc1", ref.id) is None
        assert await refcount(engine, ref.id) == 0
        assert await store.exists(ref.id)

        clock.advance(HOUR + 1)
        result = await collect_blobs(engine, store, clock=clock)
        assert result.deleted_ids == [ref.id]
        assert not await store.exists(ref.id)
    finally:
        await store.close()
