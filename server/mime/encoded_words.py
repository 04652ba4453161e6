"""RFC 2047 encoded-word decoding and RFC 6532 UTF-8 header text.

`decode_words` takes header text (a str whose undecodable octets are surrogate escapes) and
replaces every `=?charset?B|Q?text?=` by its text. Linear white space between two adjacent
encoded words is dropped (RFC 2047 §6.2), and adjacent words in one charset are joined before
decoding, so a multi-byte character split across two words survives. Words embedded in other
text, which RFC 2047 §5 forbids but mailers emit, are decoded too, as most readers do.
"""

from __future__ import annotations

import re

from server.mime.charsets import decode_text, surrogate_text
from server.mime.transfer import decode_base64

__all__ = ["decode_words", "decode_header_value", "header_text", "unfold"]

# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
# RFC 2231 §5 allows "charset*language"; the language is dropped.
_WORD = re.compile(r"=\?([^?\s*]{1,64})(?:\*[^?\s]{0,64})?\?([bBqQ])\?([^?\s]*)\?=")
_WSP_ONLY = re.compile(r"[ \t\r\n]*")
_Q_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_NEWLINES = re.compile(rb"[\r\n]+")


def _word_bytes(encoding: str, text: str) -> bytes:
    raw = text.encode("ascii", "replace")
    if encoding in "bB":
        return decode_base64(raw)
    # RFC 2047 §4.2: "_" is a space; =XX is an octet.
    raw = raw.replace(b"_", b" ")
    return _Q_HEX.sub(lambda m: bytes((int(m.group(1), 16),)), raw)


def decode_words(text: str) -> str:
    """Decode every RFC 2047 encoded word in text; other text is left alone. Never raises."""
    if "=?" not in text:
        return surrogate_text(text)
    out: list[str] = []
    pend_charset = ""
    pend = bytearray()
    pos = 0
    for m in _WORD.finditer(text):
        gap = text[pos : m.start()]
        if pend and not _WSP_ONLY.fullmatch(gap):
            out.append(decode_text(bytes(pend), pend_charset))
            pend.clear()
        if not pend:
            out.append(surrogate_text(gap))
        charset = m.group(1)
        data = _word_bytes(m.group(2), m.group(3))
        if pend and charset.lower() != pend_charset.lower():
            out.append(decode_text(bytes(pend), pend_charset))
            pend.clear()
        pend_charset = charset
        pend += data
        pos = m.end()
    if pend:
        out.append(decode_text(bytes(pend), pend_charset))
    out.append(surrogate_text(text[pos:]))
    return "".join(out)


def unfold(value: bytes) -> bytes:
    """Remove folding line breaks (RFC 5322 §2.2.3) and any stray CR/LF."""
    if b"\n" not in value and b"\r" not in value:
        return value
    return _NEWLINES.sub(b"", _FOLD.sub(b"", value))


def header_text(value: bytes) -> str:
    """Raw header octets as text: UTF-8 (RFC 6532), undecodable octets as surrogate escapes."""
    return unfold(value).replace(b"\x00", b"").decode("utf-8", "surrogateescape")


def decode_header_value(value: bytes) -> str:
    """Unfold, decode encoded words and return clean text for a raw header value."""
    return decode_words(header_text(value)).strip()
