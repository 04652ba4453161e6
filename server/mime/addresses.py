"""Address lists (RFC 5322 §3.4) and message identifiers (§3.6.4), parsed leniently.

Input is header text (surrogate escapes for undecodable octets, encoded words not yet decoded).
Display names are kept as written (quotes and escapes removed, RFC 2047 words still encoded) in
`raw_name`, which is what an IMAP ENVELOPE carries; `name` decodes them for JMAP and Sieve.
Comments are dropped, except that a comment after a bare addr-spec serves as the display name,
as the old `joe@example.com (Joe)` style intends. Routes (obs-route) are discarded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.mime.charsets import surrogate_text
from server.mime.encoded_words import decode_words

__all__ = [
    "Address",
    "Group",
    "AddressList",
    "MAX_ADDRESSES",
    "parse_address_list",
    "parse_msg_ids",
]

MAX_ADDRESSES = 1_000
MAX_MSG_IDS = 1_000


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox: display name as written, local part and domain (None when absent)."""

    raw_name: str | None
    mailbox: str | None
    host: str | None

    @property
    def name(self) -> str | None:
        """The display name with encoded words decoded."""
        return decode_words(self.raw_name).strip() if self.raw_name is not None else None

    @property
    def email(self) -> str:
        """The addr-spec: "mailbox@host", or just the mailbox when there is no domain."""
        local = surrogate_text(self.mailbox or "")
        return f"{local}@{surrogate_text(self.host)}" if self.host is not None else local


@dataclass(frozen=True, slots=True)
class Group:
    """A named group (RFC 5322 §3.4 `group`), possibly empty ("undisclosed-recipients:;")."""

    raw_name: str
    members: tuple[Address, ...]

    @property
    def name(self) -> str:
        return decode_words(self.raw_name).strip()


AddressList = tuple[Address | Group, ...]

_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r\n]+)
      | (?P<q>"(?:[^"\\]|\\.)*"?)
      | (?P<d>\[[^\]]*\]?)
      | (?P<s>[<>,:;@.])
      | (?P<c>\()
      | (?P<a>[^ \t\r\n"(),.:;<>@\[\]\\]+)
      | (?P<o>.)""",
    re.VERBOSE | re.DOTALL,
)
_COMMENT_CHARS = re.compile(r"[()\\]")
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_MSG_ID = re.compile(r"<([^<>\s]*)>")


@dataclass(slots=True)
class _Tok:
    kind: str  # q quoted, d domain literal, s special, a atom, o other, c comment
    text: str  # as written (quotes kept); comment: its content
    space: bool  # preceded by white space or a comment


def _skip_comment(text: str, pos: int) -> tuple[str, int]:
    """pos is just after "("; return the comment text and the position after its ")"."""
    depth = 1
    start = pos
    n = len(text)
    while pos < n:
        m = _COMMENT_CHARS.search(text, pos)
        if m is None:
            return text[start:], n
        ch = m.group()
        pos = m.end()
        if ch == "\\":
            pos += 1
        elif ch == "(":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return text[start : pos - 1], pos
    return text[start:], n


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    space = False
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:  # cannot happen: (?P<o>.) matches any character
            break
        kind = m.lastgroup or "o"
        if kind == "ws":
            space = True
            pos = m.end()
            continue
        if kind == "c":
            body, pos = _skip_comment(text, m.end())
            out.append(_Tok("c", body, space))
            space = True
            continue
        out.append(_Tok(kind, m.group(), space))
        space = False
        pos = m.end()
    return out


def _word(tok: _Tok) -> str:
    if tok.kind == "q":
        inner = tok.text[1:-1] if len(tok.text) > 1 and tok.text.endswith('"') else tok.text[1:]
        return _QUOTED_PAIR.sub(r"\1", inner)
    return tok.text


def _phrase(toks: list[_Tok]) -> str | None:
    words = [t for t in toks if t.kind != "c"]
    if not words:
        return None
    parts = [_word(words[0])]
    for t in words[1:]:
        parts.append((" " if t.space else "") + _word(t))
    return "".join(parts).strip()


def _spec(toks: list[_Tok]) -> tuple[str | None, str | None]:
    words = [t for t in toks if t.kind != "c"]
    at = -1
    for i, t in enumerate(words):
        if t.kind == "s" and t.text == "@":
            at = i
    if at < 0:
        text = _phrase(words)
        return (text or None), None
    local = "".join(t.text for t in words[:at])
    host = "".join(t.text for t in words[at + 1 :])
    return local, host


class _Builder:
    def __init__(self) -> None:
        self.items: list[Address | Group] = []
        self.count = 0
        self.group: str | None = None
        self.members: list[Address] = []
        self.cur: list[_Tok] = []
        self.angle: list[_Tok] | None = None
        self.angle_closed = False

    def finish(self) -> None:
        cur, angle = self.cur, self.angle
        self.cur, self.angle = [], None
        if angle is not None:
            name = _phrase(cur)
            colon = [i for i, t in enumerate(angle) if t.kind == "s" and t.text == ":"]
            if colon:
                angle = angle[colon[-1] + 1 :]
            mailbox, host = _spec(angle)
        else:
            mailbox, host = _spec(cur)
            if mailbox is None and host is None:
                return  # only comments: not an address
            comments = [t.text for t in cur if t.kind == "c"]
            name = comments[-1].strip() if comments and comments[-1].strip() else None
        if name is None and mailbox is None and host is None:
            return
        if self.count >= MAX_ADDRESSES:
            return
        self.count += 1
        addr = Address(name, mailbox, host)
        if self.group is not None:
            self.members.append(addr)
        else:
            self.items.append(addr)

    def close_group(self) -> None:
        if self.group is not None:
            self.items.append(Group(self.group, tuple(self.members)))
        self.group = None
        self.members = []


def parse_address_list(text: str) -> AddressList:
    """Parse an address-list (RFC 5322 §3.4); junk yields what can be salvaged. Never raises."""
    b = _Builder()
    for tok in _tokens(text):
        if b.angle is not None and not b.angle_closed:
            if tok.kind == "s" and tok.text == ">":
                b.angle_closed = True
            else:
                b.angle.append(tok)
            continue
        if tok.kind == "s":
            if tok.text == ",":
                b.finish()
                continue
            if tok.text == ";":
                b.finish()
                b.close_group()
                continue
            if tok.text == "<":
                if b.angle is not None:  # a second <...> after a complete one
                    b.finish()
                b.angle = []
                b.angle_closed = False
                continue
            if (
                tok.text == ":"
                and b.group is None
                and b.angle is None
                and not any(t.text == "@" for t in b.cur)
            ):
                b.group = _phrase(b.cur) or ""
                b.cur = []
                continue
        if b.angle is None:
            b.cur.append(tok)
    b.finish()
    b.close_group()
    return tuple(b.items)


def parse_msg_ids(text: str) -> tuple[str, ...]:
    """Message identifiers (§3.6.4) without their angle brackets; a bare id is accepted too."""
    ids = _MSG_ID.findall(text)
    if not ids:
        bare = text.strip()
        return (bare,) if bare and " " not in bare and len(bare) < 1000 else ()
    return tuple(i for i in ids[:MAX_MSG_IDS] if i)
