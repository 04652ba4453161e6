"""Every blob store backend behind one fixture, so one behavioural suite runs on all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.blobs.base import BlobStore
from server.blobs.fs import FsBlobStore
from server.blobs.s3 import MIN_PART_SIZE, S3BlobStore, S3Options
from tests.support.s3 import S3Server, s3_server  # noqa: F401  (fixture)


async def open_s3_store(server: S3Server, **options: object) -> S3BlobStore:
    bucket = server.create_bucket()
    defaults: dict[str, object] = {
        "endpoint_url": server.endpoint_url, "region": server.region,
        "access_key": server.access_key, "secret_key": server.secret_key,
        "addressing_style": "path", "part_size": MIN_PART_SIZE, "spool_memory": 64 * 1024,
        "chunk_size": 64 * 1024,
    }
    defaults.update(options)
    return await S3BlobStore.create(S3Options(bucket=bucket, **defaults))  # type: ignore[arg-type]


@pytest.fixture(params=["fs", "fs-files", "fs-file-sync", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    # fs: small blobs packed (the default); fs-files: every blob a file, made
    # durable by syncfs batches; fs-file-sync: every blob a file, fsynced alone.
    opened: BlobStore
    if request.param.startswith("fs"):
        sync = "file" if request.param == "fs-file-sync" else "filesystem"
        pack_max = 1000 if request.param == "fs" else 0  # the suite's blobs: both kinds
        opened = await FsBlobStore.create(tmp_path / "blobs", sync=sync, chunk_size=64 * 1024,
                                          pack_max=pack_max)
    else:
        opened = await open_s3_store(request.getfixturevalue("s3_server"))
    try:
        yield opened
    finally:
        await opened.close()
