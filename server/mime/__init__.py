"""Message parsing shared by IMAP, JMAP, Sieve and search.

`parse_message(raw)` computes, once at delivery, a `MessageSummary` holding everything later reads
need without touching the blob: envelope fields, body structure with byte offsets of every part
(`summary.section("1.2.MIME")`, `summary.part("2")`), JMAP part info (`summary.leaves()`,
`summary.attachment_parts`), text and HTML bodies, preview and attachments. It never raises and
runs in linear time on any input. `summary.to_bytes()` / `MessageSummary.from_bytes()` store it.

IMAP wire data: `render_envelope(summary)`, `render_bodystructure(summary, extensible)`.
Header helpers for BODY[HEADER.FIELDS], Sieve and JMAP header:*: `header_fields`, `get_header`,
`header_field_spans`, `header_end`, `decode_header_value`, `parse_address_list`.
IMAP SORT/THREAD: `base_subject` (RFC 5256 §2.1, compared as i;unicode-casemap; the one
implementation is `mailtext.subjects`, which JMAP threading in fdb_layers uses too).
"""

from server.mime.addresses import Address, AddressList, Group, parse_address_list, parse_msg_ids
from server.mime.encoded_words import decode_header_value, decode_words
from server.mime.headers import FieldSpan, get_header, header_end, header_field_spans, header_fields
from server.mime.imap_render import (
    imap_string,
    render_bodystructure,
    render_envelope,
    render_envelope_of,
)
from server.mime.model import FORMAT_VERSION, Envelope, MessageSummary, Part
from server.mime.subjects import base_subject
from server.mime.summary import parse_message
from server.mime.text import part_bytes, part_text

__all__ = [
    "Address",
    "AddressList",
    "Envelope",
    "FORMAT_VERSION",
    "FieldSpan",
    "Group",
    "MessageSummary",
    "Part",
    "base_subject",
    "decode_header_value",
    "decode_words",
    "get_header",
    "header_end",
    "header_field_spans",
    "header_fields",
    "imap_string",
    "parse_address_list",
    "parse_message",
    "parse_msg_ids",
    "part_bytes",
    "part_text",
    "render_bodystructure",
    "render_envelope",
    "render_envelope_of",
]
