"""Choosing text body, HTML body and attachments as RFC 8621 §4.1.4 describes.

The RFC gives the algorithm as pseudo-code over the body structure; this follows its rules:
in multipart/alternative, text/plain goes to the text body and text/html to the HTML body; a
part is inline only if it is not `attachment`, is text/plain, text/html or image/audio/video,
and is the first part or (outside multipart/related) has no name or is media; when one
alternative lacks a kind of body, the other kind fills it in. message/rfc822 parts are leaves.
The recursion follows multipart nesting, which the scanner caps at MAX_DEPTH levels.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.mime.model import Part

__all__ = ["classify_bodies", "counts_as_attachment"]


def _is_media(part: Part) -> bool:
    return part.type in ("image", "audio", "video")


class _Walk:
    def __init__(self, parts: Sequence[Part], children: list[list[int]]) -> None:
        self.parts = parts
        self.children = children
        self.attachments: list[int] = []

    def walk(
        self,
        indices: list[int],
        multipart: str,
        in_alternative: bool,
        html: list[int] | None,
        text: list[int] | None,
    ) -> None:
        text_len = len(text) if text is not None else -1
        html_len = len(html) if html is not None else -1
        for i, index in enumerate(indices):
            part = self.parts[index]
            kind = part.media_type
            inline = (
                part.disposition != "attachment"
                and (kind in ("text/plain", "text/html") or _is_media(part))
                and (i == 0 or (multipart != "related" and (_is_media(part) or not part.name)))
            )
            kids = self.children[index]
            if part.is_multipart and kids:
                self.walk(
                    kids,
                    part.subtype,
                    in_alternative or part.subtype == "alternative",
                    html,
                    text,
                )
            elif inline:
                if multipart == "alternative":
                    if kind == "text/plain" and text is not None:
                        text.append(index)
                    elif kind == "text/html" and html is not None:
                        html.append(index)
                    elif kind not in ("text/plain", "text/html"):
                        self.attachments.append(index)
                    continue
                if in_alternative:
                    if kind == "text/plain":
                        html = None
                    if kind == "text/html":
                        text = None
                if text is not None:
                    text.append(index)
                if html is not None:
                    html.append(index)
                if (text is None or html is None) and _is_media(part):
                    self.attachments.append(index)
            else:
                self.attachments.append(index)
        if multipart == "alternative" and text is not None and html is not None:
            if text_len == len(text) and html_len != len(html):
                text.extend(html[html_len:])
            if html_len == len(html) and text_len != len(text):
                html.extend(text[text_len:])


def classify_bodies(
    parts: Sequence[Part],
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Return (text_body, html_body, attachments) as indices into parts."""
    children: list[list[int]] = [[] for _ in parts]
    for i, p in enumerate(parts):
        if p.parent >= 0 and not p.is_message:
            children[p.parent].append(i)
    walk = _Walk(parts, children)
    text: list[int] = []
    html: list[int] = []
    walk.walk([0], "mixed", False, html, text)
    return tuple(text), tuple(html), tuple(walk.attachments)


def counts_as_attachment(part: Part) -> bool:
    """Whether an attachment in the RFC 8621 sense is one a user would call an attachment:
    inline parts referenced by Content-ID (images of an HTML body) are not."""
    return part.disposition == "attachment" or part.cid is None
