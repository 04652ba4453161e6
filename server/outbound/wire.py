"""The client side of SMTP without I/O: reply lines, enhanced status codes, the
message as sent after DATA (RFC 5321 section 4.5.2, transparency)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")


class ReplySyntaxError(Exception):
    """A reply line that is not ``code[ -]text`` (RFC 5321 section 4.2)."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def permanent(self) -> bool:
        return self.code >= 500


def parse_reply_line(line: bytes) -> tuple[int, bool, str]:
    """``Reply-line`` (RFC 5321 section 4.2): (code, more lines follow, text)."""
    text = line.rstrip(b"\r\n").decode("utf-8", "replace")
    if len(text) < 3 or not text[:3].isdigit() or text[0] not in "2345" or \
            (len(text) > 3 and text[3] not in " -"):
        raise ReplySyntaxError(f"not an SMTP reply: {text[:80]!r}")
    return int(text[:3]), text[3:4] == "-", text[4:]


def enhanced_status(reply: str) -> str:
    """The enhanced status code (RFC 3463) of a reply like ``550 5.1.1 ...``, else
    one made from the basic code's class."""
    parts = reply.split(" ", 2)
    if len(parts) > 1 and _ENHANCED.match(parts[1]) and parts[1][0] == reply[:1]:
        return parts[1]
    return {"2": "2.0.0", "4": "4.0.0"}.get(reply[:1], "5.0.0")


def dot_stuff(body: bytes) -> bytes:
    """The message as sent after DATA: CRLF line endings, a line starting with "."
    gets one more, and the terminator CRLF "." CRLF (RFC 5321 section 4.5.2)."""
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
    return b"".join(line + b"\r\n" for line in stuffed) + b".\r\n"


def dot_unstuff(data: bytes) -> bytes:
    """The inverse of :func:`dot_stuff` (what a receiver stores)."""
    assert data.endswith(b".\r\n")
    lines = data[:-3].split(b"\r\n")[:-1]
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)
