"""Decoded content of a leaf part, for JMAP bodyValues, Sieve body tests and search.

The caller reads the part's body range from the blob (Part.body_range) and passes those octets.
"""

from __future__ import annotations

from server.mime.charsets import decode_text
from server.mime.model import Part
from server.mime.transfer import decode_transfer

__all__ = ["part_bytes", "part_text"]


def part_bytes(body: bytes, part: Part) -> bytes:
    """The body octets of part with its Content-Transfer-Encoding undone (RFC 2045 §6)."""
    return decode_transfer(body, part.encoding)


def part_text(body: bytes, part: Part) -> str:
    """The body of a text part as text: transfer decoding, then its charset (UTF-8 if unknown)."""
    return decode_text(part_bytes(body, part), part.charset)
