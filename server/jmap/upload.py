"""Upload (RFC 8620 section 6.1): ``POST /upload/{accountId}/`` streams the body into
the blob store and answers ``{accountId, blobId, type, size}`` (201).

The size cap (maxSizeUpload) is enforced before and while streaming: a Content-Length
over it is refused without reading a byte, and a body that grows past it (chunked, or a
Content-Length that lied) is cut off at the first chunk over the cap; nothing is stored
and the answer is 413 with a problem+json ``limit``.  At most maxConcurrentUpload
uploads per account run at once on a node process.

The blob then holds a temporary reference of the account (``fdb_layers.blobs.uploads``)
for :data:`UPLOAD_TTL` seconds: the collector leaves it alone, and only this account
may use it (Email/import, Email/set attachments, Blob/*), until an email refers to it
or the reference expires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response

from fdb_layers.blobs.refs import BlobBeingDeleted
from fdb_layers.blobs.uploads import add_upload
from fdb_layers.mail import Engine, StoreUnavailable, transact
from server.blobs import BlobStore
from server.blobs.base import BlobError
from server.directory.base import Principal

from .errors import PROBLEM_PREFIX
from .limits import InFlight
from .routes import PROBLEM_JSON, HttpRoute
from .session import account_id_of

UPLOAD_PATH = "/upload/{accountId}/"
UPLOAD_TTL = 24 * 3600.0  # RFC 8620 6.1: kept at least an hour; a day here
DEFAULT_TYPE = "application/octet-stream"
# A put racing the collector: wait so long between attempts, this many times.
_DELETING_RETRY = 0.05
_DELETING_ATTEMPTS = 20


class _TooLarge(Exception):
    pass


def _problem(status: int, type: str, detail: str, **extra: str) -> Response:
    body = {"type": type, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _too_large(cap: int) -> Response:
    return _problem(413, PROBLEM_PREFIX + "limit", f"the upload is larger than {cap} octets",
                    limit="maxSizeUpload")


async def _capped(chunks: AsyncIterator[bytes], cap: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise _TooLarge()
        yield chunk


class Upload:
    """The upload endpoint of one node process."""

    def __init__(self, engine: Engine, blobs: BlobStore, *, max_size: int, max_concurrent: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine, self.blobs, self.max_size = engine, blobs, max_size
        self.in_flight = InFlight(max_concurrent)
        self.clock = clock

    def route(self) -> HttpRoute:
        return HttpRoute(UPLOAD_PATH, "upload", self.handle, ("POST",))

    async def handle(self, request: HttpRequest, principal: Principal) -> Response:
        account_id = request.path_params["accountId"]
        if account_id != account_id_of(principal):  # another's account is as absent as none
            return _problem(404, "about:blank", "no such account")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_size:
            return _too_large(self.max_size)
        if not self.in_flight.acquire(account_id):
            return _problem(429, PROBLEM_PREFIX + "limit", "too many uploads in progress",
                            limit="maxConcurrentUpload")
        try:
            try:
                ref = await self.blobs.put_stream(_capped(request.stream(), self.max_size))
            except _TooLarge:
                return _too_large(self.max_size)
            except (BlobError, OSError):
                return _problem(503, "about:blank", "the blob store is unavailable")
            try:
                await reference_upload(self.engine, account_id, ref.id, ref.size,
                                       self.clock() + UPLOAD_TTL)
            except StoreUnavailable:
                return _problem(503, "about:blank", "the store is unavailable")
        finally:
            self.in_flight.release(account_id)
        kind = request.headers.get("content-type", "") or DEFAULT_TYPE
        return JSONResponse({"accountId": account_id, "blobId": ref.id, "type": kind,
                             "size": ref.size}, status_code=201)


async def reference_upload(engine: Engine, account_id: str, blob_id: str, size: int,
                           expires: float) -> None:
    """The temporary reference of a blob just put (HTTP upload, Blob/upload).  While the
    collector is deleting that blob (it was put just now, so the collector keeps it and
    clears its marker), wait a little; StoreUnavailable if that does not end."""
    for _ in range(_DELETING_ATTEMPTS):
        try:
            await transact(engine, add_upload, account_id, blob_id, size, expires)
            return
        except BlobBeingDeleted:
            await asyncio.sleep(_DELETING_RETRY)
    raise StoreUnavailable(f"blob {blob_id} stays marked for deletion")
