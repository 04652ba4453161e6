"""The records of a parsed message: Envelope, Part and MessageSummary.

All offsets index the raw message as stored; a part's MIME header is raw[header_start:body_start]
(blank separator line included, as IMAP BODY[n.MIME] wants) and its body raw[body_start:body_end].

Part paths are IMAP section part numbers (RFC 9051 §6.4.5). Every message (the top level and each
message encapsulated in a message/rfc822 part) is also a Part with `is_message` set: a multipart
message has the path of its container ("" at the top, "3" inside part 3), a single-part message
is the part "1" (or "3.1") of its container. `section` resolves "1.2", "1.2.MIME", "3.HEADER"...
"""

from __future__ import annotations

from dataclasses import dataclass

from server.mime.addresses import AddressList, parse_msg_ids
from server.mime.charsets import surrogate_text
from server.mime.encoded_words import decode_words
from server.mime.params import Params, decode_params

__all__ = ["Envelope", "Part", "MessageSummary", "FORMAT_VERSION"]

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Envelope:
    """RFC 5322 header fields of one message, as written (unfolded; encoded words kept).

    `date` is the raw Date value and `timestamp` its UTC POSIX time (None if absent or invalid).
    `truncated` is set when a value was longer than the cap and was cut.
    """

    date: str | None = None
    timestamp: int | None = None
    subject: str | None = None
    from_: AddressList = ()
    sender: AddressList = ()
    reply_to: AddressList = ()
    to: AddressList = ()
    cc: AddressList = ()
    bcc: AddressList = ()
    in_reply_to: str | None = None
    message_id: str | None = None
    references: str | None = None
    truncated: bool = False
    # Fields that occur more than once (lowercase names).  The values above are the
    # first instances (IMAP's ENVELOPE); JMAP's convenience properties take the last
    # (RFC 8621 section 4.1.3) and read the header again only for these.
    repeated: tuple[str, ...] = ()

    @property
    def decoded_subject(self) -> str | None:
        return decode_words(self.subject).strip() if self.subject is not None else None

    @property
    def message_ids(self) -> tuple[str, ...]:
        return parse_msg_ids(surrogate_text(self.message_id or ""))

    @property
    def in_reply_to_ids(self) -> tuple[str, ...]:
        return parse_msg_ids(surrogate_text(self.in_reply_to or ""))

    @property
    def reference_ids(self) -> tuple[str, ...]:
        return parse_msg_ids(surrogate_text(self.references or ""))


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity with its offsets and content header fields (RFC 2045, 2183, 3066, 2557).

    type/subtype/encoding/disposition are lowercased; params keep RFC 2231 sections as written.
    `lines` counts body lines for text/* and message/* (IMAP body-fld-lines), else 0.
    `decoded_size` is the body size after transfer decoding (JMAP EmailBodyPart.size), counted
    without decoding: exact for well-formed base64 and quoted-printable, close otherwise (IMAP
    BINARY.SIZE wanting exactness on damaged bodies must decode).
    id, description, md5 and location are raw header text (encoded words kept), like the
    envelope strings; `cid`, `name` and `charset` give the decoded forms JMAP needs.
    """

    path: str
    parent: int
    is_message: bool
    header_start: int
    body_start: int
    body_end: int
    type: str = "text"
    subtype: str = "plain"
    params: Params = ()
    encoding: str = "7bit"
    id: str | None = None
    description: str | None = None
    md5: str | None = None
    disposition: str | None = None
    disposition_params: Params = ()
    language: tuple[str, ...] = ()
    location: str | None = None
    lines: int = 0
    decoded_size: int = 0
    envelope: Envelope | None = None

    @property
    def size(self) -> int:
        """Body size in octets as stored (IMAP body-fld-octets)."""
        return self.body_end - self.body_start

    @property
    def media_type(self) -> str:
        return f"{self.type}/{self.subtype}"

    @property
    def is_multipart(self) -> bool:
        return self.type == "multipart"

    @property
    def charset(self) -> str | None:
        """Declared charset; text/* without one is us-ascii (RFC 2045 §5.2)."""
        value = decode_params(self.params).get("charset")
        if value:
            return value.lower()
        return "us-ascii" if self.type == "text" else None

    @property
    def name(self) -> str | None:
        """File name: Content-Disposition filename, else Content-Type name (RFC 2231 decoded)."""
        name = decode_params(self.disposition_params).get("filename")
        if not name:
            name = decode_params(self.params).get("name")
        return name or None

    @property
    def cid(self) -> str | None:
        """Content-ID without angle brackets."""
        if self.id is None:
            return None
        cid = surrogate_text(self.id).strip()
        if cid.startswith("<") and cid.endswith(">"):
            cid = cid[1:-1].strip()
        return cid or None

    @property
    def header_range(self) -> tuple[int, int]:
        return self.header_start, self.body_start

    @property
    def body_range(self) -> tuple[int, int]:
        return self.body_start, self.body_end


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """Everything later reads need about a message without reading its blob.

    parts[0] is the top-level message. text_body, html_body and attachments hold indices into
    parts chosen as in RFC 8621 §4.1.4. `truncated` says that a cap (parts, depth, header
    value length) cut something off; the offsets recorded are still exact.
    """

    size: int
    parts: tuple[Part, ...]
    preview: str = ""
    has_attachment: bool = False
    text_body: tuple[int, ...] = ()
    html_body: tuple[int, ...] = ()
    attachments: tuple[int, ...] = ()
    truncated: bool = False
    version: int = FORMAT_VERSION

    def to_bytes(self) -> bytes:
        """Compact versioned encoding for the store (see server.mime.serialize)."""
        from server.mime.serialize import summary_to_bytes

        return summary_to_bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageSummary:
        """Inverse of to_bytes; ValueError when data is damaged or from a newer format."""
        from server.mime.serialize import summary_from_bytes

        return summary_from_bytes(data)

    @property
    def root(self) -> Part:
        return self.parts[0]

    @property
    def envelope(self) -> Envelope:
        return self.parts[0].envelope or Envelope()

    @property
    def header_end(self) -> int:
        """Offset where the top-level body starts: BODY[HEADER] is raw[:header_end]."""
        return self.parts[0].body_start

    def children(self, index: int) -> list[int]:
        """Indices of the direct children of parts[index], in order."""
        return [i for i in range(index + 1, len(self.parts)) if self.parts[i].parent == index]

    def leaves(self) -> tuple[Part, ...]:
        """JMAP leaf parts of the top-level message, in order (RFC 8621 §4.1.4): every part that
        is not a multipart with parts. A message/rfc822 part is a leaf; its insides are not."""
        out: list[Part] = []
        inside: set[int] = set()
        for i, p in enumerate(self.parts):
            if p.parent in inside or (p.is_message and i > 0):
                inside.add(i)
                continue
            if p.is_multipart and i + 1 < len(self.parts) and self.parts[i + 1].parent == i:
                continue
            out.append(p)
        return tuple(out)

    @property
    def attachment_parts(self) -> tuple[Part, ...]:
        """Parts listed as JMAP attachments (part id = path, name, media type, decoded size)."""
        return tuple(self.parts[i] for i in self.attachments)

    def part(self, path: str) -> Part | None:
        """The body part numbered path ("1", "1.2"); None when there is no such part."""
        found = self._find(path)
        return self.parts[found] if found is not None else None

    def _find(self, path: str) -> int | None:
        for i, p in enumerate(self.parts):
            if p.path != path:
                continue
            # a multipart message shares its path with its message/rfc822 container
            if p.is_message and p.parent >= 0 and self.parts[p.parent].path == path:
                continue
            return i
        return None

    def section(self, spec: str) -> tuple[int, int] | None:
        """Byte range [start, end) of an IMAP section-spec without HEADER.FIELDS (RFC 9051 §6.4.5).

        "" is the whole message, "HEADER"/"TEXT" the top-level header/body, "1.2" a part body,
        "1.2.MIME" its MIME header, "3.HEADER"/"3.TEXT" those of the message in message part 3.
        HEADER.FIELDS callers take the HEADER range and filter with `header_fields`.
        """
        spec = spec.upper()
        if spec == "":
            return 0, self.size
        if spec[0].isdigit():
            head, dot, tail = spec.rpartition(".")
            path, text = (head, tail) if dot and not tail.isdigit() else (spec, "")
        else:
            path, text = "", spec
        if path == "":
            if text == "HEADER":
                return 0, self.parts[0].body_start
            if text == "TEXT":
                return self.parts[0].body_start, self.parts[0].body_end
            return None
        index = self._find(path)
        if index is None:
            return None
        part = self.parts[index]
        if text == "":
            return part.body_range
        if text == "MIME":
            return part.header_range
        if text in ("HEADER", "TEXT") and part.type == "message":
            inner = index + 1
            if inner < len(self.parts) and self.parts[inner].parent == index:
                msg = self.parts[inner]
                return msg.header_range if text == "HEADER" else msg.body_range
        return None
