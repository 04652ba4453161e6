"""Header sections (RFC 5322 §2.2, §3.6) located by offsets inside a larger buffer.

The scanner walks lines with `bytes.find`, never copies the message, and decides where the header
ends the way tolerant readers do: at the first empty line (which belongs to the header), at the
first line that cannot be a header field (no separator: the body starts there), at a boundary
line of an enclosing multipart, or at the end of the entity. Bare LF line ends are accepted.
A leading mbox "From " line is skipped. A field and all its continuation lines are found by one
regex search. After `max_fields` fields the end of the header is found by one regex search too,
and only the fields the caller names are picked out, so a header of millions of tiny lines costs
linear time with a small constant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from server.mime.encoded_words import decode_header_value, header_text

__all__ = [
    "FieldSpan",
    "FieldValues",
    "MAX_FIELDS",
    "scan_header",
    "header_fields",
    "header_field_spans",
    "header_end",
    "get_header",
    "decode_header_value",
]

MAX_FIELDS = 2_000

# RFC 5322 §3.6.8: field-name = 1*ftext (printable US-ASCII except ":"); obsolete syntax (§4.5)
# allows white space before the colon.
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
# a line break followed by a line that is neither a continuation nor a field (nor starts "--")
_HEADER_STOP = re.compile(rb"\n(?![ \t]|(?!--)[\x21-\x39\x3b-\x7e]+[ \t]*:)")
# the line break that ends a field: one not followed by white space (a continuation line)
_UNFOLDED = re.compile(rb"\n(?![ \t])")

# stop(line_start, line_end) -> True when the line is a boundary of an enclosing multipart.
StopLine = Callable[[int, int], bool]


@dataclass(frozen=True, slots=True)
class FieldSpan:
    """One header field: name lowercased, offsets of the line, the value and the field end.

    buf[start:end] is the whole field without its final line break, folding included;
    buf[value_start:end] is the raw value after the colon.
    """

    name: str
    start: int
    value_start: int
    end: int


def _line_end(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Return (end of line content, start of next line) for the line at pos."""
    eol = buf.find(b"\n", pos, end)
    if eol < 0:
        stop = end
        nxt = end
    else:
        stop = eol
        nxt = eol + 1
    if stop > pos and buf[stop - 1] == 13:
        stop -= 1
    return stop, nxt


def _skip_rest(buf: bytes, pos: int, end: int) -> int:
    """Body start after an over-long header, found by one regex search: after the empty line,
    or at the first line that is neither a field nor a continuation, or at a line starting
    with "--" (which may be an enclosing boundary). pos is the start of a field line."""
    m = _HEADER_STOP.search(buf, pos, end)
    if m is None:
        return end
    line = m.start() + 1
    if buf.startswith(b"\r\n", line):
        return line + 2
    if buf.startswith(b"\n", line):
        return line + 1
    return line


def _field_end(buf: bytes, value_start: int, end: int) -> tuple[int, int]:
    """(end of the field without its line break, start of the next line)."""
    unfolded = _UNFOLDED.search(buf, value_start, end)
    stop_at = unfolded.start() if unfolded is not None else end
    field_end = stop_at - 1 if stop_at > value_start and buf[stop_at - 1] == 13 else stop_at
    return field_end, (stop_at + 1 if stop_at < end else end)


def _wanted_fields(buf: bytes, pos: int, body: int, wanted: re.Pattern[bytes]) -> list[FieldSpan]:
    """Fields named by wanted (a regex starting with the line break before the name; see
    names_regex) in buf[pos:body]; pos is a line start after a line break."""
    out: list[FieldSpan] = []
    for m in wanted.finditer(buf, max(pos - 1, 0), body):
        field_end, _ = _field_end(buf, m.end(), body)
        name = m.group(1).decode("ascii").lower()
        out.append(FieldSpan(name, m.start() + 1, m.end(), field_end))
    return out


def names_regex(names: Iterable[str]) -> re.Pattern[bytes]:
    """A regex for scan_header's wanted: a line break, then one of names (any case), then ":".

    Case is spelled out as [Cc] classes rather than re.IGNORECASE, so that the regex engine
    can skip from line break to line break quickly.
    """
    alts = []
    for name in sorted(names):
        alts.append(
            b"".join(
                b"[%s%s]" % (c.upper().encode(), c.lower().encode())
                if c.isalpha()
                else re.escape(c.encode())
                for c in name
            )
        )
    return re.compile(rb"\n(" + b"|".join(alts) + rb")[ \t]*:")


def scan_header(
    buf: bytes,
    start: int,
    end: int,
    stop: StopLine | None = None,
    max_fields: int = MAX_FIELDS,
    wanted: re.Pattern[bytes] | None = None,
) -> tuple[list[FieldSpan], int]:
    """Scan the header at buf[start:end]; return its fields and the offset where the body starts.

    After max_fields fields, the end of the header is found at C speed and only fields matching
    wanted (see names_regex) are still reported.
    """
    fields: list[FieldSpan] = []
    pos = start
    while pos < end:
        line_end, nxt = _line_end(buf, pos, end)
        if line_end == pos:
            return fields, nxt
        first = buf[pos]
        if first == 32 or first == 9:  # white space before any field: ignored
            pos = nxt
            continue
        if first == 45 and stop is not None and buf.startswith(b"--", pos) and stop(pos, line_end):
            return fields, pos
        m = _FIELD.match(buf, pos, line_end)
        if m is not None:
            if len(fields) >= max_fields:
                body = _skip_rest(buf, pos, end)
                if wanted is not None:
                    fields.extend(_wanted_fields(buf, pos, body, wanted))
                return fields, body
            # the field with its continuation lines, found by the regex engine in one call
            field_end, pos = _field_end(buf, m.end(), end)
            name = m.group(1).decode("ascii").lower()
            fields.append(FieldSpan(name, m.start(), m.end(), field_end))
            continue
        if pos == start and buf.startswith(b"From ", pos):
            pos = nxt
            continue
        return fields, pos
    return fields, end


class FieldValues:
    """Text of chosen fields (first occurrences) of one header, each cut at cap octets.

    `truncated` records whether any value read was cut.
    """

    def __init__(self, buf: bytes, fields: dict[str, FieldSpan], cap: int) -> None:
        self.buf = buf
        self.fields = fields
        self.cap = cap
        self.truncated = False

    def cut(self, name: str) -> bool:
        """Whether the value of name is longer than the cap."""
        f = self.fields.get(name)
        return f is not None and f.end - f.value_start > self.cap

    def text(self, name: str) -> str | None:
        """The value as header text (see header_text), stripped; None if the field is absent."""
        f = self.fields.get(name)
        if f is None:
            return None
        end = f.end
        if end - f.value_start > self.cap:
            end = f.value_start + self.cap
            self.truncated = True
        return header_text(self.buf[f.value_start : end]).strip()


def header_end(raw: bytes) -> int:
    """Offset where the body of raw starts (BODY[HEADER] is raw[:header_end(raw)])."""
    return scan_header(raw, 0, len(raw))[1]


def header_field_spans(raw: bytes) -> list[FieldSpan]:
    """Every field of the header at the start of raw, in order, with offsets."""
    return scan_header(raw, 0, len(raw))[0]


def header_fields(raw: bytes) -> list[tuple[str, bytes]]:
    """Every field of the header of raw as (name as written, raw value with folding kept)."""
    out: list[tuple[str, bytes]] = []
    for f in header_field_spans(raw):
        colon = raw.index(b":", f.start, f.value_start)
        name = raw[f.start : colon].rstrip(b" \t").decode("ascii")
        out.append((name, raw[f.value_start : f.end]))
    return out


def get_header(raw: bytes, name: str) -> list[bytes]:
    """Raw values of every field called name (case-insensitive) in the header of raw."""
    want = name.lower()
    return [raw[f.value_start : f.end] for f in header_field_spans(raw) if f.name == want]
