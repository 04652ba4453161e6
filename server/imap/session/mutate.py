"""Commands that change which messages a mailbox holds: APPEND (RFC 9051 section 6.3.12)
with MULTIAPPEND (RFC 3502) and APPENDLIMIT (RFC 7889), COPY and MOVE (RFC 9051 sections
6.4.7-6.4.8, RFC 6851), EXPUNGE and UID EXPUNGE (RFC 9051 section 6.4.3, RFC 4315), the
silent expunge of CLOSE, and REPLACE (RFC 8508), with UIDPLUS's APPENDUID and COPYUID
(RFC 4315 section 3).

New messages go in through the one delivery pipeline (:mod:`server.delivery`, source
APPEND); copies, moves and expunges through the mail layer's calls, in batches of at most
:data:`BATCH` messages per transaction so that one command over 100,000 messages stays
within the store's limits.  Expunges reach the session's UID map and the client through
:func:`.selected.expunged`."""

from __future__ import annotations

import asyncio
import secrets
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence

from fdb_layers.mail import (
    MAX_BATCH,
    Email,
    Mailbox,
    MailboxNotFound,
    Message,
    Transaction,
    copy_messages,
    destroy_email,
    expunge_messages,
    find_mailbox,
    get_emails,
    get_messages,
    keyword_from_imap,
    move_messages,
    transact,
)
from server.blobs.base import BlobRef
from server.delivery import (
    DeliveryRequest,
    DeliveryResult,
    Recipient,
    Refused,
    Source,
    Stored,
)
from server.imap.wire import commands as c
from server.imap.wire.responses import Code, Untagged
from server.imap.wire.sequence import SeqNumber, SequenceSet

from .errors import bad, no
from .mailboxes import mailbox_path
from .search import resolve_saved
from .selected import announce_changes, expunged
from .state import Selected, Session

BATCH = MAX_BATCH  # messages per transaction for COPY, MOVE and EXPUNGE (tests lower it)


# -- message sets ---------------------------------------------------------------------------


def selected_uids(s: Session, messages: SequenceSet, uid: bool) -> list[int]:
    """The UIDs, ascending, that a sequence set names in the selected mailbox.

    Sequence numbers must exist (RFC 9051 section 9: a number above the mailbox's count
    is an error, answered BAD); UID sets name whichever UIDs exist in their ranges
    (RFC 9051 section 6.4.9), ``*`` being the highest UID."""
    sel = s.selected
    assert sel is not None
    if messages.saved:
        return resolve_saved(sel)   # SEARCHRES (RFC 5182 section 2.1)
    known = sel.uids
    if not uid:
        count = len(known)
        picked: list[int] = []
        for lo, hi in _coalesced(messages.resolve(count)):
            if lo < 1 or hi > count:
                raise bad("Invalid message sequence number")
            picked += known[lo - 1:hi]
        return picked
    if not known:
        return []
    found: list[int] = []
    for lo, hi in _coalesced(messages.resolve(known[-1])):
        found += known[bisect_left(known, lo):bisect_right(known, hi)]
    return found


def _coalesced(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges sorted and merged where they overlap or touch, so that a set repeating
    ``1:*`` thousands of times costs one pass over the mailbox, not thousands."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def uid_list(uids: Sequence[int]) -> SequenceSet:
    """UIDs in the order given, as ranges of consecutive runs (the order matters for
    COPYUID, whose two sets correspond element by element: RFC 4315 section 3)."""
    ranges: list[tuple[SeqNumber, SeqNumber]] = []
    start = prev = None
    for u in uids:
        if prev is not None and u == prev + 1:
            prev = u
            continue
        if start is not None and prev is not None:
            ranges.append((start, prev))
        start = prev = u
    if start is not None and prev is not None:
        ranges.append((start, prev))
    return SequenceSet(tuple(ranges))


def _chunks(uids: Sequence[int]) -> list[Sequence[int]]:
    return [uids[i:i + BATCH] for i in range(0, len(uids), BATCH)]


async def _target(s: Session, name: str) -> Mailbox:
    """The destination of APPEND, COPY, MOVE, REPLACE: a missing one is ``NO [TRYCREATE]``
    (RFC 9051 section 6.3.12).  Always one of the session's own account's mailboxes."""
    try:
        box = await transact(s.ctx.engine, find_mailbox, s.account_id, mailbox_path(name))
    except MailboxNotFound:
        raise no("Mailbox does not exist", "TRYCREATE") from None
    if not box.selectable:
        raise no("Mailbox cannot hold messages", "CANNOT")
    return box


def _writable(sel: Selected) -> None:
    if sel.readonly:
        raise no("Mailbox is read-only", "READ-ONLY")


# -- APPEND, MULTIAPPEND, REPLACE ----------------------------------------------------------


def _keywords(flags: tuple[str, ...]) -> tuple[str, ...]:
    """APPEND's flags as the layer's keywords; \\Recent cannot be set (RFC 3501 section
    2.3.2) and is ignored, an unknown system flag is refused."""
    out = []
    for flag in flags:
        if flag.lower() == "\\recent":
            continue
        try:
            out.append(keyword_from_imap(flag))
        except ValueError:
            raise bad(f"Invalid flag {flag[:40]}") from None
    return tuple(out)


async def _quota(s: Session) -> int:
    """The account's quota in bytes (0: none), from the directory at request time.  The
    login may be a name or an address (``alice@example.test``): the principal is the one
    of the session's account id, never another's, and never none (no quota to enforce)."""
    directory = s.ctx.authenticator.directory
    found = await directory.get_principal(s.login)
    if found is None or found.id != s.account_id:
        owners = await directory.resolve_recipient(s.login) if "@" in s.login else []
        found = next((p for p in owners if p.id == s.account_id), None)
    if found is None:
        raise no("Account not found in the directory", "UNAVAILABLE")
    return found.quota


def _refusal(refused: Refused) -> Exception:
    """The exception that answers a refused delivery (through the session's one table:
    OVERQUOTA, TOOBIG, UNAVAILABLE ...); a mailbox deleted meanwhile is TRYCREATE."""
    if isinstance(refused.error, MailboxNotFound):
        return no("Mailbox does not exist", "TRYCREATE")
    return refused.error


def _eight_bit_header(data: bytes) -> bool:
    """Whether the message's header (up to the first empty line) has an octet over 127."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    header = data if end < 0 else data[:end]
    return not header.isascii()


async def _deliver(s: Session, box: Mailbox, messages: Sequence[c.AppendMessage]) -> list[int]:
    """Store each message in ``box``; their UIDs there, in order.  All or nothing
    (RFC 3502 section 6.3.11): if one is refused, those stored before it are destroyed
    again before the refusal is raised."""
    delivery = s.ctx.delivery
    if delivery is None:
        raise no("APPEND is not available on this server", "UNAVAILABLE")
    for m in messages:
        if m.utf8 and not s.utf8:
            raise bad("UTF8 APPEND data needs ENABLE UTF8=ACCEPT (RFC 6855 section 4)")
        if not s.utf8 and _eight_bit_header(m.data):
            # RFC 6855 section 4: without ENABLE UTF8=ACCEPT, 8-bit header fields are NO
            raise no("8-bit header fields need ENABLE UTF8=ACCEPT (RFC 6855 section 4)",
                     "CANNOT")
    keywords = [_keywords(m.flags) for m in messages]
    quota = await _quota(s)
    stored: list[Stored] = []
    try:
        for m, kw in zip(messages, keywords, strict=True):
            request = DeliveryRequest(
                Source.APPEND, m.data, (Recipient(s.account_id, quota),),
                idempotency_id="imap-append:" + secrets.token_hex(16),
                mailbox_ids=(box.id,), keywords=kw,
                received_at=m.date.timestamp() if m.date is not None else None)
            stored.append(_stored((await delivery.deliver(request))[0]))
    except BaseException:   # a refusal, or the connection gone (cancelled): undo
        await asyncio.shield(_undo(s, box, [], [r.email_id for r in stored]))
        raise
    return [_uid_in(box, r) for r in stored]


async def append(s: Session, cmd: c.Command) -> None:
    """APPEND / MULTIAPPEND: the tagged OK comes after the messages are durable, with
    ``[APPENDUID uidvalidity uid-set]`` (RFC 4315 section 3); a message appended to the
    selected mailbox is announced with ``* n EXISTS`` first (RFC 9051 section 6.3.12)."""
    assert isinstance(cmd, c.Append)
    box = await _target(s, cmd.mailbox)
    uids = await _deliver(s, box, cmd.messages)
    if s.selected is not None and s.selected.mailbox_id == box.id:
        await announce_changes(s)
    s.ok(cmd.tag, "APPEND completed", Code.appenduid(box.uidvalidity, uid_list(uids)))


async def replace(s: Session, cmd: c.Command) -> None:
    """REPLACE / UID REPLACE (RFC 8508 section 3): append the new message, then expunge
    the old one; if the append fails the old message stays.  Responses: ``* OK
    [APPENDUID ...]``, any ``* n EXISTS``, the ``* n EXPUNGE``, then the tagged OK."""
    assert isinstance(cmd, c.Replace)
    sel = s.selected
    assert sel is not None
    _writable(sel)
    old = selected_uids(s, SequenceSet(((cmd.message_id, cmd.message_id),)), cmd.uid)
    if not old:
        raise no("No such message", "NONEXISTENT")
    box = await _target(s, cmd.mailbox)
    uids = await _deliver(s, box, [cmd.message])
    s.write(Untagged("OK", "Replacement stored", Code.appenduid(box.uidvalidity, uid_list(uids))))
    if box.id == sel.mailbox_id:
        await announce_changes(s)
    result = await transact(s.ctx.engine, expunge_messages, s.account_id, sel.mailbox_id,
                            uids=old, only_deleted=False, op_id=secrets.token_hex(8))
    expunged(s, result.uids)
    s.ok(cmd.tag, "REPLACE completed")


# -- COPY, MOVE ------------------------------------------------------------------------------


async def _classify(tr: Transaction, account_id: str, source_id: str, uids: Sequence[int],
                    target_id: str) -> tuple[list[int], list[tuple[int, Email, Message]]]:
    """The messages of ``uids`` still there, split into those whose email can join the
    target and those whose email is in the target already (a copy into the same
    mailbox, or a second copy): those are stored again as new messages."""
    join: list[int] = []
    again: list[tuple[int, Email, Message]] = []
    found = await get_messages(tr, account_id, source_id, uids)   # read at once, not
    emails = await get_emails(tr, account_id, [m.email_id for m in found])  # one by one
    for m, email in zip(found, emails, strict=True):
        if email is None:
            continue
        if target_id in email.mailboxes:
            again.append((m.uid, email, m))
        else:
            join.append(m.uid)
    return join, again


async def _duplicate(s: Session, box: Mailbox, email: Email, m: Message) -> Stored:
    """A new message in ``box`` with the bytes, flags and internal date of another
    (RFC 9051 section 6.4.7: COPY adds messages, even to the mailbox they are in)."""
    delivery = s.ctx.delivery
    if delivery is None:
        raise no("COPY into a mailbox that holds the message is not available", "UNAVAILABLE")
    request = DeliveryRequest(
        Source.APPEND, BlobRef(email.blob_id, email.size),
        (Recipient(s.account_id, await _quota(s)),),
        idempotency_id="imap-copy:" + secrets.token_hex(16), mailbox_ids=(box.id,),
        keywords=m.keywords, received_at=email.received_at)
    return _stored((await delivery.deliver(request))[0])


def _stored(result: DeliveryResult) -> Stored:
    if isinstance(result, Refused):
        raise _refusal(result)
    if not isinstance(result, Stored):
        raise no("Message was not stored", "CANNOT")
    return result


def _uid_in(box: Mailbox, stored: Stored) -> int:
    return next(p.uid for p in stored.mailboxes if p.mailbox_id == box.id)


async def _undo(s: Session, box: Mailbox, joined: list[int], created: list[str]) -> None:
    """Take back what a failed COPY or APPEND added (RFC 9051 section 6.4.7: the target
    is restored): the emails it created are destroyed, the memberships it added go."""
    op_id = secrets.token_hex(8)
    for email_id in created:
        await transact(s.ctx.engine, destroy_email, s.account_id, email_id,
                       op_id=f"{op_id}.{email_id}")
    for n, chunk in enumerate(_chunks(joined)):
        await transact(s.ctx.engine, expunge_messages, s.account_id, box.id, uids=chunk,
                       only_deleted=False, op_id=f"{op_id}.{n}")


async def copy(s: Session, cmd: c.Command) -> None:
    """COPY / UID COPY with ``[COPYUID uidvalidity source-uids dest-uids]`` (RFC 4315).
    The email joins the target mailbox (one email, one blob, as JMAP sees it); where it
    is there already, a new message is stored from the same blob."""
    assert isinstance(cmd, c.Copy)
    uids = selected_uids(s, cmd.messages, cmd.uid)
    box = await _target(s, cmd.mailbox)
    sel = s.selected
    assert sel is not None
    pairs: list[tuple[int, int]] = []
    joined: list[int] = []
    created: list[str] = []
    try:
        for chunk in _chunks(uids):
            join, again = await transact(s.ctx.engine, _classify, s.account_id,
                                         sel.mailbox_id, chunk, box.id)
            if join:
                done = await transact(s.ctx.engine, copy_messages, s.account_id,
                                      sel.mailbox_id, join, box.id)
                pairs += done
                joined += [b for _, b in done]
            for uid, email, m in again:
                stored = await _duplicate(s, box, email, m)
                created.append(stored.email_id)
                pairs.append((uid, _uid_in(box, stored)))
    except BaseException:
        await asyncio.shield(_undo(s, box, joined, created))
        raise
    pairs.sort()
    _check_expunge_issued(cmd.uid, uids, pairs)
    code = _copyuid(box, pairs)
    if box.id == sel.mailbox_id:
        await announce_changes(s)
    s.ok(cmd.tag, "COPY completed", code)


def _check_expunge_issued(uid: bool, uids: Sequence[int], pairs: list[tuple[int, int]]) -> None:
    """COPY / MOVE by sequence number of messages that another session expunged since
    this one last heard: when none of them is left, nothing was done, and an OK would
    tell the client they were copied: NO [EXPUNGEISSUED] (RFC 9051 section 7.1,
    "Someone else has issued an EXPUNGE for the same mailbox"; RFC 2180 section 4).  By
    UID, a UID that does not exist is no error (RFC 9051 section 6.4.9)."""
    if not uid and uids and not pairs:
        raise no("The messages were expunged by another session", "EXPUNGEISSUED")


def _copyuid(box: Mailbox, pairs: list[tuple[int, int]]) -> Code | None:
    if not pairs:
        return None
    return Code.copyuid(box.uidvalidity, uid_list([a for a, _ in pairs]),
                        uid_list([b for _, b in pairs]))


async def move(s: Session, cmd: c.Command) -> None:
    """MOVE / UID MOVE (RFC 6851 section 3.3): ``* OK [COPYUID ...]`` untagged, the
    expunges of the moved messages, then the tagged OK.  A move into the selected mailbox
    itself leaves every message where it is."""
    assert isinstance(cmd, c.Move)
    sel = s.selected
    assert sel is not None
    _writable(sel)
    uids = selected_uids(s, cmd.messages, cmd.uid)
    box = await _target(s, cmd.mailbox)
    op_id = secrets.token_hex(8)
    pairs: list[tuple[int, int]] = []
    try:
        for n, chunk in enumerate(_chunks(uids)):
            pairs += await transact(s.ctx.engine, move_messages, s.account_id,
                                    sel.mailbox_id, chunk, box.id, op_id=f"{op_id}.{n}")
    finally:
        # what did move is reported even if a later batch failed: the client's view
        # and the session's map stay right (the failure is then the tagged NO)
        code = _copyuid(box, pairs)
        if code is not None:
            s.write(Untagged("OK", "Moved", code))
        if box.id != sel.mailbox_id:
            expunged(s, [a for a, _ in pairs])
    if box.id != sel.mailbox_id:
        _check_expunge_issued(cmd.uid, uids, pairs)
    s.ok(cmd.tag, "MOVE completed")


# -- EXPUNGE, UID EXPUNGE, CLOSE ---------------------------------------------------------------


async def expunge_deleted(s: Session, mailbox_id: str, uids: Sequence[int] | None = None,
                          *, announce: bool = False) -> None:
    """Expunge the \\Deleted messages of a mailbox (those among ``uids`` if given), batch
    by batch, each in its own transaction; with ``announce``, each batch is announced
    through :func:`.selected.expunged` as soon as it is committed, so that a failure in a
    later batch leaves the client's view right."""
    op_id = secrets.token_hex(8)
    wanted = None if uids is None else set(uids)
    after: int | None = 0
    while after is not None:
        result = await transact(s.ctx.engine, expunge_messages, s.account_id, mailbox_id,
                                uids=wanted, after_uid=after, limit=BATCH, op_id=op_id)
        if announce:
            expunged(s, result.uids)
        after = result.resume_after


async def expunge(s: Session, cmd: c.Command) -> None:
    """EXPUNGE (RFC 9051 section 6.4.3) and UID EXPUNGE (RFC 4315 section 2.1): ``* n
    EXPUNGE`` for each message removed, then the tagged OK."""
    assert isinstance(cmd, c.Expunge)
    sel = s.selected
    assert sel is not None
    _writable(sel)
    uids = None
    if cmd.uids is not None:
        uids = selected_uids(s, cmd.uids, True)
        if not uids:
            s.ok(cmd.tag, "EXPUNGE completed")
            return
    await expunge_deleted(s, sel.mailbox_id, uids, announce=True)
    s.ok(cmd.tag, "EXPUNGE completed")


__all__ = ["BATCH", "append", "copy", "expunge", "expunge_deleted", "move", "replace",
           "selected_uids", "uid_list"]
