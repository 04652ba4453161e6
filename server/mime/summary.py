"""parse_message: raw octets in, MessageSummary out, for any input, in linear time.

The scanner finds the entities and their offsets; this module turns each into a Part (content
header fields, line count, decoded size, and an Envelope for messages), chooses the JMAP bodies,
and builds the preview. Line counts of nested message/rfc822 parts overlap, so they come from one
running newline count over the sorted offsets instead of one count per part.
"""

from __future__ import annotations

import logging
from bisect import bisect_left

from server.mime.budget import SUMMARY_BUDGET, part_cost, slim_part
from server.mime.bodies import classify_bodies, counts_as_attachment
from server.mime.envelope import build_envelope
from server.mime.headers import FieldValues
from server.mime.model import MessageSummary, Part
from server.mime.params import Params, parse_params
from server.mime.preview import make_preview
from server.mime.structure import MAX_VALUE, Entity, scan_entities
from server.mime.transfer import base64_decoded_size

__all__ = ["parse_message"]

log = logging.getLogger(__name__)

_SPENT_CAP = 1_024


class _LineCounter:
    """Newlines before each of a set of offsets, from a single forward pass."""

    def __init__(self, buf: bytes, offsets: set[int]) -> None:
        self.points = sorted(offsets)
        self.before: list[int] = []
        count = 0
        last = 0
        for p in self.points:
            count += buf.count(b"\n", last, p)
            self.before.append(count)
            last = p

    def at(self, offset: int) -> int:
        return self.before[bisect_left(self.points, offset)]


def _counts_lines(ent: Entity) -> bool:
    return ent.type in ("text", "message")


def _disposition(text: str | None) -> tuple[str | None, Params]:
    if not text:
        return None, ()
    head, sep, rest = text.partition(";")
    kind = head.strip().lower() or None
    if kind is not None and (len(kind) > 64 or not kind.isascii()):
        kind = None
    return kind, parse_params(rest) if sep else ()


def _language(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    tags = [t.strip() for t in text.replace(";", ",").split(",")]
    return tuple(t for t in tags if t)[:16]


def _decoded_size(buf: bytes, ent: Entity, encoding: str) -> int:
    size = ent.body_end - ent.body_start
    if ent.expanded:
        return size
    if encoding == "base64":
        return base64_decoded_size(buf, ent.body_start, ent.body_end)
    if encoding == "quoted-printable":
        escapes = buf.count(b"=", ent.body_start, ent.body_end)
        soft = buf.count(b"=\r\n", ent.body_start, ent.body_end)
        return max(0, size - 2 * escapes - soft)
    return size


def _part(buf: bytes, ent: Entity, lines: int, cap: int) -> tuple[Part, bool]:
    f = FieldValues(buf, ent.fields, cap)
    encoding = (f.text("content-transfer-encoding") or "7bit").lower()
    if len(encoding) > 64 or not encoding.isascii():
        encoding = "7bit"
    disposition, disposition_params = _disposition(f.text("content-disposition"))
    envelope = build_envelope(buf, ent.fields, cap, ent.repeated) if ent.is_message else None
    part = Part(
        path=ent.path,
        parent=ent.parent,
        is_message=ent.is_message,
        header_start=ent.header_start,
        body_start=ent.body_start,
        body_end=ent.body_end,
        type=ent.type,
        subtype=ent.subtype,
        params=ent.params,
        encoding=encoding,
        id=f.text("content-id"),
        description=f.text("content-description"),
        md5=f.text("content-md5"),
        disposition=disposition,
        disposition_params=disposition_params,
        language=_language(f.text("content-language")),
        location=f.text("content-location"),
        lines=lines,
        decoded_size=_decoded_size(buf, ent, encoding),
        envelope=envelope,
    )
    return part, f.truncated or (envelope is not None and envelope.truncated)


def _preview_part(parts: list[Part], candidates: tuple[int, ...]) -> Part | None:
    """The first text/plain or text/html part of the bodies (inline images come first at times)."""
    for i in candidates:
        p = parts[i]
        if p.type == "text" and p.subtype in ("plain", "html"):
            return p
    return None


def parse_message(raw: bytes | bytearray | memoryview, *, fallback: bool = True) -> MessageSummary:
    """Parse raw message octets into a MessageSummary. Never raises for any input.

    Should a bug surface anyway, the error is logged and a summary treating the whole message
    as one opaque part is returned, so delivery never fails on parsing; fallback=False (for
    tests) lets the exception through instead.
    """
    buf = raw if isinstance(raw, bytes) else bytes(raw)
    if not fallback:
        return _summarize(buf)
    try:
        return _summarize(buf)
    except Exception:
        log.exception("MIME parsing failed; storing an opaque summary (%d octets)", len(buf))
        part = Part("1", -1, True, 0, 0, len(buf), "application", "octet-stream")
        return MessageSummary(size=len(buf), parts=(part,), truncated=True)


def _summarize(buf: bytes) -> MessageSummary:
    entities, truncated = scan_entities(buf)
    offsets: set[int] = set()
    for ent in entities:
        if _counts_lines(ent):
            offsets.add(ent.body_start)
            offsets.add(ent.body_end)
    counter = _LineCounter(buf, offsets)
    parts: list[Part] = []
    budget = SUMMARY_BUDGET
    for ent in entities:
        lines = 0
        if _counts_lines(ent) and ent.body_end > ent.body_start:
            lines = counter.at(ent.body_end) - counter.at(ent.body_start)
            if buf[ent.body_end - 1] != 10:
                lines += 1  # a last line without its line break still counts
        # once the budget is spent, read only short values: slimming keeps little anyway
        part, cut = _part(buf, ent, lines, MAX_VALUE if budget > 0 else _SPENT_CAP)
        cost = part_cost(part)
        if parts and cost > budget:
            part = slim_part(part)
            cost = part_cost(part)
            cut = True
        budget -= cost
        truncated = truncated or cut
        parts.append(part)
    text, html, attachments = classify_bodies(parts)
    preview = make_preview(buf, _preview_part(parts, text + html))
    return MessageSummary(
        size=len(buf),
        parts=tuple(parts),
        preview=preview,
        has_attachment=any(counts_as_attachment(parts[i]) for i in attachments),
        text_body=text,
        html_body=html,
        attachments=attachments,
        truncated=truncated,
    )
