"""The author addresses of a submitted message: its ``From:`` and ``Sender:`` fields.

Pure: takes the message bytes, returns addresses.  Every ``From:`` and ``Sender:`` field
counts (a message with two From fields must not hide the second from the check), and a
field whose addresses cannot be parsed is reported as such rather than skipped.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

AUTHOR_FIELDS = (b"from", b"sender")

# A field that is one bare addr-spec of dot-atoms (RFC 5322 section 3.4.1), what most
# clients write: that address is what getaddresses would return, without its parser.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


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
        if _PLAIN_ADDRESS.fullmatch(text):
            out.append(text)
            continue
        pairs = getaddresses([text])
        addresses = [addr for _, addr in pairs if addr]
        if not addresses or any("@" not in a for a in addresses):
            raise UnparsableAuthor(text)
        out += addresses
    return out
