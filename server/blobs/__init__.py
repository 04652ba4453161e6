"""Blob stores: a local folder (``fs``) and S3 (``s3``) behind one Protocol.

>>> store = await open_blob_store(config)
>>> ref = await store.put(b"...")            # BlobRef(id=<sha256 hex>, size=...)
>>> await store.read_range(ref.id, 0, 100)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .base import (
    BlobCapabilities,
    BlobError, BlobNotFound,
    BlobRef,
    BlobStore,
    InvalidBlobId,
    check_blob_id,
)
from .metered import MeteredBlobStore
from .settings import BlobSettings

if TYPE_CHECKING:
    from server.config import Config

__all__ = [
    "BlobCapabilities",
    "BlobError",
    "BlobNotFound",
    "BlobRef",
    "BlobStore",
    "InvalidBlobId",
    "MeteredBlobStore",
    "check_blob_id",
    "open_blob_store",
]


async def open_blob_store(config: Config) -> BlobStore:
    """The blob store that ``[blobs]`` configures, with metrics; close it when done."""
    settings = config.get(BlobSettings)
    inner: BlobStore
    if settings.backend == "s3":
        from .s3 import S3BlobStore, S3Options

        inner = await S3BlobStore.create(S3Options.from_settings(settings))
    else:
        from .fs import FsBlobStore

        root = Path(settings.fs_path) if settings.fs_path else config.data_dir / "blobs"
        sync: Literal["file", "filesystem"] = (
            "file" if settings.fs_sync == "file" else "filesystem")
        inner = await FsBlobStore.create(root, fsync=settings.fs_fsync, sync=sync,
                                       chunk_size=settings.chunk_size,
                                       pack_max=settings.fs_pack_max_bytes)
    return MeteredBlobStore(inner)
