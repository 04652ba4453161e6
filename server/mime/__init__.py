"""Message parsing shared by IMAP, JMAP, Sieve and search.

`parse_message(raw)` computes, once at delivery, a `MessageSummary` holding everything later reads
need without touching the blob: envelope fields, body structure with byte offsets of every part,
JMAP part info, preview and attachments. It never raises and runs in linear time on any input.
"""

from server.mime.addresses import Address, AddressList, Group, parse_address_list, parse_msg_ids
from server.mime.encoded_words import decode_header_value, decode_words
from server.mime.headers import FieldSpan, get_header, header_end, header_field_spans, header_fields
from server.mime.model import FORMAT_VERSION, Envelope, MessageSummary, Part
from server.mime.summary import parse_message

__all__ = [
    "Address",
    "AddressList",
    "Envelope",
    "FORMAT_VERSION",
    "FieldSpan",
    "Group",
    "MessageSummary",
    "Part",
    "decode_header_value",
    "decode_words",
    "get_header",
    "header_end",
    "header_field_spans",
    "header_fields",
    "parse_address_list",
    "parse_message",
    "parse_msg_ids",
]
