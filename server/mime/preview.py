"""A short plain-text preview of a message body (JMAP Email.preview, RFC 8621 §4.1.4).

Only a bounded prefix of the part is decoded, so a huge body costs no more than a small one.
HTML loses its comments, script and style blocks and tags; entities are resolved.
"""

from __future__ import annotations

import html
import re

from server.mime.charsets import decode_text
from server.mime.model import Part
from server.mime.transfer import decode_transfer

__all__ = ["make_preview", "PREVIEW_CHARS", "html_to_text"]

PREVIEW_CHARS = 256
_TEXT_FIRST = 1_024
_TEXT_PREFIX = 65_536
_HTML_FIRST = 8_192
_HTML_PREFIX = 131_072

_WS = re.compile(r"\s+")
_HTML_DROP = re.compile(
    r"<!--.*?(?:-->|$)|<(script|style|title)\b[^>]*(?:>|$).*?(?:</\1\s*>|$)",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^>]*(?:>|$)")


def html_to_text(source: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    text = _HTML_DROP.sub(" ", source)
    text = _TAG.sub(" ", text)
    return _WS.sub(" ", html.unescape(text)).strip()


def _preview_of(raw: bytes, part: Part, chars: int, is_html: bool) -> str:
    end = min(part.body_end, part.body_start + chars)
    data = decode_transfer(raw[part.body_start : end], part.encoding)
    text = decode_text(data, part.charset).replace("\x00", "")
    return html_to_text(text) if is_html else _WS.sub(" ", text).strip()


def make_preview(raw: bytes, part: Part | None) -> str:
    """Preview text of part (text/plain or text/html) in raw; "" for anything else.

    Decodes a growing prefix of the body until it yields enough text or the limit is reached.
    """
    if part is None or part.type != "text" or part.subtype not in ("plain", "html"):
        return ""
    is_html = part.subtype == "html"
    chars, limit = (_HTML_FIRST, _HTML_PREFIX) if is_html else (_TEXT_FIRST, _TEXT_PREFIX)
    while True:
        text = _preview_of(raw, part, chars, is_html)
        if len(text) > PREVIEW_CHARS or chars >= limit or chars >= part.size:
            break
        chars *= 4
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS].rstrip()
    return text
