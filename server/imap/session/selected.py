"""SELECT and EXAMINE (RFC 9051 sections 6.3.2-6.3.3), and the selected state's CLOSE,
UNSELECT (RFC 3691) and CHECK.  The session keeps the selected mailbox's UID map: sequence
number n is the n-th UID (RFC 9051 section 2.3.1.2)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from fdb_layers.mail import (
    Mailbox,
    MailboxNotFound,
    MailboxStatus,
    SEEN,
    Transaction,
    find_mailbox,
    get_status,
    keyword_to_imap,
    list_messages,
    list_uids,
    transact,
)
from server.imap.wire import commands as c
from server.imap.wire.responses import (
    Code,
    ExistsData,
    ExpungeData,
    FlagsData,
    RecentData,
    Untagged,
)

from .errors import bad, no
from .mailboxes import mailbox_path
from .state import Selected, Session, State

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


@dataclass(frozen=True, slots=True)
class _Opened:
    box: Mailbox
    status: MailboxStatus
    uids: list[int]
    keywords: frozenset[str]
    first_unseen: int  # 0: every message is seen


async def _open(tr: Transaction, account_id: str, name: str) -> _Opened:
    box = await find_mailbox(tr, account_id, name)
    if not box.selectable:
        raise no("Mailbox cannot be selected", "CANNOT")
    st = await get_status(tr, account_id, box.id)
    uids = await list_uids(tr, account_id, box.id)
    keywords: set[str] = set()
    first_unseen = 0
    for n, m in enumerate(await list_messages(tr, account_id, box.id), 1):
        keywords.update(m.keywords)
        if not first_unseen and SEEN not in m.keywords:
            first_unseen = n
    return _Opened(box, st, uids, frozenset(keywords), first_unseen)


async def select(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Select)
    if cmd.condstore or cmd.qresync is not None:
        raise bad("CONDSTORE and QRESYNC are not supported")
    had = s.selected is not None
    s.selected = None          # a failed SELECT leaves no mailbox selected (RFC 9051 6.3.2)
    s.state = State.AUTHENTICATED
    if had:
        s.write(Untagged("OK", "Previous mailbox closed", Code("CLOSED")))
    name = mailbox_path(cmd.mailbox)
    opened = await transact(s.ctx.engine, _open, s.account_id, name)
    box, st, uids, keywords = opened.box, opened.status, opened.uids, opened.keywords
    flags = SYSTEM_FLAGS + tuple(sorted(
        keyword_to_imap(k) for k in keywords if keyword_to_imap(k) not in SYSTEM_FLAGS))
    s.write(FlagsData(flags))
    s.write(ExistsData(len(uids)))
    if not s.rev2:
        s.write(RecentData(0))
        if opened.first_unseen:
            s.write(Untagged("OK", "First unseen", Code.number("UNSEEN", opened.first_unseen)))
    s.write(Untagged("OK", "UIDs valid", Code.number("UIDVALIDITY", st.uidvalidity)))
    s.write(Untagged("OK", "Predicted next UID", Code.number("UIDNEXT", st.uidnext)))
    permanent = () if cmd.readonly else flags + ("\\*",)
    s.write(Untagged("OK", "Permanent flags", Code.permanentflags(permanent)))
    s.write(Untagged("OK", "Highest", Code.number("HIGHESTMODSEQ", st.highestmodseq)))
    s.write(Untagged("OK", "Mailbox id", Code.mailboxid(box.id)))
    s.selected = Selected(box.id, name, st.uidvalidity, cmd.readonly, list(uids))
    s.state = State.SELECTED
    s.ok(cmd.tag, ("EXAMINE" if cmd.readonly else "SELECT") + " completed",
         Code("READ-ONLY" if cmd.readonly else "READ-WRITE"))


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


async def announce_changes(s: Session) -> None:
    """New messages of the selected mailbox as ``* n EXISTS`` (RFC 9051 section 7.4.1);
    expunges are announced once EXPUNGE exists (they cannot happen through IMAP yet)."""
    sel = s.selected
    if sel is None:
        return
    last = sel.uids[-1] if sel.uids else 0
    new = await transact(s.ctx.engine, list_uids, s.account_id, sel.mailbox_id, after_uid=last)
    if new:
        sel.uids.extend(new)
        s.write(ExistsData(len(sel.uids)))


def expunged(s: Session, uids: Sequence[int]) -> None:
    """These UIDs left the selected mailbox: drop them from the session's map and write
    ``* n EXPUNGE`` for each, n being its number at the moment that response is sent
    (RFC 9051 section 7.5.1: each EXPUNGE renumbers the messages after it).  UIDs the
    session never announced are skipped.  Costs O(k log n) lookups and one copy of the map
    (in C), so a 100,000-message expunge announced batch by batch stays cheap."""
    sel = s.selected
    if sel is None or not uids:
        return
    known = sel.uids
    positions = []
    for uid in sorted(set(uids)):
        i = bisect_left(known, uid)
        if i < len(known) and known[i] == uid:
            positions.append(i)
    if not positions:
        return
    kept: list[int] = []
    start = 0
    for removed, i in enumerate(positions):
        s.write(ExpungeData(i + 1 - removed))   # ascending: earlier ones are already gone
        kept += known[start:i]
        start = i + 1
    kept += known[start:]
    sel.uids[:] = kept
