"""The body of an Email as JMAP shows it (RFC 8621 section 4.1.4): EmailBodyPart objects
for bodyStructure, textBody, htmlBody and attachments, and EmailBodyValue objects for
bodyValues, from the summary stored at delivery and byte ranges of the message's blob.

The summary holds every part's offsets and the text/HTML/attachment choice of section
4.1.4 (``server.mime.bodies``); only the header fields a client asks for and the text of
body values are read from the blob, range by range, through a :class:`RangeReader`.

A part's blobId is the message's blob id, ``_`` and the part id with its dots as ``_``
(``<sha256>_1_2``): ids use the base64url alphabet (RFC 8620 section 1.2), and
:func:`split_part_blob_id` finds the part again for a download."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from server.mime import MessageSummary, Part, header_fields
from server.mime.charsets import lookup_charset, surrogate_text
from server.mime.transfer import decode_transfer

from .errors import invalid_arguments
from .headers import HeaderProperty, header_value, parse_header_property, raw_headers
from .json import JsonObject, JsonValue

# Section 4.2: the bodyProperties when the client gives none.
DEFAULT_BODY_PROPERTIES = ("partId", "blobId", "size", "name", "type", "charset",
                           "disposition", "cid", "language", "location")
BODY_PROPERTIES = (*DEFAULT_BODY_PROPERTIES, "headers", "subParts")
_HEX = frozenset("0123456789abcdef")


class RangeReader(Protocol):
    """Octets ``[start, end)`` of one message (its blob)."""

    async def read(self, start: int, end: int) -> bytes: ...


class BytesReader:
    """A :class:`RangeReader` over a message held in memory (Email/parse, tests)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    async def read(self, start: int, end: int) -> bytes:
        return self.raw[start:end]


def part_blob_id(blob_id: str, part: Part) -> str:
    return f"{blob_id}_{part.path.replace('.', '_')}"


def split_part_blob_id(blob_id: str) -> tuple[str, str | None]:
    """(message blob id, part id or None) of a blob id from :func:`part_blob_id`."""
    head, sep, tail = blob_id.partition("_")
    if not sep:
        return blob_id, None
    return head, tail.replace("_", ".")


def body_properties_arg(value: JsonValue) -> tuple[tuple[str, ...], dict[str, HeaderProperty]]:
    """``bodyProperties`` (section 4.2): the names, and the parsed ``header:`` ones."""
    if value is None:
        return DEFAULT_BODY_PROPERTIES, {}
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_arguments("'bodyProperties' must be an array of strings or null")
    names = tuple(dict.fromkeys(v for v in value if isinstance(v, str)))
    headers: dict[str, HeaderProperty] = {}
    for name in names:
        parsed = parse_header_property(name)
        if parsed is not None:
            headers[name] = parsed
        elif name not in BODY_PROPERTIES:
            raise invalid_arguments(f"unknown body property {name!r}")
    return names, headers


def _text(value: str | None) -> str | None:
    return surrogate_text(value).strip() or None if value is not None else None


@dataclass
class BodyView:
    """One message's body parts rendered with the client's ``bodyProperties``."""

    summary: MessageSummary
    blob_id: str
    reader: RangeReader
    properties: Sequence[str] = DEFAULT_BODY_PROPERTIES
    header_properties: dict[str, HeaderProperty] = field(default_factory=dict)
    _children: list[list[int]] = field(default_factory=list)
    _fields: dict[int, list[tuple[str, bytes]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = self.summary.parts
        self._children = [[] for _ in parts]
        for i, p in enumerate(parts):
            if p.parent >= 0 and not p.is_message:
                self._children[p.parent].append(i)

    def is_container(self, index: int) -> bool:
        """A multipart with parts (a multipart/* EmailBodyPart); every other part is a
        leaf, message/rfc822 ones included (section 4.1.4)."""
        return self.summary.parts[index].is_multipart and bool(self._children[index])

    async def fields(self, index: int) -> list[tuple[str, bytes]]:
        """The header fields of parts[index] (the message header for the top part)."""
        if index not in self._fields:
            part = self.summary.parts[index]
            raw = await self.reader.read(part.header_start, part.body_start)
            self._fields[index] = header_fields(raw)
        return self._fields[index]

    async def part(self, index: int, *, structure: bool = False) -> JsonObject:
        """The EmailBodyPart of parts[index]; with ``structure``, its subParts always
        (bodyStructure is a tree whatever the bodyProperties)."""
        p = self.summary.parts[index]
        container = self.is_container(index)
        out: JsonObject = {}
        for name in self.properties:
            if name == "partId":
                out[name] = None if container else p.path
            elif name == "blobId":
                out[name] = None if container else part_blob_id(self.blob_id, p)
            elif name == "size":
                out[name] = p.size if container else p.decoded_size
            elif name == "headers":
                out[name] = raw_headers(await self.fields(index))
            elif name == "name":
                out[name] = p.name
            elif name == "type":
                out[name] = p.media_type
            elif name == "charset":
                out[name] = p.charset
            elif name == "disposition":
                out[name] = p.disposition
            elif name == "cid":
                out[name] = p.cid
            elif name == "language":
                out[name] = list[JsonValue](p.language) if p.language else None
            elif name == "location":
                out[name] = _text(p.location)
            elif name in self.header_properties:
                out[name] = header_value(self.header_properties[name], await self.fields(index))
        if structure or "subParts" in self.properties:
            out["subParts"] = [await self.part(i, structure=structure)
                               for i in self._children[index]] if container else None
        return out

    async def structure(self) -> JsonObject:
        return await self.part(0, structure=True)

    async def parts(self, indices: Sequence[int]) -> list[JsonValue]:
        return [await self.part(i) for i in indices]

    def value_parts(self, text: bool, html: bool, every: bool) -> list[int]:
        """The parts whose values ``fetchTextBodyValues``, ``fetchHTMLBodyValues`` and
        ``fetchAllBodyValues`` ask for (section 4.2): text/* parts only."""
        s = self.summary
        wanted: list[int] = []
        if text:
            wanted.extend(s.text_body)
        if html:
            wanted.extend(s.html_body)
        if every:
            wanted.extend(i for i, p in enumerate(s.parts)
                          if p.type == "text" and not self.is_container(i)
                          and self._in_body(i))
        return [i for i in dict.fromkeys(wanted) if s.parts[i].type == "text"]

    def _in_body(self, index: int) -> bool:
        """Whether parts[index] is in bodyStructure (not inside an attached message)."""
        parts = self.summary.parts
        i = parts[index].parent
        while i >= 0:
            if parts[i].type == "message" and not parts[i].is_multipart:
                return False
            i = parts[i].parent
        return True

    async def values(self, indices: Sequence[int], max_bytes: int) -> JsonObject:
        out: JsonObject = {}
        for i in indices:
            p = self.summary.parts[i]
            out[p.path] = body_value(await self.reader.read(p.body_start, p.body_end), p,
                                     max_bytes)
        return out


def body_value(body: bytes, part: Part, max_bytes: int) -> JsonObject:
    """An EmailBodyValue (section 4.1.4): the text of a part's raw body, transfer and
    charset decoded; ``isEncodingProblem`` when its charset is unknown, its transfer
    encoding is broken or its octets are not valid in its charset; cut to ``max_bytes``
    UTF-8 octets (0: no cut) without splitting a character."""
    data = decode_transfer(body, part.encoding)
    codec = lookup_charset(part.charset) if part.charset else "utf-8"
    problem = codec is None or _damaged(body, part.encoding)
    try:
        text = data.decode(codec or "utf-8")
    except (UnicodeDecodeError, LookupError):
        text, problem = data.decode(codec or "utf-8", "replace"), True
    text = text.replace("\x00", "")
    truncated = False
    if max_bytes > 0:
        encoded = text.encode("utf-8", "surrogatepass")
        if len(encoded) > max_bytes:
            text = encoded[:max_bytes].decode("utf-8", "ignore")
            truncated = True
    return {"value": text, "isEncodingProblem": problem, "isTruncated": truncated}


_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/=\s]")
_QP_JUNK = re.compile(rb"=(?![0-9A-Fa-f]{2}|[ \t]*\r?\n|[ \t]*\Z)")


def _damaged(body: bytes, encoding: str) -> bool:
    """Whether the transfer encoding of ``body`` is broken (octets that are not base64,
    "=" escapes that are not quoted-printable): what was decoded is a guess."""
    if encoding == "base64":
        return _BASE64_JUNK.search(body) is not None
    if encoding == "quoted-printable":
        return _QP_JUNK.search(body) is not None
    return False


def is_blob_hex(value: str) -> bool:
    return len(value) == 64 and set(value) <= _HEX
