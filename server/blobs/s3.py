"""The ``s3`` blob store: an S3-compatible bucket shared by every node (aioboto3).

The key of a blob is ``<prefix><sha256>``.  One aioboto3 client (one HTTP
connection pool) serves the node; it is opened by :meth:`S3BlobStore.open` and
closed by :meth:`S3BlobStore.close`.

Streamed uploads: the key is the SHA-256 of the content, known only once the
stream ends.  We spool the stream to a ``tempfile.SpooledTemporaryFile``
(hashing as it arrives; small blobs stay in memory, large ones go to a local
temporary file), then send it.  The alternative, uploading under a temporary
key and copying to the final one, was rejected because:

* a copy costs a second full write inside S3 (and needs a multipart copy
  above 5 GB), on every upload;
* a crash leaves objects under temporary keys, a second kind of orphan;
* with the hash known first, a blob already in the bucket (the same message
  delivered to many recipients) is not uploaded again: one HEAD instead.

The price is local disk for blobs larger than ``spool_memory`` and an upload
that starts when the stream ends.  Memory stays bounded: at most
``spool_memory`` bytes of spool plus one part (``part_size``) in flight.
Blobs up to ``part_size`` are one PUT; larger ones a multipart upload of
``part_size`` parts (S3 needs at least 5 MiB per part but the last).

A put of a blob already present refreshes its LastModified (a small PUT
overwrites it; a large one is copied onto itself with new metadata): the
garbage collector never removes a blob put within its grace period.  (That
copy limits blobs to 5 GB, far above any message size limit.)

Permissions: GetObject, PutObject, DeleteObject, ListBucket (without it S3
answers 403 instead of 404 for a missing blob) and the multipart actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import IO, Any

import aioboto3
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from .settings import BlobSettings
from .base import (
    BlobCapabilities,
    BlobError,
    BlobNotFound,
    BlobRef,
    check_blob_id,
    check_range,
)

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True, slots=True)
class S3Options:
    bucket: str
    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = ""
    prefix: str = "blobs/"
    addressing_style: str = "auto"
    part_size: int = 8 * 1024 * 1024
    spool_memory: int = 1024 * 1024
    max_connections: int = 32
    chunk_size: int = 256 * 1024
    list_page_size: int = 1000  # keys per LIST request (S3's maximum)

    @classmethod
    def from_settings(cls, s: BlobSettings) -> S3Options:
        return cls(
            bucket=s.s3_bucket, endpoint_url=s.s3_endpoint_url, region=s.s3_region,
            access_key=s.s3_access_key, secret_key=s.s3_secret_key, prefix=s.s3_prefix,
            addressing_style=s.s3_addressing_style, part_size=s.s3_part_size,
            spool_memory=s.s3_spool_memory, max_connections=s.s3_max_connections,
            chunk_size=s.chunk_size,
        )


class S3BlobStore:
    """Blobs as objects in one bucket; see the module docstring."""

    backend = "s3"
    capabilities = BlobCapabilities()  # delete_if_older is a HEAD, then a DELETE

    def __init__(self, client: Any, options: S3Options, stack: contextlib.AsyncExitStack) -> None:
        self._client = client
        self._stack = stack
        self.options = options
        self.bucket = options.bucket

    @classmethod
    async def create(cls, options: S3Options) -> S3BlobStore:
        if not options.bucket:
            raise BlobError("[blobs] s3_bucket is not set")
        if options.part_size < MIN_PART_SIZE:
            raise BlobError(f"[blobs] s3_part_size must be at least {MIN_PART_SIZE}")
        config = AioConfig(
            s3={"addressing_style": options.addressing_style},
            max_pool_connections=options.max_connections,
            retries={"max_attempts": 5, "mode": "standard"},
        )
        session = aioboto3.Session()
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(session.client(
            "s3",
            endpoint_url=options.endpoint_url or None,
            region_name=options.region or None,
            aws_access_key_id=options.access_key or None,
            aws_secret_access_key=options.secret_key or None,
            config=config,
        ))
        return cls(client, options, stack)

    def key(self, blob_id: str) -> str:
        return self.options.prefix + check_blob_id(blob_id)

    # -- writes ---------------------------------------------------------------

    async def put(self, data: bytes) -> BlobRef:
        data = bytes(data)
        blob_id = await asyncio.to_thread(_sha256_hex, data)
        key = self.key(blob_id)
        if len(data) > self.options.part_size and await self._refresh(key):
            return BlobRef(blob_id, len(data))
        async with self._errors("put", blob_id):
            await self._client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return BlobRef(blob_id, len(data))

    async def put_stream(self, chunks: AsyncIterable[bytes]) -> BlobRef:
        with tempfile.SpooledTemporaryFile(max_size=self.options.spool_memory) as spool:
            hasher = hashlib.sha256()
            size = 0
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in chunks:
                if not chunk:
                    continue
                pending.append(bytes(chunk))
                pending_size += len(chunk)
                size += len(chunk)
                if pending_size >= self.options.chunk_size:
                    batch, pending, pending_size = pending, [], 0
                    await asyncio.to_thread(_spool, spool, hasher, batch)
            await asyncio.to_thread(_spool, spool, hasher, pending)
            pending = []
            blob_id = hasher.hexdigest()
            key = self.key(blob_id)
            if size > self.options.part_size:
                if not await self._refresh(key):
                    await self._multipart(key, blob_id, spool)
            else:
                spool.seek(0)
                body = spool.read()
                async with self._errors("put", blob_id):
                    await self._client.put_object(Bucket=self.bucket, Key=key, Body=body)
        return BlobRef(blob_id, size)

    async def _multipart(self, key: str, blob_id: str, spool: IO[bytes]) -> None:
        async with self._errors("put", blob_id):
            upload = await self._client.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            spool.seek(0)
            number = 1
            while part := await asyncio.to_thread(spool.read, self.options.part_size):
                async with self._errors("put", blob_id):
                    sent = await self._client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id,
                        PartNumber=number, Body=part)
                parts.append({"PartNumber": number, "ETag": sent["ETag"]})
                number += 1
                del part
            async with self._errors("put", blob_id):
                await self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id))
            raise

    async def _refresh(self, key: str) -> bool:
        """If the object exists, bump its LastModified (a copy onto itself) and say so."""
        try:
            await self._client.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE")
        except ClientError as e:
            if _code(e) in _NOT_FOUND:
                return False
            raise BlobError(f"s3 refresh {key}: {_code(e)}") from e
        except BotoCoreError as e:
            raise BlobError(f"s3 refresh {key}: {e}") from e
        log.debug("blob %s already stored", key)
        return True

    async def delete(self, blob_id: str) -> None:
        async with self._errors("delete", blob_id):
            await self._client.delete_object(Bucket=self.bucket, Key=self.key(blob_id))

    async def delete_if_older(self, blob_id: str, cutoff: float) -> bool:
        try:
            modified = await self.modified(blob_id)
        except BlobNotFound:
            return False
        if modified >= cutoff:
            return False
        await self.delete(blob_id)
        return True

    # -- reads ----------------------------------------------------------------

    async def get(self, blob_id: str) -> bytes:
        async with self._errors("get", blob_id):
            resp = await self._client.get_object(Bucket=self.bucket, Key=self.key(blob_id))
            body = resp["Body"]
            try:
                data: bytes = await body.read()
            finally:
                body.close()
        return data

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        check_range(start, end)
        parts = [chunk async for chunk in self.open(blob_id, start, end)]
        return b"".join(parts)

    async def open(self, blob_id: str, start: int = 0,
                   end: int | None = None) -> AsyncIterator[bytes]:
        check_range(start, end)
        key = self.key(blob_id)
        if end is not None and end == start:
            await self.size(blob_id)  # absent blobs still raise
            return
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            async with self._errors("get", blob_id):
                resp = await self._client.get_object(**args)
        except BlobError as e:
            if isinstance(e.__cause__, ClientError) and _code(e.__cause__) == "InvalidRange":
                await self.size(blob_id)  # past the end: empty, if the blob exists
                return
            raise
        body = resp["Body"]
        try:
            while True:
                async with self._errors("get", blob_id):
                    chunk = await body.read(self.options.chunk_size)
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def exists(self, blob_id: str) -> bool:
        try:
            await self._head(blob_id)
        except BlobNotFound:
            return False
        return True

    async def size(self, blob_id: str) -> int:
        return int((await self._head(blob_id))["ContentLength"])

    async def modified(self, blob_id: str) -> float:
        return float((await self._head(blob_id))["LastModified"].timestamp())

    async def _head(self, blob_id: str) -> dict[str, Any]:
        async with self._errors("head", blob_id):
            head: dict[str, Any] = await self._client.head_object(
                Bucket=self.bucket, Key=self.key(blob_id))
        return head

    async def list(self) -> AsyncIterator[tuple[str, float]]:
        prefix = self.options.prefix
        paginator = self._client.get_paginator("list_objects_v2")
        async with self._errors("list", ""):
            pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix, PaginationConfig={
                "PageSize": self.options.list_page_size})
            async for page in pages:
                for obj in page.get("Contents", ()):
                    name = obj["Key"][len(prefix):]
                    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
                        yield name, float(obj["LastModified"].timestamp())

    async def release_space(self) -> None:
        """Nothing to give back: S3 frees a deleted object's space itself."""

    async def close(self) -> None:
        await self._stack.aclose()

    @contextlib.asynccontextmanager
    async def _errors(self, op: str, blob_id: str) -> AsyncIterator[None]:
        """botocore errors become BlobNotFound or BlobError (backend errors stay inside)."""
        try:
            yield
        except ClientError as e:
            code = _code(e)
            if code in _NOT_FOUND and op != "list":
                raise BlobNotFound(blob_id) from None
            raise BlobError(f"s3 {op} {blob_id}: {code}") from e
        except BotoCoreError as e:
            raise BlobError(f"s3 {op} {blob_id}: {e}") from e


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _spool(spool: IO[bytes], hasher: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)
        spool.write(chunk)
