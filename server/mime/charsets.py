"""Turning bytes in a declared charset into text, without ever raising.

Messages name charsets that Python does not know ("x-unknown"), spell known ones oddly
("UTF8", "latin_1"), or name codecs that are not text encodings at all ("base64", "zlib").
Every path here falls back to UTF-8 with replacement characters.
"""

from __future__ import annotations

import codecs
import functools

__all__ = ["decode_text", "lookup_charset", "surrogate_text"]

# Labels seen in the wild that Python's codec registry does not resolve, or resolves to a
# narrower codec than mailers mean (WHATWG encoding spec treats these as supersets).
_ALIASES: dict[str, str] = {
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode-2-0-utf-7": "utf-7",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-9": "cp1254",
    "tis-620": "cp874",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "x-mac-roman": "mac_roman",
    "utf8": "utf-8",
    "x-user-defined": "cp1252",
}


@functools.lru_cache(maxsize=256)
def lookup_charset(label: str) -> str | None:
    """Return the Python codec name for a MIME charset label, or None if unusable."""
    name = label.strip().strip('"').lower()
    if not name or len(name) > 64:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    # codecs such as base64, zlib, rot13 are not text encodings; bytes.decode refuses them.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_text(data: bytes, charset: str | None) -> str:
    """Decode data declared in charset; unknown charsets fall back to UTF-8. Never raises."""
    codec = lookup_charset(charset) if charset else None
    if codec is None:
        codec = "utf-8"
    try:
        return data.decode(codec, "replace")
    except Exception:  # a codec may raise despite errors="replace" (e.g. idna)
        return data.decode("utf-8", "replace")


def surrogate_text(text: str) -> str:
    """Clean text that may carry surrogate escapes (undecodable header bytes) into real text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # surrogates that did not come from undecodable bytes
            raw = text.encode("utf-8", "replace")
        return raw.decode("utf-8", "replace")
    return text
