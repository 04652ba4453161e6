"""The errors the wire layer reports. A parse error becomes a ``BAD`` (or, for a refused literal,
a ``NO [TOOBIG]``) carrying the tag when the tag was read (RFC 9051 §7.1.3); the session turns it
into a response with :func:`server.imap.wire.responses.Tagged` or ``Untagged``."""

from __future__ import annotations

__all__ = ["ParseError"]


class ParseError(Exception):
    """The client's command does not follow the grammar (RFC 9051 §9)."""

    def __init__(self, text: str, status: str = "BAD", code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.status = status
        self.code = code
