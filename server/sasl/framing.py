"""What SMTP (RFC 4954 section 4) and IMAP (RFC 9051 section 6.2.2) share in carrying
SASL: a response line is base64, ``*`` cancels, and an initial response of ``=`` is an
empty one.  Continuation syntax (``334``, ``+``) stays with each protocol.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode

from .mechanism import Aborted, Malformed

ABORT = b"*"


def decode_base64(text: bytes) -> bytes | Malformed:
    """Strict base64 (RFC 4648 section 4, padding required, no other characters)."""
    try:
        return b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return Malformed("Cannot decode base64")


def decode_response(line: bytes) -> bytes | Aborted | Malformed:
    """A client's answer to a challenge, line ending removed: ``*`` or base64."""
    line = line.strip(b" \t")
    if line == ABORT:
        return Aborted()
    return decode_base64(line)


def decode_initial(text: bytes) -> bytes | Aborted | Malformed:
    """An initial response on the command line: ``=`` is empty (RFC 4954 section 4,
    RFC 4959 section 3)."""
    if text == b"=":
        return b""
    return decode_response(text)


def encode_challenge(data: bytes) -> bytes:
    return b64encode(data)


__all__ = ["ABORT", "decode_base64", "decode_initial", "decode_response", "encode_challenge"]
