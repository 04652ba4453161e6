"""SEARCH keys as a tree (RFC 9051 §6.4.4, §9 ``search-key``) with the extensions' keys:
MODSEQ (RFC 7162 §3.1.5), OLDER / YOUNGER (RFC 5032 WITHIN), EMAILID / THREADID (RFC 8474),
SAVEDBEFORE / SAVEDON / SAVEDSINCE / SAVEDATESUPPORTED (RFC 8514), ``$`` (RFC 5182), and the
IMAP4rev1 keys NEW, OLD, RECENT (RFC 3501 §6.4.4). Strings are UTF-8 text (CHARSET UTF-8 and
US-ASCII are what the server supports); undecodable octets survive as surrogates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from server.imap.wire.lexer import MAX_NUMBER, MAX_NUMBER64, MONTHS, Cursor
from server.imap.wire.sequence import SequenceSet
from server.imap.wire.values import render_astring, render_string

__all__ = [
    "SearchFlag", "SearchText", "SearchHeader", "SearchKeyword", "SearchDate", "SearchSize",
    "SearchAge", "SearchSet", "SearchModSeq", "SearchObjectId", "SearchNot", "SearchOr",
    "SearchAnd", "SearchKey", "search_key", "search_program", "render_search", "FLAG_KEYS",
    "TEXT_KEYS", "DATE_KEYS", "MAX_DEPTH",
]

FLAG_KEYS = frozenset(
    {
        "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN", "UNANSWERED", "UNDELETED",
        "UNDRAFT", "UNFLAGGED", "UNSEEN", "NEW", "OLD", "RECENT", "SAVEDATESUPPORTED",
    }
)
TEXT_KEYS = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
DATE_KEYS = frozenset(
    {
        "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE", "SAVEDBEFORE", "SAVEDON",
        "SAVEDSINCE",
    }
)
MAX_DEPTH = 64  # nesting of NOT / OR / parentheses: deeper programs are refused, not recursed
_OBJECTID = re.compile(rb"[A-Za-z0-9_-]{1,255}")
_ENTRY_TYPES = ("PRIV", "SHARED", "ALL")


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """A key without argument (ALL, SEEN, UNDELETED, NEW, ...), upper-cased."""

    name: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """BCC / BODY / CC / FROM / SUBJECT / TEXT / TO astring."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchHeader:
    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchKeyword:
    """KEYWORD flag (``present``) or UNKEYWORD flag."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchDate:
    name: str
    day: date


@dataclass(frozen=True, slots=True)
class SearchSize:
    """LARGER n (``larger``) or SMALLER n."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchAge:
    """OLDER n (``older``) or YOUNGER n, in seconds (RFC 5032 §3)."""

    older: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class SearchSet:
    """A sequence set, or UID uid-set (``uid``); ``$`` is the saved result (RFC 5182)."""

    messages: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 §3.1.5)."""

    modseq: int
    entry: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SearchObjectId:
    """EMAILID / THREADID objectid (RFC 8474 §6)."""

    name: str
    id: str


@dataclass(frozen=True, slots=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """Keys that must all match: a parenthesised list, or the top level."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchFlag | SearchText | SearchHeader | SearchKeyword | SearchDate | SearchSize | SearchAge
    | SearchSet | SearchModSeq | SearchObjectId | SearchNot | SearchOr | SearchAnd
)


def search_key(cur: Cursor, depth: int = 0) -> SearchKey:
    """search-key (RFC 9051 §9 and the extensions named in the module doc)."""
    if depth > MAX_DEPTH:
        raise cur.fail("search program nested too deeply")
    c = cur.peek()
    if c == b"(":
        cur.pos += 1
        keys = [search_key(cur, depth + 1)]
        while cur.take(b" "):
            keys.append(search_key(cur, depth + 1))
        cur.expect(b")")
        return SearchAnd(tuple(keys))
    if c.isdigit() or c in (b"*", b"$"):
        return SearchSet(cur.sequence_set())
    name = cur.atom("a search key").upper()
    if name in FLAG_KEYS:
        return SearchFlag(name)
    cur.sp()
    if name in TEXT_KEYS:
        return SearchText(name, cur.text_astring())
    if name in DATE_KEYS:
        return SearchDate(name, cur.date())
    if name == "HEADER":
        field = cur.text_astring()
        cur.sp()
        return SearchHeader(field, cur.text_astring())
    if name in ("KEYWORD", "UNKEYWORD"):
        return SearchKeyword(cur.flag(), name == "KEYWORD")
    if name in ("LARGER", "SMALLER"):
        return SearchSize(name == "LARGER", cur.number(MAX_NUMBER64))
    if name in ("OLDER", "YOUNGER"):
        return SearchAge(name == "OLDER", cur.nz_number(MAX_NUMBER))
    if name == "UID":
        return SearchSet(cur.uid_set(), uid=True)
    if name == "NOT":
        return SearchNot(search_key(cur, depth + 1))
    if name == "OR":
        left = search_key(cur, depth + 1)
        cur.sp()
        return SearchOr(left, search_key(cur, depth + 1))
    if name == "MODSEQ":
        entry = None
        if cur.peek() == b'"':
            entry_name = cur.quoted().decode("utf-8", "surrogateescape")
            cur.sp()
            kind = cur.atom("an entry type").upper()
            if kind not in _ENTRY_TYPES:
                raise cur.fail("entry type must be priv, shared or all")
            cur.sp()
            entry = (entry_name, kind)
        return SearchModSeq(cur.number(MAX_NUMBER64), entry)
    if name in ("EMAILID", "THREADID"):
        m = _OBJECTID.match(cur.buf, cur.pos)
        if m is None:
            raise cur.fail("invalid object id")
        cur.pos = m.end()
        return SearchObjectId(name, m.group().decode("ascii"))
    raise cur.fail(f"unknown search key {name[:40]}")


def search_program(cur: Cursor) -> SearchKey:
    """search-key *(SP search-key): one key, or an AND of several."""
    keys = [search_key(cur)]
    while cur.take(b" "):
        keys.append(search_key(cur))
    return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def _text(value: str) -> bytes:
    return render_astring(value.encode("utf-8", "surrogateescape"), utf8=True)


def _date(day: date) -> bytes:
    return b"%d-%s-%04d" % (day.day, MONTHS[day.month - 1].encode(), day.year)


def _render(key: SearchKey) -> bytes:
    if isinstance(key, SearchFlag):
        return key.name.encode()
    if isinstance(key, SearchText):
        return key.name.encode() + b" " + _text(key.value)
    if isinstance(key, SearchHeader):
        return b"HEADER " + _text(key.field) + b" " + _text(key.value)
    if isinstance(key, SearchKeyword):
        return (b"KEYWORD " if key.present else b"UNKEYWORD ") + key.flag.encode()
    if isinstance(key, SearchDate):
        return key.name.encode() + b" " + _date(key.day)
    if isinstance(key, SearchSize):
        return b"%s %d" % (b"LARGER" if key.larger else b"SMALLER", key.size)
    if isinstance(key, SearchAge):
        return b"%s %d" % (b"OLDER" if key.older else b"YOUNGER", key.seconds)
    if isinstance(key, SearchSet):
        return (b"UID " if key.uid else b"") + key.messages.render()
    if isinstance(key, SearchModSeq):
        entry = b""
        if key.entry is not None:
            name = render_string(key.entry[0].encode("utf-8", "surrogateescape"), utf8=True)
            entry = name + b" " + key.entry[1].lower().encode() + b" "
        return b"MODSEQ " + entry + b"%d" % key.modseq
    if isinstance(key, SearchObjectId):
        return key.name.encode() + b" " + key.id.encode()
    if isinstance(key, SearchNot):
        return b"NOT " + _render(key.key)
    if isinstance(key, SearchOr):
        return b"OR " + _render(key.left) + b" " + _render(key.right)
    return b"(" + b" ".join(_render(k) for k in key.keys) + b")"


def render_search(key: SearchKey) -> bytes:
    """The inverse of :func:`search_program`."""
    if isinstance(key, SearchAnd) and len(key.keys) > 1:
        return b" ".join(_render(k) for k in key.keys)
    return _render(key)
