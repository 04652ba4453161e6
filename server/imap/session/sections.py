"""The octets of a FETCH section: BODY[section]<partial> (RFC 9051 section 6.4.5) and
BINARY[part]<partial> / BINARY.SIZE[part] (RFC 3516 section 4.2).

The summary stored at delivery holds every part's offsets, so a section is one range read
of the blob (:meth:`BlobStore.read_range`): a 50 MB message is never read whole to serve one
small part.  Only HEADER.FIELDS(.NOT) filter what they read (the header alone) and BINARY
decodes the part it reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fdb_layers.mail import Email
from server.blobs import BlobStore
from server.imap.wire.fetch import FetchBinarySize, FetchBody, Section
from server.mime.model import MessageSummary
from server.mime.summary import parse_message
from server.mime.transfer import decode_transfer

from .errors import no

# RFC 2045 section 6.1; anything else is answered NO [UNKNOWN-CTE] (RFC 3516 section 4.3)
_IDENTITY = frozenset({"7bit", "8bit", "binary"})
_KNOWN = _IDENTITY | {"base64", "quoted-printable"}
_FIELD = re.compile(rb"^([^:\s]+)[ \t]*:")
_LINES = re.compile(rb"\r?\n(?![ \t])")


@dataclass(slots=True)
class Source:
    """One message's blob and summary; the summary is parsed from the blob only when the
    store has none (a message stored before summaries existed)."""

    blobs: BlobStore
    email: Email
    summary: MessageSummary | None

    async def structure(self) -> MessageSummary:
        if self.summary is None:
            self.summary = parse_message(await self.read(0, self.email.size))
        return self.summary

    async def read(self, start: int, end: int) -> bytes:
        end = min(end, self.email.size)
        if start >= end:
            return b""
        return await self.blobs.read_range(self.email.blob_id, start, end)


def _spec(section: Section, text: str | None) -> str:
    path = ".".join(str(n) for n in section.part)
    if text is None:
        return path
    return f"{path}.{text}" if path else text


def header_fields(header: bytes, names: tuple[str, ...], exclude: bool) -> bytes:
    """HEADER.FIELDS(.NOT): the header lines (with their continuations) whose field names are
    (not) among ``names``, compared case-insensitively, then the blank line (RFC 9051
    section 6.4.5: "the subset of the header ... and the delimiting blank line")."""
    wanted = {n.lower().encode("utf-8", "surrogateescape") for n in names}
    out = []
    for block in _LINES.split(header.rstrip(b"\r\n")):
        m = _FIELD.match(block)
        if m is not None and (m.group(1).lower() in wanted) != exclude:
            out.append(block.rstrip(b"\r") + b"\r\n")
    return b"".join(out) + b"\r\n"


def _cut(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    first, count = partial
    return data[first:first + count]


async def section_data(src: Source, request: FetchBody) -> bytes | None:
    """BODY[section]<partial>: the octets, or None (NIL) when the message has no such part."""
    if request.binary:
        return await binary_data(src, request.section.part, request.partial)
    sec = request.section
    text = sec.text
    filtered = text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT")
    if not sec.part and text is None:
        where: tuple[int, int] | None = (0, src.email.size)
    else:
        summary = await src.structure()
        where = summary.section(_spec(sec, "HEADER" if filtered else text))
    if where is None:
        return None
    start, end = where
    if filtered:
        header = await src.read(start, end)
        return _cut(header_fields(header, sec.fields, text == "HEADER.FIELDS.NOT"),
                    request.partial)
    if request.partial is not None:
        # RFC 9051 section 6.4.5: an origin past the end gives the empty string
        first, count = request.partial
        start, end = min(start + first, end), min(start + first + count, end)
    return await src.read(start, end)


async def _decoded(src: Source, part: tuple[int, ...]) -> bytes | None:
    """The part's body with its Content-Transfer-Encoding undone (RFC 3516 section 4.2);
    the whole message for ``BINARY[]``."""
    if not part:
        return await src.read(0, src.email.size)
    summary = await src.structure()
    found = summary.part(".".join(str(n) for n in part))
    if found is None:
        return None
    encoding = found.encoding.lower()
    if encoding not in _KNOWN:
        raise no(f"Unknown Content-Transfer-Encoding {encoding[:40]}", "UNKNOWN-CTE")
    raw = await src.read(found.body_start, found.body_end)
    return raw if encoding in _IDENTITY else decode_transfer(raw, encoding)


async def binary_data(src: Source, part: tuple[int, ...],
                      partial: tuple[int, int] | None) -> bytes | None:
    data = await _decoded(src, part)
    return None if data is None else _cut(data, partial)


async def binary_size(src: Source, request: FetchBinarySize) -> int | None:
    """BINARY.SIZE[part]: the decoded size, exact (decoding when the part is encoded)."""
    data = await _decoded(src, request.part)
    return None if data is None else len(data)
