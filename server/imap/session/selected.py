"""SELECT and EXAMINE (RFC 9051 sections 6.3.2-6.3.3), and the selected state's CLOSE,
UNSELECT (RFC 3691) and CHECK.  The session keeps the selected mailbox's UID map: sequence
number n is the n-th UID (RFC 9051 section 2.3.1.2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fdb_layers.mail import (
    DELIMITER,
    SEEN,
    CannotCalculateChanges,
    Mailbox,
    MailboxNotFound,
    MailboxStatus,
    Message,
    Transaction,
    find_mailbox,
    get_highest_modseq,
    get_mailbox,
    get_status,
    keyword_to_imap,
    list_changed_since,
    list_keywords_in_use,
    list_messages,
    list_uid_runs,
    list_uids,
    list_vanished,
    transact,
)
from server.imap.wire import commands as c
from server.imap.wire.fetch_data import FetchData, FetchPair, item_flags, item_modseq, item_uid
from server.imap.wire.responses import (
    Code,
    ExistsData,
    ExpungeData,
    FlagsData,
    ListData,
    RecentData,
    Untagged,
    VanishedData,
)
from server.imap.wire.sequence import SequenceSet, compress_numbers

from .errors import bad, no
from .mailboxes import mailbox_path
from .state import Action, Selected, Session, State
from .uidmap import UidMap

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


@dataclass(frozen=True, slots=True)
class _Opened:
    box: Mailbox
    status: MailboxStatus
    uids: UidMap
    keywords: frozenset[str]
    first_unseen: int  # 0: every message is seen (or not asked for)
    changed: list[Message]        # QRESYNC: changed since the client's modseq
    vanished: list[int] | None    # QRESYNC: expunged since; None: not known any more


_UNSEEN_PAGE = 1000
_UNSEEN_FIRST_PAGE = 32


async def _first_unseen(tr: Transaction, account_id: str, mailbox_id: str) -> int:
    """Sequence number of the first message without \\Seen, read page by page from the
    lowest UID until found (IMAP4rev1's ``[UNSEEN n]``, RFC 3501 section 6.3.1).  Pages
    start small and double: an unseen message near the start costs a few reads, not
    1,000."""
    after, seen_before, size = 0, 0, _UNSEEN_FIRST_PAGE
    while True:
        page = await list_messages(tr, account_id, mailbox_id, first_uid=after + 1,
                                   limit=size)
        for n, m in enumerate(page, seen_before + 1):
            if SEEN not in m.keywords:
                return n
        if len(page) < size:
            return 0
        after, seen_before = page[-1].uid, seen_before + len(page)
        size = min(_UNSEEN_PAGE, size * 2)


async def _open(tr: Transaction, account_id: str, name: str,
                since: int | None = None, *, want_unseen: bool = False) -> _Opened:
    """The mailbox's status, UID map (from the layer's compact map: a few keys, whatever
    the mailbox's size) and keywords in use, in one transaction."""
    box = await find_mailbox(tr, account_id, name)
    if not box.selectable:
        raise no("Mailbox cannot be selected", "CANNOT")
    st = await get_status(tr, account_id, box.id)
    uids = UidMap.from_runs(await list_uid_runs(tr, account_id, box.id, expected=st.messages))
    keywords = frozenset(await list_keywords_in_use(tr, account_id, box.id))
    first_unseen = 0
    if want_unseen and st.unseen:
        first_unseen = await _first_unseen(tr, account_id, box.id)
    changed: list[Message] = []
    vanished: list[int] | None = []
    if since is not None and since < st.highestmodseq:
        changed = await list_changed_since(tr, account_id, box.id, since)
        try:
            vanished = await list_vanished(tr, account_id, box.id, since)
        except CannotCalculateChanges:
            vanished = None
    return _Opened(box, st, uids, keywords, first_unseen, changed, vanished)


async def select(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Select)
    qr = cmd.qresync
    if qr is not None and not s.qresync:
        raise bad("QRESYNC is not enabled")   # RFC 7162 section 3.2.5
    had = s.selected is not None
    s.selected = None          # a failed SELECT leaves no mailbox selected (RFC 9051 6.3.2)
    s.state = State.AUTHENTICATED
    if had:
        s.write(Untagged("OK", "Previous mailbox closed", Code("CLOSED")))
    if cmd.condstore:
        s.condstore = True     # RFC 7162 section 3.1: SELECT (CONDSTORE) enables CONDSTORE
    name = mailbox_path(cmd.mailbox)
    opened = await transact(s.ctx.engine, _open, s.account_id, name,
                            qr.modseq if qr is not None else None, want_unseen=not s.rev2)
    box, st, uids, keywords = opened.box, opened.status, opened.uids, opened.keywords
    flags = SYSTEM_FLAGS + tuple(sorted(
        keyword_to_imap(k) for k in keywords if keyword_to_imap(k) not in SYSTEM_FLAGS))
    s.write(FlagsData(flags))
    s.write(ExistsData(len(uids)))  # RFC 9051 section 7.4.1
    if s.rev2:
        # RFC 9051 section 6.3.2: LIST is a required untagged response of an IMAP4rev2
        # SELECT / EXAMINE (the attributes MAY be accurate: none given)
        s.write(ListData((), DELIMITER, name))
    else:
        s.write(RecentData(0))
        if opened.first_unseen:
            s.write(Untagged("OK", "First unseen", Code.number("UNSEEN", opened.first_unseen)))
    s.write(Untagged("OK", "UIDs valid", Code.number("UIDVALIDITY", st.uidvalidity)))
    s.write(Untagged("OK", "Predicted next UID", Code.number("UIDNEXT", st.uidnext)))
    permanent = () if cmd.readonly else flags + ("\\*",)
    s.write(Untagged("OK", "Permanent flags", Code.permanentflags(permanent)))
    s.write(Untagged("OK", "Highest", Code.number("HIGHESTMODSEQ", st.highestmodseq)))
    s.write(Untagged("OK", "Mailbox id", Code.mailboxid(box.id)))
    sel = Selected(box.id, name, st.uidvalidity, cmd.readonly, uids,
                   modseq=st.highestmodseq, last_uid=st.uidnext - 1)
    s.selected = sel
    s.state = State.SELECTED
    if qr is not None and qr.uidvalidity == st.uidvalidity:
        _resync(s, sel, qr, opened)
    s.ok(cmd.tag, ("EXAMINE" if cmd.readonly else "SELECT") + " completed",
         Code("READ-ONLY" if cmd.readonly else "READ-WRITE"))


def _uid_set(uids: SequenceSet, largest: int) -> set[int] | None:
    """The UIDs of a known-uids set, None for ``1:*`` (everything)."""
    out: set[int] = set()
    for lo, hi in uids.resolve(largest):
        if hi - lo > 1_000_000:
            return None
        out.update(range(lo, hi + 1))
    return out


def _resync(s: Session, sel: Selected, qr: c.QResync, opened: _Opened) -> None:
    """RFC 7162 section 3.2.5.1: what the client missed since its modseq, as
    ``* VANISHED (EARLIER)`` and FETCH responses, before the tagged OK."""
    known = _uid_set(qr.known_uids, sel.last_uid) if qr.known_uids is not None else None
    vanished = opened.vanished
    if vanished is None:   # tombstones compacted: every known UID no longer here
        top = max(known) if known else sel.last_uid
        present = set(sel.uids) if top else set()
        candidates: Iterable[int] = sorted(known) if known is not None else range(1, top + 1)
        vanished = [u for u in candidates if u not in present]
    if known is not None:
        vanished = [u for u in vanished if u in known]
    if vanished:
        s.write(VanishedData(compress_numbers(vanished), earlier=True))
    for m in opened.changed:
        n = sel.uids.seq(m.uid)
        if n:
            s.write(FetchData(n, _flag_items(s, m.uid, m.keywords, m.modseq)))


def _flag_items(s: Session, uid: int, keywords: Sequence[str], modseq: int
                ) -> tuple[FetchPair, ...]:
    items = [item_flags(tuple(keyword_to_imap(k) for k in keywords)), item_uid(uid)]
    if s.condstore:
        items.append(item_modseq(modseq))
    return tuple(items)


async def unselect(s: Session, cmd: c.Command) -> None:
    s.selected = None
    s.state = State.AUTHENTICATED
    s.ok(cmd.tag, "UNSELECT completed")


async def close(s: Session, cmd: c.Command) -> None:
    """RFC 9051 section 6.4.1: expunges \\Deleted messages silently (no untagged EXPUNGE)
    when the mailbox is read-write, then leaves the selected state."""
    sel = s.selected
    assert sel is not None
    if not sel.readonly:
        from .mutate import expunge_deleted

        try:
            await expunge_deleted(s, sel.mailbox_id)
        except MailboxNotFound:
            pass   # deleted meanwhile (by another session): nothing left to expunge
    s.selected = None
    s.state = State.AUTHENTICATED
    s.ok(cmd.tag, "CLOSE completed")


async def check(s: Session, cmd: c.Command) -> None:
    await announce_changes(s)
    s.ok(cmd.tag, "CHECK completed")


def allows_expunge(cmd: c.Command) -> bool:
    """RFC 9051 section 7.5.1: no EXPUNGE (nor VANISHED, RFC 7162 section 3.2.10) while
    answering FETCH, STORE or SEARCH (nor SORT/THREAD, RFC 5256 section 4), whose sequence
    numbers it would shift; their UID forms may announce expunges."""
    if isinstance(cmd, (c.Fetch, c.Store, c.Search, c.Sort, c.Thread)):
        return cmd.uid
    return True


def expunged(s: Session, uids: Iterable[int]) -> None:
    """Take ``uids`` out of the session's map and announce it: one ``* n EXPUNGE`` each
    (n as of the moment it is sent, RFC 9051 section 7.4.1), or one ``* VANISHED uid-set``
    when QRESYNC is enabled (RFC 7162 section 3.2.10).  UIDs not in the map are ignored."""
    sel = s.selected
    if sel is None:
        return
    gone = sorted(u for u in set(uids) if u in sel.uids)
    sel.pending_expunge.difference_update(gone)
    if not gone:
        return
    if s.qresync:
        for u in gone:
            sel.uids.remove(u)
        s.write(VanishedData(compress_numbers(gone)))
        return
    for u in gone:             # ascending; each number is as of its own response (7.5.1)
        n = sel.uids.seq(u)
        sel.uids.remove(u)
        s.write(ExpungeData(n))


@dataclass(frozen=True, slots=True)
class _Look:
    highestmodseq: int
    changed: list[Message]
    vanished: list[int] | None     # None: not known (tombstones compacted): see current
    current: list[int] | None
    uidvalidity: int               # the mailbox's now (read when something changed)


async def _look(tr: Transaction, account_id: str, mailbox_id: str, since: int,
                uidvalidity: int) -> _Look:
    highest = await get_highest_modseq(tr, account_id, mailbox_id)
    if highest <= since:
        return _Look(highest, [], [], None, uidvalidity)
    box = await get_mailbox(tr, account_id, mailbox_id)
    if box.uidvalidity != uidvalidity:   # new storage (RENAME INBOX): nothing else holds
        return _Look(highest, [], [], None, box.uidvalidity)
    changed = await list_changed_since(tr, account_id, mailbox_id, since)
    try:
        return _Look(highest, changed,
                     await list_vanished(tr, account_id, mailbox_id, since), None,
                     uidvalidity)
    except CannotCalculateChanges:
        return _Look(highest, changed, None,
                     await list_uids(tr, account_id, mailbox_id), uidvalidity)


async def follow_renamed_inbox(s: Session) -> None:
    """This session renamed INBOX while it had INBOX selected (RFC 9051 section 6.3.6):
    the messages moved away and INBOX goes on with new storage and a new UIDVALIDITY.
    Every message the session announced is expunged (RENAME may announce expunges,
    section 7.5.1), the new UIDVALIDITY is announced (section 7.1), and what the new
    INBOX holds comes as new messages; no UID is reused under the old UIDVALIDITY
    (section 2.3.1.1)."""
    sel = s.selected
    if sel is None or sel.name != "INBOX":
        return
    st = await transact(s.ctx.engine, get_status, s.account_id, sel.mailbox_id)
    if st.uidvalidity == sel.uidvalidity:
        return
    expunged(s, list(sel.uids))
    sel.uidvalidity, sel.uids, sel.last_uid, sel.modseq = st.uidvalidity, UidMap(), 0, 0
    sel.pending_expunge.clear()
    sel.reported.clear()
    sel.saved = ()
    s.write(Untagged("OK", "INBOX has a new UIDVALIDITY",
                     Code.number("UIDVALIDITY", st.uidvalidity)))


def _lost(s: Session, text: str) -> None:
    """The selected mailbox's UIDs are void (INBOX renamed, given new storage and a new
    UIDVALIDITY, RFC 9051 section 6.3.6): the session cannot go on with the UIDs it
    announced, which may not be reused under their UIDVALIDITY (section 2.3.1.1), so it
    ends with an untagged BYE (section 7.1.5; RFC 2180 section 3.3 describes this
    practice).  A mailbox deleted meanwhile is left to each command's NO instead."""
    s.selected = None
    s.idling = None
    s.write(Untagged("BYE", text))
    s.state = State.LOGOUT
    s.action = Action.CLOSE


async def announce_changes(s: Session, *, expunges: bool = True, flags: bool = True) -> None:
    """What others changed in the selected mailbox since this session last looked
    (RFC 9051 sections 5.2, 7.4.1, 7.5.1): expunges (``* n EXPUNGE`` or ``* VANISHED``,
    only when ``expunges``; until then the UIDs stay in the map), ``* n EXISTS`` for new
    messages and ``* n FETCH (FLAGS .. UID .. [MODSEQ ..])`` for flag changes (only when
    ``flags``; until then the changes stay to announce: NOTIFY without FlagChange, RFC 5465
    section 5.1).  Driven by the mailbox's modseq: one read of its status when nothing
    changed."""
    sel = s.selected
    if sel is None:
        return
    looked, sel.looked = sel.looked, None
    if looked is not None and looked[0] <= sel.modseq and flags \
            and not (expunges and sel.pending_expunge):
        # the command's own transaction saw no change by others (what _look would find
        # at that point); its own changes are in sel.reported, not announced again
        sel.modseq = max(sel.modseq, looked[1])
        sel.reported.clear()
        return
    look = await transact(s.ctx.engine, _look, s.account_id, sel.mailbox_id, sel.modseq,
                          sel.uidvalidity)
    if sel is not s.selected:
        return
    if look.uidvalidity != sel.uidvalidity:
        _lost(s, "The selected mailbox was renamed; its UIDVALIDITY changed")
        return
    if look.vanished is not None:
        sel.pending_expunge.update(u for u in look.vanished if u <= sel.last_uid and u in sel.uids)
    elif look.current is not None:
        still = set(look.current)
        sel.pending_expunge.update(u for u in sel.uids if u not in still)
    if expunges and sel.pending_expunge:
        expunged(s, sel.pending_expunge)
    old_last = sel.last_uid
    gone = set(look.vanished or ())
    new = sorted(m.uid for m in look.changed if m.uid > old_last and m.uid not in gone)
    if new:
        sel.uids.extend(new)
        sel.last_uid = new[-1]
        s.write(ExistsData(len(sel.uids)))
    if not flags:
        return
    for m in look.changed:
        if m.uid <= old_last and m.uid not in sel.pending_expunge \
                and sel.reported.get(m.uid) != m.modseq:
            n = sel.uids.seq(m.uid)
            if n:
                s.write(FetchData(n, _flag_items(s, m.uid, m.keywords, m.modseq)))
    sel.modseq = max(sel.modseq, look.highestmodseq)
    sel.reported.clear()


async def vanished_earlier(s: Session, uids: SequenceSet, since: int) -> None:
    """``* VANISHED (EARLIER) uid-set``: the UIDs of ``uids`` expunged after modseq
    ``since``, for UID FETCH ... (CHANGEDSINCE since VANISHED) (RFC 7162 section 3.2.6),
    which calls this before its FETCH responses.  When the tombstones that old are gone,
    every UID of ``uids`` up to the highest known that is not in the mailbox (allowed:
    the client then drops what it does not have)."""
    sel = s.selected
    assert sel is not None
    if not s.qresync:
        raise bad("VANISHED requires ENABLE QRESYNC")
    ranges = list(uids.resolve(sel.last_uid))
    try:
        gone = await transact(s.ctx.engine, list_vanished, s.account_id, sel.mailbox_id, since)
    except CannotCalculateChanges:
        gone = [u for lo, hi in ranges for u in range(lo, min(hi, sel.last_uid) + 1)
                if u not in sel.uids]
    wanted = [u for u in gone if any(lo <= u <= hi for lo, hi in ranges)]
    if wanted:
        s.write(VanishedData(compress_numbers(wanted), earlier=True))


def enable(s: Session, name: str) -> str | None:
    """ENABLE CONDSTORE / QRESYNC (RFC 7162 sections 3.1, 3.2.3; QRESYNC implies
    CONDSTORE): the name to list in ``* ENABLED`` when newly enabled, else None."""
    upper = name.upper()
    if upper == "CONDSTORE" and not s.condstore:
        s.condstore = True
        return "CONDSTORE"
    if upper == "QRESYNC" and not s.qresync:
        s.qresync = s.condstore = True
        return "QRESYNC"
    return None
