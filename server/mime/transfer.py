"""Content-Transfer-Encoding decoding (RFC 2045 §6) that tolerates damaged input.

base64 with bad padding, stray characters or a truncated last quantum still yields the bytes
that can be recovered; quoted-printable with broken escapes keeps the '=' literally.
"""

from __future__ import annotations

import binascii
import re

__all__ = ["decode_base64", "decode_qp", "decode_transfer", "base64_decoded_size"]

_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/]+")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_QP_SOFT = re.compile(rb"=[ \t]*\r?\n")


def decode_base64(data: bytes) -> bytes:
    """Decode base64 leniently: ignore non-alphabet bytes, repair padding (RFC 2045 §6.8)."""
    clean = _NOT_B64.sub(b"", data)
    extra = len(clean) % 4
    if extra == 1:  # a lone sextet carries no whole octet
        clean = clean[:-1]
    elif extra:
        clean += b"=" * (4 - extra)
    try:
        return binascii.a2b_base64(clean)
    except (binascii.Error, ValueError):
        return b""


def decode_qp(data: bytes) -> bytes:
    """Decode quoted-printable (RFC 2045 §6.7); malformed escapes are kept as is."""
    data = _QP_SOFT.sub(b"", data)
    return _QP_HEX.sub(lambda m: bytes((int(m.group(1), 16),)), data)


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding; identity encodings and unknown ones pass through."""
    if encoding == "base64":
        return decode_base64(data)
    if encoding == "quoted-printable":
        return decode_qp(data)
    return data


def base64_decoded_size(buf: bytes, start: int, end: int) -> int:
    """Octets that the base64 text buf[start:end] decodes to, without copying it.

    Counts alphabet characters as length minus line breaks and blanks; good for the common
    well-formed case and a close estimate otherwise.
    """
    if end <= start:
        return 0
    chars = end - start
    for ws in (b"\n", b"\r", b" ", b"\t"):
        chars -= buf.count(ws, start, end)
    pad = buf.count(b"=", max(start, end - 8), end)
    chars -= pad
    return max(0, chars * 3 // 4)
