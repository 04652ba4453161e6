"""Downloading blobs (RFC 8620 section 6.2):
``GET /download/{accountId}/{blobId}/{name}?accept={type}``.

A blob is readable by an account when one of the account's emails is that message
(the mail layer's :func:`find_email_of_blob`), or is a part of such a message
(``<sha256>_<part id>``, see :mod:`.email_body`): a part is served with its
Content-Transfer-Encoding removed.  Anything else, another account's blob included, is
404, the same answer as a blob that does not exist.

Blobs never change, so responses may be cached for good; a ``Range: bytes=`` request
is answered 206 with the octets read by a range read of the blob store (a part with a
transfer encoding is decoded first, then cut).  Several ranges in one request are
answered with the whole blob, as RFC 9110 section 14.2 allows a server to ignore
Range."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request as HttpRequest
from starlette.responses import Response, StreamingResponse

from fdb_layers.blobs.uploads import get_upload
from fdb_layers.mail import Transaction, find_email_of_blob, get_summary
from server.blobs import BlobStore
from server.blobs.base import BlobError
from server.directory.base import Principal
from server.mime import MessageSummary, Part, part_bytes

from .email_body import is_blob_hex, split_part_blob_id
from .email_get import load_summary
from .mail import MailStore
from .routes import HttpRoute
from .session import account_id_of

DOWNLOAD_PATH = "/download/{accountId}/{blobId}/{name}"
CACHE = "private, immutable, max-age=31536000"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# a media type with parameters (RFC 9110 section 8.3.1), no quoted strings: what ?accept=
# may set as the Content-Type, nothing that could reach another header line
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}={_TOKEN})*")
_IDENTITY = frozenset({"7bit", "8bit", "binary"})


@dataclass(frozen=True, slots=True)
class Found:
    """A readable blob: the stored blob, and the part of it when it is a part's."""

    blob_id: str
    part: Part | None
    type: str


async def find_blob(tr: Transaction, account_id: str, blob_id: str) -> Found | None:
    """The blob ``blob_id`` if the account may read it (a blob it uploaded, an email of
    it, or a part of such an email); None otherwise."""
    sha, part_id = split_part_blob_id(blob_id)
    if not is_blob_hex(sha):
        return None
    email = await find_email_of_blob(tr, account_id, sha)
    if email is None:
        if part_id is None and await get_upload(tr, account_id, sha) is not None:
            return Found(sha, None, "application/octet-stream")
        return None
    if part_id is None:
        return Found(sha, None, "message/rfc822")
    summary: MessageSummary | None = load_summary(await get_summary(tr, account_id, email.id))
    part = summary.part(part_id) if summary is not None else None
    if part is None or (part.is_multipart and summary is not None
                        and summary.children(summary.parts.index(part))):
        return None
    return Found(sha, part, part.media_type)


async def read_found(blobs: BlobStore, found: Found, offset: int = 0,
                     length: int | None = None) -> tuple[bytes, int]:
    """(the octets from ``offset``, at most ``length`` of them; the whole size) of a
    readable blob, a part with its Content-Transfer-Encoding removed as a download
    serves it (Blob/get and Blob/upload's sources read blobs and parts alike)."""
    part = found.part
    if part is not None and part.encoding not in _IDENTITY:
        data = part_bytes(await blobs.read_range(found.blob_id, part.body_start,
                                                 part.body_end), part)
        end = len(data) if length is None else min(len(data), offset + length)
        return data[offset:end], len(data)
    start, size = (0, await blobs.size(found.blob_id)) if part is None \
        else (part.body_start, part.size)
    end = size if length is None else min(size, offset + length)
    if end <= offset:
        return b"", size
    return await blobs.read_range(found.blob_id, start + offset, start + end), size


def content_disposition(name: str) -> str:
    """``attachment`` with the file name (RFC 6266 section 4.3): an ASCII ``filename``
    for old clients and ``filename*`` in UTF-8 (RFC 8187) for the real name."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else "_" for c in name)
    quoted = urllib.parse.quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quoted}"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | Literal[False]:
    """``[start, end)`` of a single ``bytes=`` range (RFC 9110 section 14.1.2); None
    when the whole blob is to be sent (no Range, several ranges, another unit); False
    when the range cannot be satisfied."""
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:  # the last N octets
        suffix = int(last)
        return (max(0, size - suffix), size) if suffix > 0 and size > 0 else False
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    if start >= size or (last and int(last) < start):
        return False
    return start, end


class Downloads:
    """The download endpoint over the mail store and the blob store."""

    def __init__(self, store: MailStore, blobs: BlobStore) -> None:
        self.store, self.blobs = store, blobs

    def endpoint(self) -> HttpRoute:
        return HttpRoute(DOWNLOAD_PATH, "download", self.download)

    async def download(self, request: HttpRequest, principal: Principal) -> Response:
        account_id = request.path_params["accountId"]
        blob_id = request.path_params["blobId"]
        if account_id != account_id_of(principal):
            return _not_found()
        found = await self.store.run(account_id, find_blob, blob_id)
        if found is None:
            return _not_found()
        accept = request.query_params.get("accept", "")
        # RFC 8620 section 6.2: type is "The type for the server to set in the
        # Content-Type header of the response": the client's, as it gave it
        given = _MEDIA_TYPE.fullmatch(accept) is not None
        media = accept if given else found.type
        charset = found.part.charset if found.part is not None else None
        if not given and media.lower().startswith("text/") and "charset" not in media.lower():
            # no usable type given: the octets are served as they are, with their charset
            media = f"{media}; charset={charset or 'us-ascii'}"
        # set as a header, not Starlette's media_type (which adds "; charset=utf-8" to
        # any text/* type without one)
        headers = {"Content-Type": media,
                   "Content-Disposition": content_disposition(request.path_params["name"]),
                   "Cache-Control": CACHE, "Accept-Ranges": "bytes",
                   "ETag": f'"{blob_id}"', "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match", "").strip() in (headers["ETag"], "*"):
            # blobs never change; no representation metadata (RFC 9110 section 15.4.5)
            return Response(status_code=304, headers={
                k: v for k, v in headers.items() if k != "Content-Type"})
        try:
            if found.part is not None and found.part.encoding not in _IDENTITY:
                data = await self._decoded(found.part, found.blob_id)
                return _bytes_response(data, request, headers)
            start, size = await self._extent(found)
        except BlobError:
            return _not_found()
        wanted = parse_range(request.headers.get("range"), size)
        if wanted is False:
            return Response(status_code=416, headers={**headers,
                                                      "Content-Range": f"bytes */{size}"})
        first, end = wanted if isinstance(wanted, tuple) else (0, size)
        if isinstance(wanted, tuple):
            headers["Content-Range"] = f"bytes {first}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - first)
        body = self._stream(found.blob_id, start + first, start + end)
        return StreamingResponse(body, status_code=206 if isinstance(wanted, tuple) else 200,
                                 headers=headers)

    async def _extent(self, found: Found) -> tuple[int, int]:
        """(offset in the stored blob, size) of what is downloaded."""
        if found.part is None:
            return 0, await self.blobs.size(found.blob_id)
        return found.part.body_start, found.part.size

    async def _decoded(self, part: Part, blob_id: str) -> bytes:
        return part_bytes(await self.blobs.read_range(blob_id, part.body_start, part.body_end),
                          part)

    async def _stream(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        if end > start:
            async for chunk in self.blobs.open(blob_id, start, end):
                yield chunk


def _bytes_response(data: bytes, request: HttpRequest,
                    headers: dict[str, str]) -> Response:
    wanted = parse_range(request.headers.get("range"), len(data))
    if wanted is False:
        return Response(status_code=416,
                        headers={**headers, "Content-Range": f"bytes */{len(data)}"})
    if wanted is None:
        return Response(data, headers=headers)
    start, end = wanted
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
    return Response(data[start:end], status_code=206, headers=headers)


def _not_found() -> Response:
    return Response(b"no such blob\n", status_code=404, media_type="text/plain")
