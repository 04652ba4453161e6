"""The searchable text of a message, read from its blob: its header fields and the text
of its body parts.  Email/query's ``text``, ``body`` and ``header`` conditions (RFC 8621
section 4.4.1) and SearchSnippet/get (section 5) match against it.

The text body (textBody, section 4.1.4) and the other text/* leaves of the body
structure are the body, not the HTML alternatives of the text body; the text parts of
attached messages are read apart, for ``text`` only.  Each part is read up to
:data:`MAX_PART_TEXT` octets; HTML counts as its visible text."""

from __future__ import annotations

from dataclasses import dataclass

from server.mime import MessageSummary, header_fields, part_text
from server.mime.preview import html_to_text

from .email_body import BodyView, RangeReader
from .headers import as_text

MAX_PART_TEXT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MessageText:
    """A message's header fields, the text of its body and (when read) that of the
    messages attached to it, which ``text`` searches too (section 4.4.1)."""

    fields: tuple[tuple[str, bytes], ...]
    body: str
    attached: str = ""

    def header_values(self, name: str) -> list[str]:
        """The Text form (section 4.1.2.2) of every field called ``name``."""
        want = name.lower()
        return [as_text(v) for n, v in self.fields if n.lower() == want]


async def read_message_text(summary: MessageSummary, reader: RangeReader, *,
                            body: bool = True, attached: bool = False) -> MessageText:
    fields = tuple(header_fields(await reader.read(0, summary.header_end)))
    if not body:
        return MessageText(fields, "")
    view = BodyView(summary, "", reader)
    # the text body, and text parts that are not the HTML alternative of it
    html_only = set(summary.html_body) - set(summary.text_body)
    chosen = [i for i in view.value_parts(True, False, True) if i not in html_only]
    inner: list[int] = []
    if attached:
        shown = set(chosen) | html_only
        inner = [i for i, p in enumerate(summary.parts)
                 if p.type == "text" and i not in shown and not view.is_container(i)]
    return MessageText(fields, await _texts(summary, reader, chosen),
                       await _texts(summary, reader, inner))


async def _texts(summary: MessageSummary, reader: RangeReader, indices: list[int]) -> str:
    texts: list[str] = []
    for i in indices:
        p = summary.parts[i]
        raw = await reader.read(p.body_start, min(p.body_end, p.body_start + MAX_PART_TEXT))
        text = part_text(raw, p).replace("\x00", "")
        texts.append(html_to_text(text) if p.subtype == "html" else text)
    return "\n".join(texts)


def contains(haystack: str, needle: str) -> bool:
    """Case-insensitive (Unicode case folding) substring match."""
    return needle.casefold() in haystack.casefold()
