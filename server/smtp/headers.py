"""The author addresses of a submitted message: its ``From:`` and ``Sender:`` fields.

Pure: takes the message bytes, returns addresses.  Every ``From:`` and ``Sender:`` field
counts (a message with two From fields must not hide the second from the check), and a
field whose addresses cannot be parsed is reported as such rather than skipped.
"""

from __future__ import annotations

from email.utils import getaddresses

AUTHOR_FIELDS = (b"from", b"sender")


class UnparsableAuthor(ValueError):
    """A From: or Sender: field whose address cannot be read."""


def header_section(message: bytes) -> bytes:
    """The header section (RFC 5322 section 2.1): up to the first empty line."""
    end = message.find(b"\r\n\r\n")
    return message if end < 0 else message[:end + 2]


def author_addresses(message: bytes) -> list[str]:
    """Addresses of every From: and Sender: field (RFC 5322 section 3.6.2), in order."""
    fields: list[bytearray] = []
    current: bytearray | None = None
    for line in header_section(message).split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):                   # folded continuation
            if current is not None:
                current += b" " + line.strip()
            continue
        current = None
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in AUTHOR_FIELDS:
            current = bytearray(value.strip())
            fields.append(current)                      # (a bytearray: grows in place)
    out: list[str] = []
    for field in fields:
        text = bytes(field).decode("utf-8", "replace")
        pairs = getaddresses([text])
        addresses = [addr for _, addr in pairs if addr]
        if not addresses or any("@" not in a for a in addresses):
            raise UnparsableAuthor(text)
        out += addresses
    return out
