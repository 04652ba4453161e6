"""Turning bytes in a declared charset into text, without ever raising.

Messages name charsets that Python does not know ("x-unknown"), spell known ones oddly
("UTF8", "latin_1"), or name codecs that are not character sets for message text at all
("base64", "zlib", "unicode_escape", or "punycode" and "idna", whose pure-Python decoders take
quadratic time: 1.6 s for 448 KB).  Only the codecs of :data:`TEXT_CODECS`, an allow-list of
real text charsets (all decoded by C code in linear time), are used; any other label is
unknown 8-bit text and decodes as UTF-8 with replacement characters, like an unknown charset.
"""

from __future__ import annotations

import codecs
import functools

__all__ = ["TEXT_CODECS", "decode_text", "lookup_charset", "surrogate_text"]

# Python codec names (``codecs.lookup(label).name``) of the character sets meant for message
# text: Unicode, the ISO and Windows single-byte sets, KOI8, DOS and Mac code pages, and the
# Chinese, Japanese and Korean multi-byte sets.  Every one decodes in linear time, in C.
TEXT_CODECS: frozenset[str] = frozenset(
    {
        "utf-8", "utf-8-sig", "utf-7",
        "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
        "ascii", "iso8859-1",
        *(f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)),
        *(f"cp125{n}" for n in range(9)),
        "koi8-r", "koi8-u", "koi8-t", "kz1048", "ptcp154", "cp874", "tis-620",
        "cp437", "cp737", "cp775", "cp850", "cp852", "cp855", "cp857", "cp858", "cp860",
        "cp861", "cp862", "cp863", "cp865", "cp866", "cp869",
        "mac-roman", "mac-cyrillic", "mac-greek", "mac-iceland", "mac-latin2", "mac-turkish",
        "gb2312", "gbk", "gb18030", "hz", "big5", "big5hkscs", "cp950",
        "shift_jis", "cp932", "shift_jis_2004", "shift_jisx0213",
        "euc_jp", "euc_jis_2004", "euc_jisx0213",
        "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3",
        "iso2022_jp_ext", "iso2022_kr", "euc_kr", "cp949", "johab",
    }
)

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
    """The Python codec for a MIME charset label, or None if it is unknown or not a
    character set for message text (not in :data:`TEXT_CODECS`)."""
    name = label.strip().strip('"').lower()
    if not name or len(name) > 64:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    # base64, zlib, rot13, punycode, idna, unicode_escape...: not message text.
    return info.name if info.name in TEXT_CODECS else None


def decode_text(data: bytes, charset: str | None) -> str:
    """Decode data declared in charset, in linear time; unknown charsets and codecs that
    are not text charsets fall back to UTF-8 (unknown 8-bit). Never raises."""
    codec = lookup_charset(charset) if charset else None
    if codec is None:
        codec = "utf-8"
    try:
        return data.decode(codec, "replace")
    except Exception:  # kept for safety: no codec of TEXT_CODECS is known to raise
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
