"""FETCH and STORE with their UID forms (RFC 9051 sections 6.4.5, 6.4.6, 6.4.9) and their
CONDSTORE parts (RFC 7162 sections 3.1.3-3.1.4).

FETCH reads the messages in batches (one transaction each) and writes each batch's
responses before reading the next (:meth:`Session.flush`), so ``FETCH 1:* FLAGS`` of a
huge mailbox streams.  ENVELOPE, BODY and BODYSTRUCTURE come from the summary stored at
delivery; sections are range reads of the blob (:mod:`.sections`).  A FETCH without
PEEK of a body section sets \\Seen in a read-write mailbox and reports the new FLAGS in the
same response.  No FETCH or STORE announces an expunge (RFC 9051 section 7.5.1): a message
expunged by another session while still in this one's UID map is left out, and a FETCH
by sequence number then ends in NO [EXPUNGEISSUED] (RFC 5530 section 3) after the
responses it could give.
"""

from __future__ import annotations

import secrets
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fdb_layers.mail import (
    MAX_BATCH,
    SEEN,
    Email,
    Message,
    StoreResult,
    Transaction,
    get_email,
    get_highest_modseq,
    get_message,
    get_save_dates,
    get_status,
    get_summary,
    keyword_from_imap,
    keyword_to_imap,
    list_changed_since,
    list_messages,
    store_keywords,
    transact,
)
from server.imap.wire import commands as c
from server.imap.wire.fetch import FetchAttr, FetchBinarySize, FetchBody, FetchItem, \
    FetchPreview, Section
from server.imap.wire.fetch_data import (
    EnvelopeCell,
    FetchData,
    FetchPair,
    body_octets,
    fetch_line,
    item_binary_size,
    item_body,
    item_bodystructure,
    item_emailid,
    item_envelope,
    item_flags,
    item_internaldate,
    item_modseq,
    item_preview,
    item_savedate,
    item_section,
    item_size,
    item_threadid,
    item_uid,
    render_item,
)
from server.imap.wire.responses import Code, Tagged, Untagged
from server.imap.wire.sequence import SequenceSet, compress_numbers
from server.imap.wire.values import Raw, render
from server.mime.model import MessageSummary
from server.mime.serialize import envelope_from_bytes

from .errors import bad, no
from .sections import Source, binary_size, section_data
from .state import Selected, Session

BATCH = 256   # messages per read transaction and per flush of a FETCH

# items that need the email record (blob, size, dates, thread) or the stored summary
_EMAIL = frozenset({"INTERNALDATE", "RFC822.SIZE", "THREADID", "RFC822", "RFC822.HEADER",
                    "RFC822.TEXT"})
_SUMMARY = frozenset({"ENVELOPE", "BODY", "BODYSTRUCTURE"})
# RFC 9051 section 6.4.5: RFC822 is BODY[], RFC822.HEADER BODY.PEEK[HEADER], RFC822.TEXT
# BODY[TEXT]; the response keeps the rev1 name (RFC 3501 section 7.4.2)
_RFC822 = {
    "RFC822": FetchBody(Section()),
    "RFC822.HEADER": FetchBody(Section(text="HEADER"), peek=True),
    "RFC822.TEXT": FetchBody(Section(text="TEXT")),
}


def positions(sel: Selected, messages: SequenceSet, uid: bool) -> list[range]:
    """The 0-based positions in the UID map that a set names, as ascending disjoint ranges
    (RFC 9051 section 9: ``*`` is the largest number in use; a UID set may name UIDs that
    do not exist, a sequence set may not: BAD).  Ranges, not a list of numbers, so that
    ``1:*`` of a million messages costs nothing until it is read."""
    uids = sel.uids
    spans: list[tuple[int, int]] = []
    if messages.saved:
        # RFC 5182 section 2.1: ``$`` is the saved result, less what was expunged since
        # (the same messages with or without UID; never BAD, even when empty)
        for u in sel.saved:
            n = uids.seq(u)
            if n:
                spans.append((n - 1, n))
    elif uid:
        for lo, hi in messages.resolve(uids[-1] if uids else 0):
            spans.append((bisect_left(uids, lo), bisect_right(uids, hi)))
    else:
        for lo, hi in messages.resolve(len(uids)):
            if lo < 1 or hi > len(uids):
                raise bad("Invalid message sequence number")   # RFC 9051 section 6.4.5
            spans.append((lo - 1, hi))
    merged: list[range] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1].stop:
            start = merged[-1].start
            stop = max(stop, merged.pop().stop)
        if start < stop:
            merged.append(range(start, stop))
    return merged


def resolve(sel: Selected, messages: SequenceSet, uid: bool) -> list[tuple[int, int]]:
    """(sequence number, UID) of every message a set names, in order (for commands that
    need them all at once; FETCH and STORE go by :func:`batches`)."""
    return [(i + 1, sel.uids[i]) for span in positions(sel, messages, uid) for i in span]


def batches(sel: Selected, positions: list[range], size: int
            ) -> Iterator[list[tuple[int, int]]]:
    """(sequence number, UID) of the positions, ``size`` at a time."""
    batch: list[tuple[int, int]] = []
    for span in positions:
        at = span.start
        while at < span.stop:
            stop = min(span.stop, at + size - len(batch))
            batch += zip(range(at + 1, stop + 1), sel.uids[at:stop], strict=True)
            at = stop
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def _changed(sel: Selected, wanted: list[range], uids: list[int]
             ) -> list[tuple[int, int]]:
    """(sequence number, UID) of the given UIDs that are in the map at wanted positions."""
    starts = [span.start for span in wanted]
    out = []
    for u in uids:
        i = bisect_left(sel.uids, u)
        if i == len(sel.uids) or sel.uids[i] != u:
            continue           # arrived after this session's map: not announced yet
        k = bisect_right(starts, i) - 1
        if k >= 0 and i in wanted[k]:
            out.append((i + 1, u))
    return out


def flags_of(keywords: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(keyword_to_imap(k) for k in keywords)


# stored keywords -> their FLAGS item, as a pair and in wire form: a mailbox has few
# distinct sets of keywords, and a FETCH 1:* (FLAGS ...) renders one per message (flags
# are atoms, the same in either UTF-8 mode)
_FLAGS: dict[tuple[str, ...], tuple[FetchPair, bytes]] = {}
FLAGS_KEPT = 4096


def _flags(keywords: tuple[str, ...]) -> tuple[FetchPair, bytes]:
    got = _FLAGS.get(keywords)
    if got is None:
        name, value = item_flags(flags_of(keywords))
        assert isinstance(value, tuple)
        wire = render(value)
        got = ((name, Raw(wire)), name + b" " + wire)
        if len(_FLAGS) >= FLAGS_KEPT:
            _FLAGS.clear()
        _FLAGS[keywords] = got
    return got


def flags_item(keywords: tuple[str, ...]) -> FetchPair:
    """``FLAGS (...)`` of stored keywords, rendered once (as :func:`item_flags`)."""
    return _flags(keywords)[0]


def flags_wire(keywords: tuple[str, ...]) -> bytes:
    """The same item in wire form, ``FLAGS (...)``."""
    return _flags(keywords)[1]


@dataclass(slots=True)   # not frozen: made per message of a FETCH, and never changed
class _Record:
    message: Message
    email: Email | None
    summary: bytes | None
    saved: float | None = None   # RFC 8514 save date, read only for FETCH SAVEDATE
    envelope: EnvelopeCell | None = None   # kept in memory: the summary was not read


# (account, email id) -> its envelope and wire forms, for FETCH ENVELOPE: a stored message
# (and so its summary) never changes.  Read only for an email id the message records of the
# FETCH's own transaction name in the selected mailbox; oldest out first past the bound.
_ENVELOPES: dict[tuple[str, str], EnvelopeCell] = {}
ENVELOPES_KEPT = 10_000   # a few KB each (the envelope and its one or two wire forms)


def _envelope_cell(account_id: str, email_id: str, summary: bytes | None
                   ) -> EnvelopeCell | None:
    key = (account_id, email_id)
    cell = _ENVELOPES.get(key)
    if cell is None and summary:
        cell = EnvelopeCell(envelope_from_bytes(summary))
        if len(_ENVELOPES) >= ENVELOPES_KEPT:
            del _ENVELOPES[next(iter(_ENVELOPES))]
        _ENVELOPES[key] = cell
    return cell


async def _records(tr: Transaction, account_id: str, mailbox_id: str, uids: list[int],
                   want_email: bool, want_summary: bool,
                   want_saved: bool = False, envelope_only: bool = False) -> list[_Record]:
    """The messages of ``uids`` (ascending) that still exist: one range read when they are
    dense, point reads when sparse (or one).  ``envelope_only``: of the summary only the envelope is
    wanted, not read for a message whose envelope is kept in memory."""
    if not uids:
        return []
    if len(uids) > 1 and uids[-1] - uids[0] < 4 * len(uids):
        found = await list_messages(tr, account_id, mailbox_id, first_uid=uids[0],
                                    last_uid=uids[-1])
        if uids[-1] - uids[0] + 1 != len(uids):   # not every UID of the range is wanted
            wanted = set(uids)
            found = [m for m in found if m.uid in wanted]
    else:
        found = []
        for u in uids:
            m = await get_message(tr, account_id, mailbox_id, u)
            if m is not None:
                found.append(m)
    saved = (await get_save_dates(tr, account_id, mailbox_id, [m.uid for m in found])
             if want_saved else {})
    out = []
    storages: dict[int, str | None] = {}   # read once per batch, not once per message
    for m in found:
        email = (await get_email(tr, account_id, m.email_id, storages=storages)
                 if want_email else None)
        if want_email and email is None:
            continue   # destroyed between the two reads: as good as expunged
        summary = None
        cell = _ENVELOPES.get((account_id, m.email_id)) if envelope_only else None
        if want_summary and cell is None:
            summary = await get_summary(tr, account_id, m.email_id)
        out.append(_Record(m, email, summary, saved.get(m.uid), cell))
    return out


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a FETCH command asks for, checked once."""

    items: tuple[FetchItem, ...]
    uid: bool
    want_email: bool
    want_summary: bool
    want_saved: bool
    sets_seen: bool
    envelope_only: bool   # of the summary, only ENVELOPE: decode that alone
    modseq: bool          # every response carries MODSEQ (RFC 7162 section 3.1.4.1)
    changed_since: int | None
    # each item with what renders it: its name, or _SECTION for what reads the blob
    # (:func:`_sections`, awaited before the message's line is rendered) and _PREVIEW
    steps: tuple[tuple[str, FetchItem], ...]
    sections: bool        # some item reads the blob


_SECTION, _PREVIEW = "BODY[]", "PREVIEW"


def _step(item: FetchItem) -> tuple[str, FetchItem]:
    if isinstance(item, FetchBody | FetchBinarySize) or (
            isinstance(item, FetchAttr) and item.name in _RFC822):
        return (_SECTION, item)
    if isinstance(item, FetchPreview):
        return (_PREVIEW, item)
    assert isinstance(item, FetchAttr)
    return (item.name, item)


def _plan(s: Session, cmd: c.Fetch) -> _Plan:
    names = {i.name for i in cmd.items if isinstance(i, FetchAttr)}
    bodies = [i for i in cmd.items if isinstance(i, FetchBody)]
    sections = bool(bodies) or any(isinstance(i, FetchBinarySize) for i in cmd.items)
    # BODY[] / BODY.PEEK[] of the whole message is one blob read: no part offsets needed
    structure = any(b.binary or b.section.part or b.section.text is not None for b in bodies) \
        or any(isinstance(i, FetchBinarySize) for i in cmd.items) \
        or bool(names & {"RFC822.HEADER", "RFC822.TEXT"})
    preview = any(isinstance(i, FetchPreview) for i in cmd.items)
    reads = any(not b.peek for b in bodies) or bool(names & {"RFC822", "RFC822.TEXT"})
    steps = tuple(_step(i) for i in cmd.items)
    return _Plan(
        items=cmd.items,
        uid=cmd.uid,
        want_email=sections or bool(names & _EMAIL),
        want_summary=structure or preview or bool(names & _SUMMARY),
        want_saved="SAVEDATE" in names,
        sets_seen=reads and s.selected is not None and not s.selected.readonly,
        envelope_only=not structure and not preview and "BODY" not in names
        and "BODYSTRUCTURE" not in names,
        modseq=s.condstore and ("FLAGS" in names or "MODSEQ" in names
                                or cmd.changed_since is not None),
        changed_since=cmd.changed_since,
        steps=steps,
        sections=any(kind == _SECTION for kind, _ in steps),
    )


async def _enable_condstore(s: Session, sel: Selected) -> None:
    """RFC 7162 section 3.1: a CONDSTORE-enabling command (FETCH MODSEQ or CHANGEDSINCE,
    STORE UNCHANGEDSINCE) turns CONDSTORE on; the first one issued with a mailbox selected
    reports that mailbox's HIGHESTMODSEQ in an untagged OK."""
    if s.condstore:
        return
    s.condstore = True
    st = await transact(s.ctx.engine, get_status, s.account_id, sel.mailbox_id)
    s.write(Untagged("OK", "Highest", Code.number("HIGHESTMODSEQ", st.highestmodseq)))


async def _sections(s: Session, plan: _Plan, rec: _Record,
                    summary: MessageSummary | None) -> list[bytes]:
    """The items of a record that read its blob, in wire form, in the plan's order."""
    assert rec.email is not None   # the plan read it: sections want the email
    src = Source(s.ctx.blobs, rec.email, summary)
    out = []
    for kind, item in plan.steps:
        if kind != _SECTION:
            continue
        if isinstance(item, FetchBody):
            pair = item_section(item, await section_data(src, item))
        elif isinstance(item, FetchBinarySize):
            size = await binary_size(src, item)
            pair = (item_binary_size(item, size) if size is not None
                    else (item_binary_size(item, 0)[0], None))
        else:
            assert isinstance(item, FetchAttr)
            pair = (item.name.encode("ascii"),
                    body_octets(await section_data(src, _RFC822[item.name])))
        out.append(render_item(*pair, s.utf8))
    return out


def _line(s: Session, plan: _Plan, number: int, rec: _Record,
          summary: MessageSummary | None, sections: list[bytes],
          seen_now: tuple[int, tuple[str, ...]] | None) -> bytes:
    """One ``* n FETCH`` for a record, in wire form; ``sections`` are its items that read
    the blob (:func:`_sections`), ``seen_now`` is (modseq, keywords) when this FETCH just
    set \\Seen on it."""
    m, utf8 = rec.message, s.utf8
    modseq, keywords = seen_now if seen_now is not None else (m.modseq, m.keywords)
    parts: list[bytes] = [b"UID %d" % m.uid] if plan.uid else []
    has_flags, has_uid, at = False, plan.uid, 0
    for kind, _ in plan.steps:
        if kind == "FLAGS":
            has_flags = True
            parts.append(flags_wire(keywords))
        elif kind == "ENVELOPE":
            if plan.envelope_only:
                cell = rec.envelope or _envelope_cell(s.account_id, m.email_id, rec.summary)
                if cell is not None:
                    parts.append(cell.item(utf8))
            elif summary is not None:
                parts.append(render_item(*item_envelope(summary), utf8))
        elif kind == "UID":
            if not has_uid:
                parts.append(b"UID %d" % m.uid)
                has_uid = True
        elif kind == _SECTION:
            parts.append(sections[at])
            at += 1
        elif kind == "MODSEQ":
            pass          # added once below
        else:
            pair = _other(kind, rec, summary)
            if pair is not None:
                parts.append(render_item(*pair, utf8))
    if seen_now is not None and not has_flags:
        parts.append(flags_wire(keywords))   # RFC 9051 section 6.4.5
    if seen_now is not None and s.condstore and not has_uid:
        # RFC 7162 section 3.2.4: once CONDSTORE is enabled, a FETCH response that reports
        # an implicit \Seen carries UID and MODSEQ
        parts.append(b"UID %d" % m.uid)
    if plan.modseq or (seen_now is not None and s.condstore):
        parts.append(b"MODSEQ (%d)" % modseq)   # RFC 7162 section 3.1.4.1 (item_modseq)
    return fetch_line(number, parts)


def _other(kind: str, rec: _Record, summary: MessageSummary | None) -> FetchPair | None:
    """The items :func:`_line` does not render itself (None: nothing to say)."""
    email = rec.email
    if kind == _PREVIEW:
        return item_preview(summary.preview if summary is not None else None)
    if kind == "EMAILID":
        return item_emailid(rec.message.email_id)
    if kind == "SAVEDATE":
        # RFC 8514 section 4: NIL for a message stored before save dates were kept
        return item_savedate(None if rec.saved is None
                             else datetime.fromtimestamp(rec.saved, UTC))
    if email is not None and kind == "THREADID":
        return item_threadid(email.thread_id)
    if email is not None and kind == "INTERNALDATE":
        return item_internaldate(datetime.fromtimestamp(email.received_at, UTC))
    if email is not None and kind == "RFC822.SIZE":
        return item_size(email.size)
    if summary is not None and kind == "BODYSTRUCTURE":
        return item_bodystructure(summary)
    if summary is not None and kind == "BODY":
        return item_body(summary)
    return None


@dataclass(frozen=True, slots=True)
class _Batch:
    """One batch of a FETCH, read (and its \\Seen set) in one transaction."""

    records: list[_Record]
    found: int                    # messages of the batch that still exist
    seen: StoreResult | None      # the implicit \\Seen store, if any message lacked it
    unseen: list[int]             # UIDs lacking \\Seen that this FETCH sets, not set yet
    looked: tuple[int, int] | None  # see Selected.looked (only for the last batch)


async def _fetch_batch(tr: Transaction, account_id: str, mailbox_id: str, uids: list[int],
                       plan: _Plan, last: bool, write: tuple[str, list[int]] | None
                       ) -> _Batch:
    """The records of ``uids``, and \\Seen set on those that lack it when the FETCH sets
    it (RFC 9051 section 6.4.5), in one transaction.  For the last batch also the
    mailbox's HIGHESTMODSEQ before and after that write, so the check for others' changes
    after the command needs no transaction of its own when nobody else wrote
    (:func:`.selected.announce_changes`).  Without ``write`` a batch with \\Seen to set
    writes nothing and comes back with ``unseen``; ``write`` is (op id, those UIDs): set
    on them under that op id, so that a retry after an unknown commit result, finding
    \\Seen set, still knows it set it (``StoreResult.written``)."""
    before = await get_highest_modseq(tr, account_id, mailbox_id) if last else 0
    records = await _records(tr, account_id, mailbox_id, uids, plan.want_email,
                             plan.want_summary, plan.want_saved, plan.envelope_only)
    found = len(records)
    if plan.changed_since is not None:
        records = [r for r in records if r.message.modseq > plan.changed_since]
    unseen = [r.message.uid for r in records
              if plan.sets_seen and SEEN not in r.message.keywords]
    if unseen and write is None:
        return _Batch(records, found, None, unseen, None)
    seen = None
    if write is not None:
        op_id, unseen = write
        seen = await store_keywords(tr, account_id, mailbox_id, unseen, add=(SEEN,),
                                    op_id=op_id)
    if not last:
        return _Batch(records, found, seen, [], None)
    after = await get_highest_modseq(tr, account_id, mailbox_id) if seen else before
    return _Batch(records, found, seen, [], (before, after))


async def fetch(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Fetch) and s.selected is not None
    sel = s.selected
    if cmd.vanished and not s.qresync:
        raise bad("VANISHED needs ENABLE QRESYNC")   # RFC 7162 section 3.2.6
    wanted = positions(sel, cmd.messages, cmd.uid)
    if cmd.vanished and cmd.changed_since is not None:
        from .selected import vanished_earlier

        # RFC 7162 section 3.2.6: the expunged UIDs of the set, before the FETCH responses
        await vanished_earlier(s, cmd.messages, cmd.changed_since)
    if cmd.changed_since is not None or FetchAttr("MODSEQ") in cmd.items:
        await _enable_condstore(s, sel)
    plan = _plan(s, cmd)
    todo: list[list[tuple[int, int]]] = list(batches(sel, wanted, BATCH))
    if plan.changed_since is not None:
        # RFC 7162 section 3.1.4.1: read the modseq index from CHANGEDSINCE on rather than
        # every message the set names (a resync of a large mailbox changes few)
        changed = await transact(s.ctx.engine, list_changed_since, s.account_id,
                                 sel.mailbox_id, plan.changed_since)
        pairs = _changed(sel, wanted, [m.uid for m in changed])
        todo = [pairs[at:at + BATCH] for at in range(0, len(pairs), BATCH)]
    missing = 0
    for at, batch in enumerate(todo):
        number_of = {u: n for n, u in batch}
        uids, last = [u for _, u in batch], at == len(todo) - 1
        got = await transact(s.ctx.engine, _fetch_batch, s.account_id, sel.mailbox_id,
                             uids, plan, last, None)
        if got.unseen:
            # \\Seen to set: read again and write in one transaction, queued behind this
            # process's other writes to the account (.writers); reads never wait there
            write = (f"{secrets.token_hex(8)}.{at}", got.unseen)
            async with s.ctx.writers.lock(s.account_id):
                got = await transact(s.ctx.engine, _fetch_batch, s.account_id,
                                     sel.mailbox_id, uids, plan, last, write)
        missing += len(batch) - got.found
        seen_now: dict[int, tuple[int, tuple[str, ...]]] = {}
        if got.seen is not None:
            # only what this FETCH set: a message another session gave \\Seen meanwhile
            # keeps that session's modseq and is announced as its change
            own = set(got.seen.written)
            seen_now = {uid: (modseq, kws) for uid, modseq, kws in got.seen.messages
                        if modseq in own}
            sel.reported.update((uid, modseq) for uid, (modseq, _) in seen_now.items())
        if got.looked is not None:
            sel.looked = got.looked
        lines = []
        for rec in got.records:
            summary = (MessageSummary.from_bytes(rec.summary)
                       if rec.summary and not plan.envelope_only else None)
            sections = await _sections(s, plan, rec, summary) if plan.sections else []
            lines.append(_line(s, plan, number_of[rec.message.uid], rec, summary, sections,
                               seen_now.get(rec.message.uid)))
        s.out += lines    # in wire form already (Session.write renders a Response)
        await s.flush()
    name = ("UID " if cmd.uid else "") + "FETCH"
    if missing and not cmd.uid:
        # RFC 9051 section 7.5.1 / RFC 2180 section 4.1.2: what exists was sent; the rest
        # was expunged by another session, which this command may not announce
        s.write(Tagged(cmd.tag, "NO", f"{name}: some messages were expunged",
                       Code("EXPUNGEISSUED")))
        return
    s.ok(cmd.tag, f"{name} completed")


@dataclass(frozen=True, slots=True)
class _Stored:
    """One batch of a STORE, in one transaction."""

    result: StoreResult
    looked: tuple[int, int]       # the mailbox's HIGHESTMODSEQ before and after it


async def _store_batch(tr: Transaction, account_id: str, mailbox_id: str, uids: list[int],
                       kwargs: dict[str, list[str]], unchanged_since: int | None,
                       op_id: str | None) -> _Stored:
    """The store of one batch, and the mailbox's HIGHESTMODSEQ before and after it (so
    that the check after the command needs no reading when nobody else wrote meanwhile:
    :data:`Selected.looked`)."""
    highest = await get_highest_modseq(tr, account_id, mailbox_id)
    result = await store_keywords(tr, account_id, mailbox_id, uids,
                                  unchanged_since=unchanged_since, op_id=op_id, **kwargs)
    return _Stored(result, (highest, await get_highest_modseq(tr, account_id, mailbox_id)))


async def store(s: Session, cmd: c.Command) -> None:
    """RFC 9051 section 6.4.6: FLAGS, +FLAGS, -FLAGS (.SILENT); each message's new flags in
    an untagged FETCH unless silent (with its UID for UID STORE, RFC 9051 section 6.4.9;
    with UID and MODSEQ once CONDSTORE is enabled).  UNCHANGEDSINCE (RFC 7162 section 3.1.3):
    messages changed after it are left alone and listed in ``OK [MODIFIED set]``."""
    assert isinstance(cmd, c.Store) and s.selected is not None
    sel = s.selected
    if sel.readonly:
        # RFC 9051 section 7.1: READ-ONLY says the mailbox is selected read-only, as
        # EXPUNGE and MOVE answer; CANNOT ("can never succeed", RFC 5530) would be wrong
        raise no("Mailbox is read-only", "READ-ONLY")
    wanted = positions(sel, cmd.messages, cmd.uid)
    keywords = []
    for flag in cmd.flags:
        if flag.lower() == "\\recent":
            continue           # the server's to set (RFC 3501 section 2.3.2)
        try:
            keywords.append(keyword_from_imap(flag))
        except ValueError:     # an unknown \System flag, an over-long keyword
            raise bad(f"Invalid flag {flag[:80]}") from None
    if cmd.unchanged_since is not None:
        await _enable_condstore(s, sel)
    mode = {"+": "add", "-": "remove"}.get(cmd.mode, "replace")
    kwargs = {mode: keywords}
    modified: list[int] = []
    # names each batch, so that a retry after an unknown commit result keeps its MODIFIED
    # list and still knows the change it finds done as its own (StoreResult.written): a
    # .SILENT store must not come back as an untagged FETCH (RFC 9051 section 6.4.6)
    op_id = secrets.token_hex(8)
    # (before, after) of the batches while each began where the previous one ended: the
    # mailbox changed by this STORE alone (a STORE of 100,000 messages then needs no
    # check that reads them all back, past FoundationDB's 5-second limit at scale)
    looked: tuple[int, int] | None = None
    for step, batch in enumerate(batches(sel, wanted, MAX_BATCH)):
        number_of = {u: n for n, u in batch}
        stored = await transact(s.ctx.engine, _store_batch, s.account_id, sel.mailbox_id,
                                list(number_of), kwargs, cmd.unchanged_since,
                                f"{op_id}.{step}")
        result = stored.result
        own = set(result.written)
        if step == 0:
            looked = stored.looked
        elif looked is not None:
            looked = ((looked[0], stored.looked[1]) if stored.looked[0] == looked[1]
                      else None)
        failed = set(result.modified)
        modified += [u if cmd.uid else number_of[u] for u in result.modified]
        for uid, modseq, kws in result.messages:
            if uid in failed:
                continue
            changed = modseq in own
            if changed:
                sel.reported[uid] = modseq
            # RFC 7162 section 3.2.4: once CONDSTORE is enabled, every untagged FETCH a
            # STORE causes carries UID and MODSEQ, also for STORE by sequence number
            pairs: list[FetchPair] = [item_uid(uid)] if cmd.uid or s.condstore else []
            if not cmd.silent:
                pairs.append(flags_item(kws))
            elif not (s.condstore and changed):
                continue
            if s.condstore:
                pairs.append(item_modseq(modseq))
            s.write(FetchData(number_of[uid], tuple(pairs)))
        await s.flush()
    sel.looked = looked
    name = ("UID " if cmd.uid else "") + "STORE"
    if modified:
        s.ok(cmd.tag, f"Conditional {name} failed for some messages",
             Code.modified(compress_numbers(modified)))
        return
    s.ok(cmd.tag, f"{name} completed")
