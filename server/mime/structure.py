"""The MIME part scanner: one linear pass over the raw message, recording offsets.

The scanner is iterative. It keeps a stack of open entities and a stack of open multipart
contexts, and looks only at lines that begin with "--" plus the prefix all open boundaries share,
while any multipart is open (RFC 2046 §5.1.1). Such a line is compared, by one dictionary
lookup, with the boundaries of every open multipart, innermost first, so a delimiter of an outer
multipart also ends inner entities whose own closing delimiter is missing, and a 10,000-deep nest
costs no more than a flat message. The line break before a delimiter belongs to the delimiter,
so it is not part of the body it ends. Matching is strict: "--b" followed by anything but
"--" and white space is not a delimiter of "b".

Entities deeper than MAX_DEPTH, beyond MAX_PARTS, multiparts without a usable boundary, and
message/rfc822 parts with an encoded body are kept as opaque leaves.

Costs stay linear with a small constant on hostile input: after WASTE_LIMIT look-alike lines
the search moves into a regex (_delimiter_regex); header fields are read line by line only up
to a message-wide FIELD_BUDGET (see headers.scan_header).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from server.mime.encoded_words import header_text
from server.mime.headers import MAX_FIELDS, FieldSpan, names_regex, scan_header
from server.mime.params import Params, decode_params, parse_content_type

__all__ = ["Entity", "scan_entities", "MAX_DEPTH", "MAX_PARTS", "MAX_VALUE", "WANTED"]

MAX_DEPTH = 100
MAX_PARTS = 1_000
MAX_VALUE = 8_192
MAX_BOUNDARY = 200
FIELD_BUDGET = 20_000  # header fields scanned line by line in one message
MIN_FIELDS = 64  # ...and in any one header
WASTE_LIMIT = 256  # look-alike delimiter lines tolerated before switching to _delimiter_regex

# Header fields the summary reads; others are only reachable through header_fields().
WANTED = frozenset(
    {
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "content-id",
        "content-description",
        "content-md5",
        "content-language",
        "content-location",
        "date",
        "subject",
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "in-reply-to",
        "message-id",
        "references",
    }
)
_WANTED_RE = names_regex(WANTED)
_ENCAPSULATING = frozenset({"rfc822", "global"})
_IDENTITY = frozenset({"7bit", "8bit", "binary", ""})
_TRAILING_WSP = re.compile(rb"[ \t]*")


@dataclass(slots=True)
class Entity:
    """A MIME entity found by the scanner (mutable while scanning)."""

    path: str
    parent: int
    is_message: bool
    depth: int
    header_start: int
    body_start: int
    body_end: int = -1
    fields: dict[str, FieldSpan] = field(default_factory=dict)
    repeated: tuple[str, ...] = ()  # names of WANTED fields that occur more than once
    type: str = "text"
    subtype: str = "plain"
    params: Params = ()
    expanded: bool = False
    children: int = 0


@dataclass(slots=True)
class _Context:
    boundary: bytes
    entity: int
    open_len: int
    children: int = 0


def _field_text(buf: bytes, f: FieldSpan) -> str:
    return header_text(buf[f.value_start : min(f.end, f.value_start + MAX_VALUE)]).strip()


class _Scanner:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.n = len(buf)
        self.entities: list[Entity] = []
        self.open: list[int] = []
        self.contexts: list[_Context] = []
        self.bounds: dict[bytes, list[int]] = {}
        self.maxlen = 0
        self.needle = b"\n--"
        self.wasted = 0
        self.field_budget = FIELD_BUDGET
        self.truncated = False

    # -- boundaries ---------------------------------------------------------------------
    def match(self, pos: int, line_end: int) -> tuple[int, bool] | None:
        """If the line at pos is a delimiter of an open multipart: (context index, is_close)."""
        if not self.bounds:
            return None
        buf = self.buf
        window = min(line_end, pos + 4 + self.maxlen)
        if window < line_end and _TRAILING_WSP.fullmatch(buf, window, line_end) is None:
            return None
        seg = buf[pos + 2 : window].rstrip(b" \t")
        levels = self.bounds.get(seg)
        if levels:
            return levels[-1], False
        if seg.endswith(b"--"):
            levels = self.bounds.get(seg[:-2])
            if levels:
                return levels[-1], True
        return None

    def _pattern(self) -> re.Pattern[bytes]:
        """The delimiter regex for the current state (see _delimiter_regex)."""
        inner = self.contexts[-1].boundary
        # past the cap, with no part of the innermost multipart open, only its end matters
        capped = len(self.entities) >= MAX_PARTS and len(self.open) == self.contexts[-1].open_len
        bounds = frozenset(b for b in self.bounds if not (capped and b == inner))
        return _delimiter_regex(bounds, inner if capped else None)

    def is_delimiter(self, pos: int, line_end: int) -> bool:
        return self.match(pos, line_end) is not None

    def push_context(self, boundary: bytes, entity: int) -> None:
        self.contexts.append(_Context(boundary, entity, len(self.open)))
        self.bounds.setdefault(boundary, []).append(len(self.contexts) - 1)
        self.maxlen = max(self.maxlen, len(boundary))
        self._set_needle()

    def pop_context(self) -> None:
        ctx = self.contexts.pop()
        levels = self.bounds[ctx.boundary]
        levels.pop()
        if not levels:
            del self.bounds[ctx.boundary]
        if not self.contexts:
            self.maxlen = 0
        self._set_needle()

    def _set_needle(self) -> None:
        """Search for "--" plus the prefix all open boundaries share: bodies full of "--"
        lines that cannot be delimiters are then skipped at C speed."""
        common = b""
        if self.bounds:
            lo, hi = min(self.bounds), max(self.bounds)
            i = 0
            while i < len(lo) and lo[i] == hi[i]:
                i += 1
            common = lo[:i]
        self.needle = b"\n--" + common

    def close_to(self, open_len: int, end: int) -> None:
        """Close open entities until open_len remain; they end at end (not before their body)."""
        while len(self.open) > open_len:
            ent = self.entities[self.open.pop()]
            ent.body_end = end = max(end, ent.body_start)  # enclosing ends no earlier

    # -- entities -----------------------------------------------------------------------
    def start(self, pos: int, parent: int, path: str, depth: int, is_message: bool) -> int:
        """Scan the entity at pos (and any message it encapsulates); return where to go on."""
        buf = self.buf
        while True:
            if len(self.entities) >= MAX_PARTS:
                self.truncated = True
                return pos
            stop = self.is_delimiter if self.bounds else None
            # every header may use a few fields' worth of Python; beyond a message-wide budget
            # the regex engine finds the header end and the fields the summary reads
            max_fields = max(MIN_FIELDS, min(MAX_FIELDS, self.field_budget))
            spans, body_start = scan_header(buf, pos, self.n, stop, max_fields, _WANTED_RE)
            self.field_budget -= len(spans)
            fields: dict[str, FieldSpan] = {}
            repeated: list[str] = []
            for f in spans:
                if f.name not in WANTED:
                    continue
                if f.name not in fields:
                    fields[f.name] = f
                elif f.name not in repeated:
                    repeated.append(f.name)
            default = ("message", "rfc822") if self._in_digest(parent, is_message) else None
            ent = Entity(path, parent, is_message, depth, pos, body_start, fields=fields,
                         repeated=tuple(sorted(repeated)))
            self._content_type(ent, default)
            index = len(self.entities)
            self.entities.append(ent)
            self.open.append(index)
            expandable = depth < MAX_DEPTH and len(self.entities) < MAX_PARTS
            if ent.type == "multipart":
                boundary = decode_params(ent.params).get("boundary", "")
                raw = boundary.encode("utf-8", "surrogateescape").rstrip(b" \t")
                if expandable and 0 < len(raw) <= MAX_BOUNDARY:
                    ent.expanded = True
                    if is_message:  # its parts are numbered from its container's number
                        ent.path = "" if path == "1" else path[:-2]
                    self.push_context(raw, index)
                elif not expandable:
                    self.truncated = True
                return body_start
            if ent.type == "message" and ent.subtype in _ENCAPSULATING:
                cte = fields.get("content-transfer-encoding")
                encoding = _field_text(buf, cte).lower() if cte else ""
                if encoding in _IDENTITY and expandable and body_start < self.n:
                    ent.expanded = True
                    parent, pos, depth, is_message = index, body_start, depth + 1, True
                    path = _one(ent.path)
                    continue
                if not expandable:
                    self.truncated = True
            return body_start

    def _in_digest(self, parent: int, is_message: bool) -> bool:
        if is_message or parent < 0:
            return False
        p = self.entities[parent]
        return p.type == "multipart" and p.subtype == "digest"

    def _content_type(self, ent: Entity, default: tuple[str, str] | None) -> None:
        f = ent.fields.get("content-type")
        parsed = parse_content_type(_field_text(self.buf, f)) if f else None
        if parsed is not None:
            ent.type, ent.subtype, ent.params = parsed
        elif default is not None:
            ent.type, ent.subtype = default
        # otherwise text/plain: RFC 2045 §5.2 for a missing or invalid Content-Type

    # -- the pass -----------------------------------------------------------------------
    def run(self) -> None:
        buf, n = self.buf, self.n
        pos = self.start(0, -1, "1", 0, True)
        while self.contexts:
            if self.wasted > WASTE_LIMIT and pos > 0:
                m = self._pattern().search(buf, pos - 1)
                if m is None:
                    break
                cand = m.start() + 1
            elif buf.startswith(self.needle[1:], pos):
                cand = pos
            else:
                found = buf.find(self.needle, pos)
                if found < 0:
                    break
                cand = found + 1
            eol = buf.find(b"\n", cand)
            nxt = n if eol < 0 else eol + 1
            line_end = n if eol < 0 else eol
            if line_end > cand and buf[line_end - 1] == 13:
                line_end -= 1
            hit = self.match(cand, line_end)
            if hit is None:
                self.wasted += 1
                pos = nxt
                continue
            level, close = hit
            ctx = self.contexts[level]
            end = cand
            if end >= 2 and buf[end - 2] == 13 and buf[end - 1] == 10:
                end -= 2
            elif end >= 1 and buf[end - 1] == 10:
                end -= 1
            self.close_to(ctx.open_len, end)
            while len(self.contexts) > level + 1:
                self.pop_context()
            pos = nxt
            if close:
                self.pop_context()
                continue
            if len(self.entities) >= MAX_PARTS:
                self.truncated = True  # no room for this part: only where the last one ends
                self.wasted += 1
                continue
            ctx.children += 1
            owner = self.entities[ctx.entity]
            owner.children = ctx.children
            prefix = owner.path + "." if owner.path else ""
            pos = self.start(nxt, ctx.entity, f"{prefix}{ctx.children}", owner.depth + 1, False)
        self.close_to(0, n)


@functools.lru_cache(maxsize=64)
def _delimiter_regex(bounds: frozenset[bytes], close_only: bytes | None) -> re.Pattern[bytes]:
    """Match whole delimiter lines of bounds (and only the close delimiter of close_only).

    Used once a message has shown WASTE_LIMIT lines that looked like delimiters but were not
    (or parts beyond MAX_PARTS): from then on such lines are skipped inside the regex engine, so
    a body made of millions of them costs C time, not a Python loop turn each. Compiling costs
    more than typical messages ever need, hence the threshold.
    """
    alts = [re.escape(b) for b in sorted(bounds, key=len, reverse=True)]
    choices = []
    if alts:
        choices.append(b"(?:" + b"|".join(alts) + b")(?:--)?")
    if close_only is not None:
        choices.append(re.escape(close_only) + b"--")
    return re.compile(b"\n--(?:" + b"|".join(choices) + b")[ \t]*\r?(?=\n|\\Z)")


def _one(prefix: str) -> str:
    """IMAP number of the single body of a non-multipart message inside part prefix."""
    return f"{prefix}.1" if prefix else "1"


def scan_entities(buf: bytes) -> tuple[list[Entity], bool]:
    """Scan buf; return its entities in document order and whether a cap cut anything off."""
    scanner = _Scanner(buf)
    scanner.run()
    entities = scanner.entities
    counts = [0] * len(entities)
    for ent in entities:
        if ent.parent >= 0:
            counts[ent.parent] += 1
    for ent, count in zip(entities, counts, strict=True):
        ent.children = count
        if ent.type == "multipart" and ent.expanded and count == 0:
            ent.expanded = False
            if ent.is_message:  # no parts after all: the message body is its part 1
                ent.path = _one(ent.path)
    return entities, scanner.truncated
