"""Entry names of IMAP METADATA (RFC 5464 sections 3.2 and 5).

GETMETADATA and SETMETADATA parse their entries as ``astring`` (``entry = astring``,
section 5, in :mod:`.parse_mailbox`); what makes one a valid entry name is prose in
section 3.2, checked here: a name that breaks it is a syntax error (BAD, "Invalid entry
names result in a BAD response"): below /private or /shared, at least two components
(four under ``vendor``).  Names are case-insensitive (section 3.2): the
checked form is lower-case, which is how the store keys them and how responses carry
them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.imap.wire.errors import ParseError
from server.imap.wire.responses import mailbox_name
from server.imap.wire.values import render_astring

__all__ = ["MAX_ENTRY", "MetadataChanged", "entry_name"]

MAX_ENTRY = 512  # octets of an entry name (a limit of ours, keeping store keys small)
ROOTS = ("/private", "/shared")  # section 3.2: every entry is below one of these
# section 3.2: US-ASCII without the octets 0x00-0x19, "*" and "%"; "/"-separated
# components, none empty (no "//", no trailing "/")
_ENTRY = re.compile(r"(?:/[\x20-\x24\x26-\x29\x2b-\x2e\x30-\x7f]+)+")


def entry_name(raw: str) -> str:
    """``raw`` as a checked entry name, lower-cased; ParseError (BAD) when it is not one."""
    if len(raw) > MAX_ENTRY:
        raise ParseError(f"entry names are limited to {MAX_ENTRY} octets")
    if _ENTRY.fullmatch(raw) is None:
        raise ParseError("invalid entry name (RFC 5464 section 3.2)")
    name = raw.lower()
    parts = name.split("/")[1:]
    if "/" + parts[0] not in ROOTS or len(parts) < 2:
        raise ParseError("entry names are below /private or /shared (RFC 5464 section 3.2)")
    if parts[1] == "vendor" and len(parts) < 4:
        raise ParseError("vendor entry names have at least 4 components (RFC 5464 section 3.2)")
    return name


@dataclass(frozen=True, slots=True)
class MetadataChanged:
    """``* METADATA mailbox entry *(SP entry)``: entries that changed, without values
    (RFC 5464 section 4.4.2; sent for NOTIFY's metadata events, RFC 5465 section 5.6)."""

    mailbox: str
    entries: tuple[str, ...]

    def render(self, utf8: bool = False) -> bytes:
        names = b" ".join(render_astring(e.encode("ascii"), utf8) for e in self.entries)
        return b"* METADATA %s %s\r\n" % (mailbox_name(self.mailbox, utf8), names)
