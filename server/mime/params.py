"""MIME header parameters: Content-Type (RFC 2045 §5.1), Content-Disposition (RFC 2183) and
RFC 2231 continuations, charsets and languages.

`parse_params` keeps parameters as written (name lowercased, quotes removed), which is what the
IMAP BODYSTRUCTURE reports; `decode_params` merges RFC 2231 continuations (`name*0*=`, `name*1=`),
decodes `charset'lang'%XX` values and, as mailers commonly need, RFC 2047 words in plain values.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from server.mime.charsets import decode_text, surrogate_text
from server.mime.encoded_words import decode_words

__all__ = ["Params", "MAX_PARAMS", "parse_params", "parse_content_type", "decode_params"]

Params = tuple[tuple[str, str], ...]
MAX_PARAMS = 64

# RFC 2045 §5.1 token: any CHAR except SPACE, CTLs and tspecials.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PARAM = re.compile(r"""[\s;]*([^=;\s"]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"?|([^;]*)))?""", re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_SECTION = re.compile(r"^(.+?)\*(?:(\d{1,3})(\*)?|)$")
_COMMENT = re.compile(r"\([^()]*\)")


def parse_params(text: str) -> Params:
    """Parse `; name=value; name="quoted"` pairs, tolerating junk between them."""
    out: list[tuple[str, str]] = []
    pos = 0
    n = len(text)
    while pos < n and len(out) < MAX_PARAMS:
        m = _PARAM.match(text, pos)
        if m is None or m.end() == pos:
            nxt = text.find(";", pos + 1)
            if nxt < 0:
                break
            pos = nxt
            continue
        pos = m.end()
        if m.group(2) is None and m.group(3) is None:
            continue  # a name without "=": skip it
        name = m.group(1).lower()
        if m.group(2) is not None:
            value = _QUOTED_PAIR.sub(r"\1", m.group(2))
        else:
            value = m.group(3).strip()
        out.append((name, value))
    return tuple(out)


def parse_content_type(text: str) -> tuple[str, str, Params] | None:
    """Split `type/subtype; params` (lowercased type); None when the type is not valid."""
    head, sep, rest = text.partition(";")
    head = _COMMENT.sub("", head).strip()
    main, slash, sub = head.partition("/")
    main = main.strip()
    sub = sub.strip()
    params = parse_params(rest) if sep else ()
    if not slash or not _TOKEN.fullmatch(main) or not _TOKEN.fullmatch(sub):
        return None
    return main.lower(), sub.lower(), params


def _decode_2231(parts: list[tuple[int, str, bool]]) -> str:
    """Join RFC 2231 §3-4 sections; the first encoded one carries charset'language'."""
    parts.sort(key=lambda p: p[0])
    charset: str | None = None
    data = bytearray()
    for i, (_, value, encoded) in enumerate(parts):
        if encoded:
            if i == 0:
                pieces = value.split("'", 2)
                if len(pieces) == 3:
                    charset = pieces[0] or None
                    value = pieces[2]
            data += unquote_to_bytes(value.encode("utf-8", "surrogateescape"))
        else:
            data += value.encode("utf-8", "surrogateescape")
    if charset is None:
        return decode_text(bytes(data), "utf-8")
    return decode_text(bytes(data), charset)


def decode_params(params: Params) -> dict[str, str]:
    """Merge and decode parameters into name -> text (RFC 2231 wins over a plain duplicate)."""
    plain: dict[str, str] = {}
    sections: dict[str, list[tuple[int, str, bool]]] = {}
    for name, value in params:
        m = _SECTION.match(name) if "*" in name else None
        if m is None:
            plain.setdefault(name, value)
            continue
        base = m.group(1)
        if m.group(2) is None:  # name*=charset'lang'value
            sections.setdefault(base, []).append((0, value, True))
        else:
            sections.setdefault(base, []).append((int(m.group(2)), value, m.group(3) is not None))
    out: dict[str, str] = {}
    for name, value in plain.items():
        out[name] = decode_words(value) if "=?" in value else surrogate_text(value)
    for base, parts in sections.items():
        out[base] = _decode_2231(parts)
    return out
