"""FETCH attributes (RFC 9051 §6.4.5, §9 ``fetch-att``): macros, BODY[section]<partial>,
BODY.PEEK, BINARY[...] / BINARY.PEEK / BINARY.SIZE (RFC 3516 §4.2), MODSEQ (RFC 7162),
EMAILID / THREADID (RFC 8474), SAVEDATE (RFC 8514), PREVIEW (RFC 8970)."""

from __future__ import annotations

from dataclasses import dataclass

from server.imap.wire.lexer import MAX_NUMBER, Cursor
from server.imap.wire.values import render_astring

__all__ = [
    "FetchAttr", "Section", "FetchBody", "FetchBinarySize", "FetchPreview", "FetchItem",
    "fetch_att_list", "fetch_att", "render_fetch_items", "render_fetch_item", "MACROS",
]

SIMPLE = frozenset(
    {
        "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
        "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID", "MODSEQ", "EMAILID", "THREADID",
        "SAVEDATE",
    }
)
SECTION_TEXTS = ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME")


@dataclass(frozen=True, slots=True)
class FetchAttr:
    """An attribute without arguments, upper-cased (ENVELOPE, FLAGS, UID, ...)."""

    name: str


@dataclass(frozen=True, slots=True)
class Section:
    """section-spec (RFC 9051 §9): part numbers, then HEADER, HEADER.FIELDS(.NOT) with
    ``fields``, TEXT or MIME (MIME only after a part); all None/empty for the whole message."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()

    def render(self) -> bytes:
        out = b".".join(b"%d" % n for n in self.part)
        if self.text is not None:
            out += (b"." if self.part else b"") + self.text.encode("ascii")
            if self.fields:
                out += b" (" + b" ".join(
                    render_astring(f.encode("utf-8", "surrogateescape")) for f in self.fields
                ) + b")"
        return out


@dataclass(frozen=True, slots=True)
class FetchBody:
    """BODY[section]<partial>, BODY.PEEK, BINARY[part]<partial>, BINARY.PEEK.
    ``partial`` is (offset, length)."""

    section: Section
    peek: bool = False
    binary: bool = False
    partial: tuple[int, int] | None = None

    def response_name(self) -> bytes:
        """The item name in the FETCH response: no .PEEK, the origin octet only (§7.5.2)."""
        head = b"BINARY[" if self.binary else b"BODY["
        out = head + self.section.render() + b"]"
        if self.partial is not None:
            out += b"<%d>" % self.partial[0]
        return out


@dataclass(frozen=True, slots=True)
class FetchBinarySize:
    part: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FetchPreview:
    """PREVIEW, or PREVIEW (LAZY) (RFC 8970 §3)."""

    lazy: bool = False


FetchItem = FetchAttr | FetchBody | FetchBinarySize | FetchPreview

_ALL = (FetchAttr("FLAGS"), FetchAttr("INTERNALDATE"), FetchAttr("RFC822.SIZE"))
MACROS: dict[str, tuple[FetchItem, ...]] = {
    "ALL": (*_ALL, FetchAttr("ENVELOPE")),
    "FAST": _ALL,
    "FULL": (*_ALL, FetchAttr("ENVELOPE"), FetchAttr("BODY")),
}


def section_part(cur: Cursor) -> tuple[int, ...]:
    """section-part = nz-number *("." nz-number) (RFC 9051 §9)."""
    parts = [cur.nz_number(what="a part number")]
    while cur.peek() == b"." and cur.buf[cur.pos + 1 : cur.pos + 2].isdigit():
        cur.pos += 1
        parts.append(cur.nz_number(what="a part number"))
    return tuple(parts)


def section_spec(cur: Cursor) -> Section:
    """section = "[" [section-spec] "]"; the "[" is consumed by the caller."""
    part: tuple[int, ...] = ()
    if cur.peek().isdigit():
        part = section_part(cur)
        if not cur.take(b"."):
            cur.expect(b"]")
            return Section(part)
    for text in SECTION_TEXTS:
        if cur.take(text.encode()):
            break
    else:
        if part:
            raise cur.fail("expected HEADER, HEADER.FIELDS, TEXT or MIME after the part")
        cur.expect(b"]")
        return Section()
    if text == "MIME" and not part:
        raise cur.fail("MIME needs a part number")
    fields: tuple[str, ...] = ()
    if text.startswith("HEADER.FIELDS"):
        cur.sp()
        fields = header_list(cur)
    cur.expect(b"]")
    return Section(part, text, fields)


def header_list(cur: Cursor) -> tuple[str, ...]:
    """header-list = "(" header-fld-name *(SP header-fld-name) ")"."""
    return tuple(cur.items(cur.text_astring))


def _partial(cur: Cursor) -> tuple[int, int] | None:
    """partial = "<" number64 "." nz-number64 ">" (RFC 9051 §9)."""
    if not cur.take(b"<"):
        return None
    offset = cur.number(MAX_NUMBER, "a partial offset")
    cur.expect(b".")
    length = cur.nz_number(MAX_NUMBER, "a partial length")
    cur.expect(b">")
    return (offset, length)


def fetch_att(cur: Cursor) -> FetchItem:
    """fetch-att (RFC 9051 §9, RFC 3516 §4.2, RFC 7162 §3.1.4.1, RFC 8474, RFC 8970)."""
    for head, binary, peek in (
        (b"BODY.PEEK[", False, True), (b"BODY[", False, False),
        (b"BINARY.PEEK[", True, True), (b"BINARY[", True, False),
    ):
        if cur.take(head):
            if binary:
                part = () if cur.peek() == b"]" else section_part(cur)
                cur.expect(b"]")
                section = Section(part)
            else:
                section = section_spec(cur)
            return FetchBody(section, peek, binary, _partial(cur))
    if cur.take(b"BINARY.SIZE["):
        part = () if cur.peek() == b"]" else section_part(cur)
        cur.expect(b"]")
        return FetchBinarySize(part)
    name = cur.atom("a fetch attribute").upper()
    if name == "PREVIEW":
        if cur.buf[cur.pos : cur.pos + 2] == b" (" and cur.at(b" (LAZY)"):
            cur.pos += len(b" (LAZY)")
            return FetchPreview(lazy=True)
        return FetchPreview()
    if name not in SIMPLE:
        raise cur.fail(f"unknown fetch attribute {name[:40]}")
    return FetchAttr(name)


def fetch_att_list(cur: Cursor) -> tuple[FetchItem, ...]:
    """"ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"."""
    if cur.peek() == b"(":
        return tuple(cur.items(lambda: fetch_att(cur)))
    for macro, items_ in MACROS.items():
        if cur.take_keyword(macro.encode()):
            return items_
    return (fetch_att(cur),)


def render_fetch_item(item: FetchItem) -> bytes:
    if isinstance(item, FetchAttr):
        return item.name.encode("ascii")
    if isinstance(item, FetchPreview):
        return b"PREVIEW (LAZY)" if item.lazy else b"PREVIEW"
    if isinstance(item, FetchBinarySize):
        return b"BINARY.SIZE[" + b".".join(b"%d" % n for n in item.part) + b"]"
    head = (b"BINARY" if item.binary else b"BODY") + (b".PEEK" if item.peek else b"")
    out = head + b"[" + item.section.render() + b"]"
    if item.partial is not None:
        out += b"<%d.%d>" % item.partial
    return out


def render_fetch_items(items: tuple[FetchItem, ...]) -> bytes:
    return b"(" + b" ".join(render_fetch_item(i) for i in items) + b")"
