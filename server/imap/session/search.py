"""SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH (RFC 4731), SEARCHRES (RFC 5182),
MODSEQ (RFC 7162 §3.1.5), WITHIN (RFC 5032), EMAILID / THREADID (RFC 8474) and the SAVEDATE
keys (RFC 8514).  SORT and THREAD (:mod:`.sort`, :mod:`.thread`) select their messages here.

A correct scan: the messages' flags come from one range read; the email records (internal
date, size, thread), the stored summaries (envelope) and the blobs (header, body) are read in
that order, each only for the messages the cheaper data could not decide.  Keys are evaluated
in three-valued logic: a key whose data is not loaded yet is "unknown", and a message is
settled as soon as the tree's value no longer depends on unknown keys.
"""

from __future__ import annotations

import time
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from datetime import date, datetime, UTC
from email.utils import parsedate_tz

from fdb_layers.mail import (
    Email,
    Message,
    Transaction,
    get_email,
    get_status,
    get_summary,
    keyword_from_imap,
    list_messages,
    list_save_dates,
    list_uid_runs,
    transact,
)
from server.imap.wire import commands as c
from server.imap.wire.responses import Code, ESearchData, SearchData
from server.imap.wire.search import (
    SearchAge, SearchAnd, SearchDate, SearchFlag, SearchHeader, SearchKey, SearchKeyword,
    SearchModSeq, SearchNot, SearchObjectId, SearchOr, SearchSet, SearchSize, SearchText,
)
from server.imap.wire.sequence import SequenceSet, compress_numbers
from server.mime import (
    Address, AddressList, Group, MessageSummary, decode_header_value, get_header, part_text,
)

from .errors import ImapError, bad, no
from .state import Selected, Session
from .uidmap import UidMap

__all__ = [
    "CHARSETS", "Candidate", "check_charset", "ordered_set", "resolve_saved", "resolve_set",
    "run_search", "save_result", "search", "uses_modseq", "write_result",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

CHARSETS = ("UTF-8", "US-ASCII")
_BATCH = 500  # email records / summaries read per transaction
_PAGE = 50_000  # flags read per transaction

# What a key needs, cheapest first.
FLAGS, EMAIL, SUMMARY, HEADER, BODY = range(5)


@dataclass(slots=True)
class Candidate:
    """A message of the selected mailbox and what has been read about it so far."""

    seq: int
    message: Message
    email: Email | None = None
    summary: MessageSummary | None = None
    header: bytes | None = None
    raw: bytes | None = None

    @property
    def uid(self) -> int:
        return self.message.uid


# -- sequence sets and the saved result ------------------------------------------------


def resolve_saved(sel: Selected) -> list[int]:
    """The UIDs of ``$`` (RFC 5182 §2.1): the saved result, less what was expunged since."""
    return [u for u in sel.saved if u in sel.uids]   # the map's binary search, no copy


def resolve_set(sel: Selected, messages: SequenceSet, uid: bool) -> list[int]:
    """The UIDs a sequence set or UID set names in the selected mailbox, ascending.
    ``*`` is the last message (RFC 9051 §9); numbers past the end name nothing here; ``$`` is
    the saved result.  For FETCH, STORE, COPY... as much as for SEARCH."""
    if messages.saved:
        return resolve_saved(sel)
    uids = sel.uids
    if not uids:
        return []
    if uid:
        ranges = list(messages.resolve(uids[-1]))
        return [u for u in uids if any(lo <= u <= hi for lo, hi in ranges)]
    out: set[int] = set()
    for lo, hi in messages.resolve(len(uids)):
        out.update(uids[max(lo, 1) - 1 : hi])
    return sorted(out)


def check_charset(charset: str | None, *, utf8_accept: bool = False,
                  required: bool = False) -> None:
    """CHARSET UTF-8 and US-ASCII; anything else: NO [BADCHARSET (...)] (RFC 9051 §6.4.4).

    After ENABLE UTF8=ACCEPT a charset label conflicts (RFC 6855 section 3 with its
    verified erratum 4029): one given where it is optional (SEARCH) SHOULD be BAD, and
    where it is ``required`` (SORT, THREAD) any value but UTF-8 SHOULD be BAD."""
    if utf8_accept and charset is not None and (not required or charset.upper() != "UTF-8"):
        raise bad(f"CHARSET {charset[:40]} is not allowed after ENABLE UTF8=ACCEPT")
    if charset is not None and charset.upper() not in CHARSETS:
        raise ImapError("NO", "Unsupported charset", "BADCHARSET (" + " ".join(CHARSETS) + ")")


# -- what each key needs ----------------------------------------------------------------


def _cost(key: SearchKey) -> int:
    if isinstance(key, SearchAnd):
        return max((_cost(k) for k in key.keys), default=FLAGS)
    if isinstance(key, SearchOr):
        return max(_cost(key.left), _cost(key.right))
    if isinstance(key, SearchNot):
        return _cost(key.key)
    if isinstance(key, (SearchDate,)):
        if key.name.startswith("SAVED"):
            return FLAGS   # save dates are read with the flags (run_search)
        return SUMMARY if key.name.startswith("SENT") else EMAIL
    if isinstance(key, (SearchSize, SearchAge)):
        return EMAIL
    if isinstance(key, SearchObjectId):
        return EMAIL if key.name == "THREADID" else FLAGS
    if isinstance(key, SearchText):
        return BODY if key.name in ("BODY", "TEXT") else SUMMARY
    if isinstance(key, SearchHeader):
        return HEADER
    return FLAGS


def _leaves_costs(key: SearchKey) -> Iterator[int]:
    if isinstance(key, SearchAnd):
        for k in key.keys:
            yield from _leaves_costs(k)
    elif isinstance(key, SearchOr):
        yield from _leaves_costs(key.left)
        yield from _leaves_costs(key.right)
    elif isinstance(key, SearchNot):
        yield from _leaves_costs(key.key)
    else:
        yield _cost(key)


def uses_modseq(key: SearchKey) -> bool:
    if isinstance(key, SearchModSeq):
        return True
    if isinstance(key, SearchAnd):
        return any(uses_modseq(k) for k in key.keys)
    if isinstance(key, SearchOr):
        return uses_modseq(key.left) or uses_modseq(key.right)
    if isinstance(key, SearchNot):
        return uses_modseq(key.key)
    return False


# -- matching -------------------------------------------------------------------------


def _contains(text: str | None, needle: str) -> bool:
    """Case-insensitive substring (RFC 9051 §6.4.4)."""
    return text is not None and needle.casefold() in text.casefold()


def _addresses(items: AddressList) -> str:
    """An address list as text to match: decoded display names and addresses."""
    out: list[str] = []
    for item in items:
        if isinstance(item, Group):
            out.append(item.raw_name and decode_header_value(item.raw_name.encode()) or "")
            out.extend(_address(a) for a in item.members)
        else:
            out.append(_address(item))
    return ", ".join(out)


def _address(a: Address) -> str:
    return f"{a.name} <{a.email}>" if a.name else a.email


def _internal_day(email: Email) -> date:
    """The internal date's day; internal dates are kept and shown in UTC."""
    return datetime.fromtimestamp(email.received_at, UTC).date()


def _sent_day(summary: MessageSummary) -> date | None:
    """The Date header's day as written, its time and zone disregarded (RFC 9051 §6.4.4)."""
    raw = summary.envelope.date
    parsed = parsedate_tz(raw) if raw else None
    if parsed is None:
        return None
    try:
        return date(parsed[0], parsed[1], parsed[2])
    except ValueError:
        return None


def _compare_day(name: str, day: date | None, wanted: date) -> bool:
    if day is None:
        return False
    if name.endswith("BEFORE"):
        return day < wanted
    if name.endswith("ON"):
        return day == wanted
    return day >= wanted  # SINCE: within or later than the date


def _header_fields_text(header: bytes) -> str:
    from server.mime import header_fields

    return "\n".join(f"{n}: {decode_header_value(v)}" for n, v in header_fields(header))


def _body_text(cand: Candidate) -> str:
    """The decoded text of the message's text parts (transfer encoding and charset undone)."""
    assert cand.summary is not None and cand.raw is not None
    out: list[str] = []
    for part in cand.summary.leaves():
        if part.type == "text" or part.is_message:
            out.append(part_text(cand.raw[part.body_start : part.body_end], part))
    return "\n".join(out)


@dataclass(slots=True)
class _Context:
    sel: Selected
    now: float
    saved: frozenset[int] = frozenset()
    sets: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    save_dates: dict[int, float] = field(default_factory=dict)   # UID -> RFC 8514 save date


def _match(key: SearchKey, cand: Candidate, ctx: _Context, level: int) -> bool | None:
    """True / False, or None when the key needs data above ``level`` (Kleene logic)."""
    if isinstance(key, SearchAnd):
        result: bool | None = True
        for k in key.keys:
            v = _match(k, cand, ctx, level)
            if v is False:
                return False
            if v is None:
                result = None
        return result
    if isinstance(key, SearchOr):
        left = _match(key.left, cand, ctx, level)
        if left is True:
            return True
        right = _match(key.right, cand, ctx, level)
        if right is True:
            return True
        return None if left is None or right is None else False
    if isinstance(key, SearchNot):
        v = _match(key.key, cand, ctx, level)
        return None if v is None else not v
    if _cost(key) > level:
        return None
    return _leaf(key, cand, ctx)


_FLAG_KEYS: dict[str, Callable[[tuple[str, ...]], bool]] = {
    "ALL": lambda kw: True,
    "ANSWERED": lambda kw: "$answered" in kw,
    "DELETED": lambda kw: "$deleted" in kw,
    "DRAFT": lambda kw: "$draft" in kw,
    "FLAGGED": lambda kw: "$flagged" in kw,
    "SEEN": lambda kw: "$seen" in kw,
    "UNANSWERED": lambda kw: "$answered" not in kw,
    "UNDELETED": lambda kw: "$deleted" not in kw,
    "UNDRAFT": lambda kw: "$draft" not in kw,
    "UNFLAGGED": lambda kw: "$flagged" not in kw,
    "UNSEEN": lambda kw: "$seen" not in kw,
    # \Recent is not kept (RFC 9051 removed it): no message is recent in any session
    "RECENT": lambda kw: False,
    "NEW": lambda kw: False,
    "OLD": lambda kw: True,
    # RFC 8514 §4.2: every mailbox keeps save dates, so this matches every message
    "SAVEDATESUPPORTED": lambda kw: True,
}


def _leaf(key: SearchKey, cand: Candidate, ctx: _Context) -> bool:
    m = cand.message
    if isinstance(key, SearchFlag):
        return _FLAG_KEYS[key.name](m.keywords)
    if isinstance(key, SearchKeyword):
        try:
            kw = keyword_from_imap(key.flag)
        except ValueError:
            return not key.present
        return (kw in m.keywords) == key.present
    if isinstance(key, SearchSet):
        if key.messages.saved:
            return cand.uid in ctx.saved
        ranges = ctx.sets[id(key)]
        n = cand.uid if key.uid else cand.seq
        return any(lo <= n <= hi for lo, hi in ranges)
    if isinstance(key, SearchModSeq):
        return m.modseq >= key.modseq
    if isinstance(key, SearchObjectId):
        if key.name == "EMAILID":
            return m.email_id == key.id
        return cand.email is not None and cand.email.thread_id == key.id
    if isinstance(key, SearchDate) and key.name.startswith("SAVED"):
        # RFC 8514 §4.2: the save date's day (kept in UTC, like the internal date); a message
        # saved before save dates were kept has none and matches no SAVED* key
        saved = ctx.save_dates.get(m.uid)
        day = None if saved is None else datetime.fromtimestamp(saved, UTC).date()
        return _compare_day(key.name, day, key.day)
    email = cand.email
    if email is None:  # gone since the flags were read (destroyed meanwhile)
        return False
    if isinstance(key, SearchDate):
        if key.name.startswith("SENT"):
            return cand.summary is not None and _compare_day(
                key.name, _sent_day(cand.summary), key.day)
        return _compare_day(key.name, _internal_day(email), key.day)
    if isinstance(key, SearchSize):
        return email.size > key.size if key.larger else email.size < key.size
    if isinstance(key, SearchAge):
        age = ctx.now - email.received_at
        return age > key.seconds if key.older else age <= key.seconds
    summary = cand.summary
    if summary is None:
        return False
    if isinstance(key, SearchText):
        env = summary.envelope
        if key.name == "SUBJECT":
            return _contains(env.decoded_subject, key.value)
        if key.name in ("FROM", "TO", "CC", "BCC"):
            field_ = {"FROM": env.from_, "TO": env.to, "CC": env.cc, "BCC": env.bcc}[key.name]
            return _contains(_addresses(field_), key.value)
        if cand.raw is None:
            return False
        if key.name == "BODY":
            return _contains(_body_text(cand), key.value)
        return _contains(_header_fields_text(cand.raw[: summary.header_end]), key.value) or (
            _contains(_body_text(cand), key.value))
    assert isinstance(key, SearchHeader)
    if cand.header is None:
        return False
    values = get_header(cand.header, key.field)
    return any(_contains(decode_header_value(v), key.value) for v in values)


# -- loading ----------------------------------------------------------------------------


async def _read_each(
    tr: Transaction, read: Callable[[Transaction, str, str], Awaitable[T]], account_id: str,
    ids: list[str],
) -> list[T]:
    return [await read(tr, account_id, i) for i in ids]


async def _batched(s: Session, cands: list[Candidate],
                   read: Callable[[Transaction, str, str], Awaitable[T]],
                   keep: Callable[[Candidate, T], None]) -> None:
    """``read`` of each candidate's email, ``_BATCH`` per transaction."""
    for i in range(0, len(cands), _BATCH):
        part = cands[i : i + _BATCH]
        values = await transact(s.ctx.engine, _read_each, read, s.account_id,
                                [x.message.email_id for x in part])
        for cand, value in zip(part, values, strict=True):
            keep(cand, value)


def _keep_email(cand: Candidate, email: Email | None) -> None:
    cand.email = email


def _keep_summary(cand: Candidate, raw: bytes | None) -> None:
    try:
        cand.summary = MessageSummary.from_bytes(raw) if raw else None
    except ValueError:  # damaged or from a newer format: matches no envelope key
        log.warning("unreadable summary of email %s", cand.message.email_id)
        cand.summary = None


async def _load(s: Session, cands: list[Candidate], level: int) -> None:
    if level == EMAIL:
        await _batched(s, [x for x in cands if x.email is None], get_email, _keep_email)
    elif level == SUMMARY:
        await _batched(s, [x for x in cands if x.summary is None], get_summary, _keep_summary)
    elif level in (HEADER, BODY):
        blobs = s.ctx.blobs
        if blobs is None:
            raise no("Message bodies are not available", "UNAVAILABLE")
        for cand in cands:
            if cand.email is None or cand.summary is None or cand.raw is not None:
                continue
            if level == BODY:
                cand.raw = await blobs.get(cand.email.blob_id)
                cand.header = cand.raw[: cand.summary.header_end]
            elif cand.header is None:
                cand.header = await blobs.read_range(
                    cand.email.blob_id, 0, cand.summary.header_end)


async def _messages(s: Session, sel: Selected) -> list[Candidate]:
    """The session's messages (its sequence numbers) with their flags and modseqs."""
    by_uid: dict[int, Message] = {}
    first = 1
    while True:  # pages, so that a large mailbox stays within a transaction's limits
        page = await transact(s.ctx.engine, list_messages, s.account_id, sel.mailbox_id,
                              first_uid=first, limit=_PAGE)
        by_uid.update((m.uid, m) for m in page)
        if len(page) < _PAGE:
            break
        first = page[-1].uid + 1
    return [Candidate(n, by_uid[u]) for n, u in enumerate(sel.uids, 1) if u in by_uid]


def _prepare(key: SearchKey, ctx: _Context) -> None:
    """Resolve the key's sequence sets once, against the session's view."""
    if isinstance(key, SearchSet) and not key.messages.saved:
        largest = (ctx.sel.uids[-1] if ctx.sel.uids else 0) if key.uid else len(ctx.sel.uids)
        ctx.sets[id(key)] = list(key.messages.resolve(largest))
    elif isinstance(key, SearchAnd):
        for k in key.keys:
            _prepare(k, ctx)
    elif isinstance(key, SearchOr):
        _prepare(key.left, ctx)
        _prepare(key.right, ctx)
    elif isinstance(key, SearchNot):
        _prepare(key.key, ctx)


def _uses_save_dates(key: SearchKey) -> bool:
    if isinstance(key, SearchAnd):
        return any(_uses_save_dates(k) for k in key.keys)
    if isinstance(key, SearchOr):
        return _uses_save_dates(key.left) or _uses_save_dates(key.right)
    if isinstance(key, SearchNot):
        return _uses_save_dates(key.key)
    return isinstance(key, SearchDate) and key.name.startswith("SAVED")


async def _save_dates(s: Session, sel: Selected) -> dict[int, float]:
    """UID -> save date of the selected mailbox's messages, in pages like the flags."""
    out: dict[int, float] = {}
    after = 0
    while True:
        page = await transact(s.ctx.engine, list_save_dates, s.account_id, sel.mailbox_id,
                              after_uid=after, limit=_PAGE)
        out.update(page)
        if len(page) < _PAGE:
            return out
        after = max(page)


# Flag keys whose value does not depend on the message: decided by its place alone.
_PLACE_FLAGS = frozenset(("ALL", "OLD", "RECENT", "NEW", "SAVEDATESUPPORTED"))


def _by_place(key: SearchKey) -> bool:
    """Whether ``key`` needs nothing of a message but its sequence number and UID (ALL,
    sequence sets, UID sets, ``$`` and their combinations)."""
    if isinstance(key, SearchAnd):
        return all(_by_place(k) for k in key.keys)
    if isinstance(key, SearchOr):
        return _by_place(key.left) and _by_place(key.right)
    if isinstance(key, SearchNot):
        return _by_place(key.key)
    if isinstance(key, SearchFlag):
        return key.name in _PLACE_FLAGS
    return isinstance(key, SearchSet)


def _place_match(key: SearchKey, seq: int, uid: int, ctx: _Context) -> bool:
    if isinstance(key, SearchAnd):
        return all(_place_match(k, seq, uid, ctx) for k in key.keys)
    if isinstance(key, SearchOr):
        return _place_match(key.left, seq, uid, ctx) or _place_match(key.right, seq, uid, ctx)
    if isinstance(key, SearchNot):
        return not _place_match(key.key, seq, uid, ctx)
    if isinstance(key, SearchFlag):
        return _FLAG_KEYS[key.name](())
    assert isinstance(key, SearchSet)
    if key.messages.saved:
        return uid in ctx.saved
    n = uid if key.uid else seq
    return any(lo <= n <= hi for lo, hi in ctx.sets[id(key)])


async def _present(tr: Transaction, account_id: str, mailbox_id: str) -> UidMap:
    st = await get_status(tr, account_id, mailbox_id)
    return UidMap.from_runs(await list_uid_runs(tr, account_id, mailbox_id,
                                                expected=st.messages))


async def search_by_place(s: Session, key: SearchKey) -> tuple[list[tuple[int, int]], bool]:
    """(sequence number, UID) of the messages matching a key that :func:`_by_place`
    accepts: the session's view against the mailbox's compact UID map (a few keys), no
    message record read.  A message another session expunged is left out, as the full
    scan leaves it out (it has no record any more); the second value tells whether the
    view had any such message."""
    sel = s.selected
    assert sel is not None
    ctx = _Context(sel, time.time(), frozenset(resolve_saved(sel)))
    _prepare(key, ctx)
    present = await transact(s.ctx.engine, _present, s.account_id, sel.mailbox_id)
    placed: list[tuple[int, int]] = []
    gone = False
    for n, u in enumerate(sel.uids, 1):
        if u not in present:
            gone = True
        elif _place_match(key, n, u, ctx):
            placed.append((n, u))
    return placed, gone


async def run_search(s: Session, key: SearchKey, *, need: int = FLAGS) -> list[Candidate]:
    """The messages matching ``key``, by sequence number, with at least ``need`` loaded."""
    return (await _scan(s, key, need))[0]


async def _scan(s: Session, key: SearchKey, need: int) -> tuple[list[Candidate], bool]:
    """:func:`run_search`'s matches, and whether the session's view held messages that
    another session expunged since (they have no record any more: left out)."""
    sel = s.selected
    assert sel is not None
    ctx = _Context(sel, time.time(), frozenset(resolve_saved(sel)))
    _prepare(key, ctx)
    if _uses_save_dates(key):
        ctx.save_dates = await _save_dates(s, sel)
    undecided = await _messages(s, sel)
    gone = len(undecided) < len(sel.uids)
    matched: list[Candidate] = []
    top = _cost(key)
    present = set(_leaves_costs(key))
    for level in range(FLAGS, top + 1):
        if level == HEADER and HEADER not in present:
            continue  # BODY / TEXT read the whole blob: no separate header read first
        if level > FLAGS and undecided:
            await _load(s, undecided, level)
        still: list[Candidate] = []
        for cand in undecided:
            v = _match(key, cand, ctx, level)
            if v is None:
                still.append(cand)
            elif v:
                matched.append(cand)
        undecided = still
    for level in range(EMAIL, need + 1):  # what the caller (SORT, THREAD) reads of the matches
        await _load(s, matched, level)
    matched.sort(key=lambda x: x.seq)
    return matched, gone


# -- the command ----------------------------------------------------------------------


async def search(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Search)
    sel = s.selected
    assert sel is not None
    returns = cmd.returns
    try:
        check_charset(cmd.charset, utf8_accept=s.utf8_accept)
        if _by_place(cmd.key):
            placed, gone = await search_by_place(s, cmd.key)
            found = None
        else:
            found, gone = await _scan(s, cmd.key, FLAGS)
    except BaseException:
        if returns is not None and "SAVE" in returns:
            sel.saved = ()  # a failed SEARCH (SAVE) empties the saved result (RFC 5182 §2.1)
        raise
    modseq = None
    if found is None:
        uids = [u for _, u in placed]
        numbers = uids if cmd.uid else [n for n, _ in placed]
    else:
        uids = [x.uid for x in found]
        numbers = uids if cmd.uid else [x.seq for x in found]
        if uses_modseq(cmd.key):
            modseq = max((x.message.modseq for x in found), default=None)
    if returns is not None and "SAVE" in returns:
        save_result(sel, returns, uids)
    write_result(s, cmd.tag, cmd.uid, returns, numbers, modseq, sorted_=False)
    # RFC 9051 section 7.1 (EXPUNGEISSUED's example is this SEARCH): messages another
    # session expunged are left out, and a SEARCH by sequence numbers cannot announce
    # them (section 7.5.1); UID SEARCH may, and does
    code = Code("EXPUNGEISSUED") if gone and not cmd.uid else None
    s.ok(cmd.tag, ("UID SEARCH" if cmd.uid else "SEARCH") + " completed", code)


def save_result(sel: Selected, returns: Sequence[str], uids: list[int]) -> None:
    """RFC 5182 §2.1: with MIN and/or MAX but neither ALL nor COUNT, only those are saved."""
    opts = set(returns)
    if opts & {"MIN", "MAX"} and not opts & {"ALL", "COUNT"} and uids:
        kept = set()
        if "MIN" in opts:
            kept.add(uids[0])
        if "MAX" in opts:
            kept.add(uids[-1])
        sel.saved = tuple(sorted(kept))
    else:
        sel.saved = tuple(uids)


def write_result(
    s: Session, tag: str, uid: bool, returns: tuple[str, ...] | None, numbers: list[int],
    modseq: int | None, *, sorted_: bool, name: str = "SEARCH",
) -> None:
    """``* SEARCH`` / ``* SORT`` for the plain form in IMAP4rev1, ``* ESEARCH`` for RETURN
    and for IMAP4rev2 (RFC 9051 §7.3.4, RFC 4731 §3.1, RFC 5267 §3 for a sorted result)."""
    if returns is None and (not s.rev2 or name == "SORT"):
        s.write(SearchData(tuple(numbers), modseq if numbers else None, name))
        return
    opts = set(returns or ()) - {"SAVE"}
    if returns is not None and not opts:
        if "SAVE" in returns:
            return  # SAVE alone: no ESEARCH response (RFC 5182 §2.1)
    if not opts:
        opts = {"ALL"}  # RETURN () and rev2's plain SEARCH mean ALL (RFC 4731 §3.1)
    if sorted_:
        first, last = (numbers[0], numbers[-1]) if numbers else (None, None)
        every = ordered_set(numbers)
    else:
        first = min(numbers, default=None)
        last = max(numbers, default=None)
        every = compress_numbers(numbers)
    s.write(ESearchData(
        tag=tag, uid=uid,
        min=first if "MIN" in opts else None,
        max=last if "MAX" in opts else None,
        all=every if "ALL" in opts and numbers else None,
        count=len(numbers) if "COUNT" in opts else None,
        modseq=modseq if numbers else None,
    ))


def ordered_set(numbers: Sequence[int]) -> SequenceSet:
    """A set keeping the given order, ascending runs as ranges (ESORT ALL, RFC 5267 §3.2)."""
    ranges: list[tuple[int | str, int | str]] = []
    for n in numbers:
        if ranges:
            lo, hi = ranges[-1]
            if isinstance(hi, int) and n == hi + 1:
                ranges[-1] = (lo, n)
                continue
        ranges.append((n, n))
    return SequenceSet(tuple(ranges))  # type: ignore[arg-type]

