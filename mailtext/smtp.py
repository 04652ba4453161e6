"""SMTP text rules that both the receiving side (``server.smtp``) and the sending side
(``server.outbound``) apply, so that neither protocol package imports the other."""

from __future__ import annotations


def is_text(content: bytes) -> bool:
    """Whether ``content`` may go by DATA: no NUL, every CR and LF in a CRLF.  (Long
    lines are not looked at: DATA carries them, as it did before BDAT existed here.)"""
    crlf = content.count(b"\r\n")
    return b"\0" not in content and content.count(b"\r") == crlf and \
        content.count(b"\n") == crlf


def xtext_encode(value: str) -> str:
    """RFC 3461 section 4 xtext: octets outside "!" to "~", and "+" and "=", as "+" and
    two upper-case hex digits."""
    out = []
    for octet in value.encode("utf-8", "surrogateescape"):
        if 33 <= octet <= 126 and octet not in (43, 61):   # not "+", "="
            out.append(chr(octet))
        else:
            out.append(f"+{octet:02X}")
    return "".join(out)
