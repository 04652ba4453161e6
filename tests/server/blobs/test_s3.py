"""What only the s3 backend promises, against a real S3-compatible server (moto_server)."""

from __future__ import annotations

import asyncio
import hashlib
import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from server.blobs.base import BlobError
from server.blobs.s3 import MIN_PART_SIZE, S3BlobStore, S3Options
from tests.server.blobs.conftest import open_s3_store
from tests.server.blobs.test_fs import expected_digest, generated
from tests.support.s3 import S3Server

MIB = 1024 * 1024


@pytest.fixture
async def s3(s3_server: S3Server) -> AsyncIterator[S3BlobStore]:
    store = await open_s3_store(s3_server, prefix="mail/blobs/")
    yield store
    await store.close()


def head(server: S3Server, store: S3BlobStore, blob_id: str) -> dict[str, object]:
    result: dict[str, object] = server.client().head_object(
        Bucket=store.bucket, Key=store.key(blob_id))
    return result


async def test_keys_are_prefixed_sha256(s3: S3BlobStore, s3_server: S3Server) -> None:
    ref = await s3.put(b"hello")
    listed = s3_server.client().list_objects_v2(Bucket=s3.bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"mail/blobs/{ref.id}"]


async def test_small_stream_is_one_put(s3: S3BlobStore, s3_server: S3Server) -> None:
    ref = await s3.put_stream(generated(MIN_PART_SIZE))
    assert "-" not in str(head(s3_server, s3, ref.id)["ETag"])


async def test_large_stream_is_multipart(s3: S3BlobStore, s3_server: S3Server) -> None:
    total = 2 * MIN_PART_SIZE + 1000
    ref = await s3.put_stream(generated(total))
    assert ref.id == await expected_digest(total)
    assert str(head(s3_server, s3, ref.id)["ETag"]).endswith('-3"')  # three parts
    assert s3_server.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []


async def test_stream_memory_is_bounded(s3: S3BlobStore) -> None:
    """30 MiB streamed: memory holds the spool's in-memory part plus about one
    upload part, not the blob."""
    total = 30 * MIB
    tracemalloc.start()
    try:
        ref = await s3.put_stream(generated(total))
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        h = hashlib.sha256()
        async for chunk in s3.open(ref.id):
            h.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert h.hexdigest() == ref.id
    assert put_peak < 4 * MIN_PART_SIZE, put_peak
    assert read_peak < 4 * MIB, read_peak


async def test_put_again_refreshes_last_modified(s3: S3BlobStore) -> None:
    small = await s3.put(b"small")
    large = await s3.put_stream(generated(MIN_PART_SIZE + 1))
    before = {r.id: await s3.modified(r.id) for r in (small, large)}
    await asyncio.sleep(1.1)  # LastModified has a resolution of one second
    await s3.put(b"small")
    await s3.put_stream(generated(MIN_PART_SIZE + 1))
    for ref in (small, large):
        assert await s3.modified(ref.id) > before[ref.id]
    assert await s3.size(large.id) == MIN_PART_SIZE + 1


async def test_list_ignores_foreign_keys(s3: S3BlobStore, s3_server: S3Server) -> None:
    ref = await s3.put(b"real")
    client = s3_server.client()
    client.put_object(Bucket=s3.bucket, Key="mail/blobs/README", Body=b"x")
    client.put_object(Bucket=s3.bucket, Key="other/" + ref.id, Body=b"x")
    found = [(blob_id, mtime) async for blob_id, mtime in s3.list()]
    assert [blob_id for blob_id, _ in found] == [ref.id]
    assert abs(found[0][1] - time.time()) < 120


async def test_list_pages(s3_server: S3Server) -> None:
    store = await open_s3_store(s3_server, list_page_size=7)
    try:
        refs = await asyncio.gather(*(store.put(b"%d" % i) for i in range(40)))
        assert sorted([blob_id async for blob_id, _ in store.list()]) == sorted(
            ref.id for ref in refs)
    finally:
        await store.close()


async def test_configuration_errors(s3_server: S3Server) -> None:
    with pytest.raises(BlobError):
        await S3BlobStore.create(S3Options(bucket=""))
    with pytest.raises(BlobError):
        await S3BlobStore.create(S3Options(bucket="b", part_size=MIB))
    store = await S3BlobStore.create(S3Options(
        bucket="no-such-bucket", endpoint_url=s3_server.endpoint_url,
        access_key="testing", secret_key="testing", addressing_style="path"))
    try:
        with pytest.raises(BlobError):
            await store.put(b"x")
    finally:
        await store.close()
