"""Commands of the selected state (RFC 9051 §6.4; RFC 4315 UID EXPUNGE, RFC 6851 MOVE,
RFC 7162 CHANGEDSINCE / VANISHED / UNCHANGEDSINCE, RFC 4731 / 5267 RETURN options,
RFC 5182 SAVE, RFC 5256 SORT / THREAD, RFC 5957 DISPLAYFROM / DISPLAYTO, RFC 8508 REPLACE)."""

from __future__ import annotations

from collections.abc import Callable

from server.imap.wire.commands import (
    Check, Close, Command, Copy, Expunge, Fetch, Move, Replace, Search, Sort, Store, Thread,
    Unselect,
)
from server.imap.wire.fetch import fetch_att_list
from server.imap.wire.lexer import MAX_NUMBER64, Cursor
from server.imap.wire.parse_mailbox import append_message
from server.imap.wire.search import SearchAnd, SearchKey, search_key, search_program

__all__ = ["PARSERS", "UID_PARSERS", "SEARCH_RETURNS", "SORT_KEYS"]

SEARCH_RETURNS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)
THREAD_ALGORITHMS = frozenset({"ORDEREDSUBJECT", "REFERENCES"})

Parser = Callable[[Cursor, str, bool], Command]


def _search_returns(cur: Cursor) -> tuple[str, ...] | None:
    """search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP ...)] ")" (RFC 4731)."""
    if not cur.at(b" RETURN "):
        return None
    cur.pos += len(b" RETURN ")

    def option() -> str:
        opt = cur.atom("a search return option").upper()
        if opt not in SEARCH_RETURNS:
            raise cur.fail(f"unknown search return option {opt[:40]}")
        return opt

    return tuple(cur.items(option, empty_ok=True))


def _charset(cur: Cursor) -> str:
    """charset = atom / quoted."""
    if cur.peek() == b'"':
        return cur.quoted().decode("ascii", "replace").upper()
    return cur.atom("a charset").upper()


def search(cur: Cursor, tag: str, uid: bool) -> Command:
    """search = "SEARCH" [search-return-opts] SP search-program (RFC 9051 §9)."""
    returns = _search_returns(cur)
    cur.sp()
    charset = None
    if cur.take_keyword(b"CHARSET"):
        cur.sp()
        charset = _charset(cur)
        cur.sp()
    return Search(tag, search_program(cur), charset, returns, uid)


def _criteria(cur: Cursor) -> tuple[str, SearchKey]:
    """search-criteria = charset 1*(SP search-key) (RFC 5256 §5)."""
    charset = _charset(cur)
    keys = []
    while cur.take(b" "):
        keys.append(search_key(cur))
    if not keys:
        raise cur.fail("search criteria are missing")
    return charset, keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def sort(cur: Cursor, tag: str, uid: bool) -> Command:
    """sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-criteria."""
    returns = _search_returns(cur)
    cur.sp()

    def criterion() -> tuple[bool, str]:
        """sort-criterion = ["REVERSE" SP] sort-key (RFC 5256 §5)."""
        reverse = cur.take_keyword(b"REVERSE")
        if reverse:
            cur.sp()
        key = cur.atom("a sort key").upper()
        if key not in SORT_KEYS:
            raise cur.fail(f"unknown sort key {key[:40]}")
        return reverse, key

    criteria = cur.items(criterion)
    cur.sp()
    charset, key_ = _criteria(cur)
    return Sort(tag, tuple(criteria), charset, key_, returns, uid)


def thread(cur: Cursor, tag: str, uid: bool) -> Command:
    """thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria (RFC 5256 §5)."""
    cur.sp()
    algorithm = cur.atom("a thread algorithm").upper()
    if algorithm not in THREAD_ALGORITHMS:
        raise cur.fail(f"unknown thread algorithm {algorithm[:40]}")
    cur.sp()
    charset, key = _criteria(cur)
    return Thread(tag, algorithm, charset, key, uid)


def fetch(cur: Cursor, tag: str, uid: bool) -> Command:
    """fetch = "FETCH" SP sequence-set SP (macro / fetch-att / list) [fetch-modifiers]."""
    cur.sp()
    messages = cur.sequence_set()
    cur.sp()
    items = fetch_att_list(cur)
    changed_since = None
    vanished = False
    if cur.take(b" "):
        cur.expect(b"(")
        while True:
            name = cur.atom("a fetch modifier").upper()
            if name == "CHANGEDSINCE" and changed_since is None:
                cur.sp()
                changed_since = cur.nz_number(MAX_NUMBER64, "a mod-sequence")
            elif name == "VANISHED" and uid and not vanished:
                vanished = True
            else:
                raise cur.fail(f"unknown or repeated fetch modifier {name[:40]}")
            if cur.take(b")"):
                break
            cur.sp()
        if vanished and changed_since is None:
            # RFC 7162 §3.2.6: VANISHED without CHANGEDSINCE is a protocol error
            raise cur.fail("VANISHED needs CHANGEDSINCE")
    return Fetch(tag, messages, items, uid, changed_since, vanished)


def store(cur: Cursor, tag: str, uid: bool) -> Command:
    """store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags."""
    cur.sp()
    messages = cur.sequence_set()
    cur.sp()
    unchanged = None
    if cur.take(b"("):
        cur.expect(b"UNCHANGEDSINCE", "UNCHANGEDSINCE")
        cur.sp()
        unchanged = cur.number(MAX_NUMBER64, "a mod-sequence")
        cur.expect(b")")
        cur.sp()
    mode = ""
    if cur.take(b"+"):
        mode = "+"
    elif cur.take(b"-"):
        mode = "-"
    cur.expect(b"FLAGS", "FLAGS, +FLAGS or -FLAGS")
    silent = cur.take(b".SILENT")
    cur.sp()
    return Store(tag, messages, mode, cur.store_flags(), silent, uid, unchanged)


def _copy_like(make: type[Copy] | type[Move]) -> Parser:
    def parse(cur: Cursor, tag: str, uid: bool) -> Command:
        cur.sp()
        messages = cur.sequence_set()
        cur.sp()
        return make(tag, messages, cur.mailbox(), uid)

    return parse


def expunge(cur: Cursor, tag: str, uid: bool) -> Command:
    """expunge / uid-expunge = "UID EXPUNGE" SP uid-set (RFC 4315 §3)."""
    if not uid:
        return Expunge(tag)
    cur.sp()
    return Expunge(tag, cur.uid_set())


def replace(cur: Cursor, tag: str, uid: bool) -> Command:
    """replace = "REPLACE" SP seq-number SP mailbox append-message (RFC 8508 §6)."""
    cur.sp()
    number = cur.nz_number(what="a message number")
    cur.sp()
    mailbox = cur.mailbox()
    cur.sp()
    return Replace(tag, number, mailbox, append_message(cur), uid)


UID_PARSERS: dict[str, Parser] = {
    "COPY": _copy_like(Copy),
    "MOVE": _copy_like(Move),
    "FETCH": fetch,
    "STORE": store,
    "SEARCH": search,
    "SORT": sort,
    "THREAD": thread,
    "EXPUNGE": expunge,
    "REPLACE": replace,
}

PARSERS: dict[str, Callable[[Cursor, str], Command]] = {
    "CHECK": lambda cur, tag: Check(tag),
    "CLOSE": lambda cur, tag: Close(tag),
    "UNSELECT": lambda cur, tag: Unselect(tag),
    **{
        name: (lambda p: lambda cur, tag: p(cur, tag, False))(parse)
        for name, parse in UID_PARSERS.items()
    },
}
