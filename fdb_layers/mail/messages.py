"""Messages in mailboxes: append, copy, move, keywords, expunge (the writes).

Every function is one step of one transaction and idempotent when run again:
an append carries a delivery id whose marker makes a repeat return the first
result and store nothing; copying an email to a mailbox it is already in keeps
its UID; a keyword change that is already in place changes nothing; expunging
an expunged UID does nothing.  Work on many messages is bounded by ``limit`` or
:data:`MAX_BATCH` per call, so that a transaction stays well under
FoundationDB's limits; callers loop, each call in its own transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from . import emails, uidmap
from .changes import CREATED, EMAIL, UPDATED, ChangeSet
from ..engine.base import Transaction
from ..keys import decode_int, encode_int
from .keywords import DELETED, normalise_keywords
from .errors import BatchTooLarge, EmailExists, EmailNotFound, MailError
from .accounts import ensure_account, ensure_role_mailbox
from .layout import S_LAST_UID, AccountKeys, DeliveryRecord, MembershipRecord, account_keys
from .mailboxes import find_mailbox_record, storage_of
from .markers import read_marker, read_marker_modseq, write_marker
from .quota import check_quota
from .threads import ThreadHeaders

MAX_BATCH = 1000  # messages one call may change (< 1 MB written)
MAX_DELIVERY_ID = 500


def email_id_for(delivery_id: str) -> str:
    """A JMAP email id derived from a delivery id, so that a retried delivery
    produces the same id (RFC 8620 section 1.2 id characters)."""
    digest = hashlib.sha256(delivery_id.encode("utf-8")).hexdigest()
    return "M" + digest[:26]


@dataclass(frozen=True, slots=True)
class NewEmail:
    email_id: str
    blob_id: str
    size: int
    received_at: float  # seconds since the epoch
    summary: bytes = b""  # server.mime's MessageSummary.to_bytes()
    headers: ThreadHeaders = field(default_factory=ThreadHeaders)
    keywords: Sequence[str] = ()
    # When this delivery happened (seconds); the delivery marker expires by it.
    # None: received_at (right for new mail, wrong for an APPEND or an import of
    # old mail, whose received_at is in the past: give the time of the call then).
    delivered_at: float | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an appended email went in one mailbox: what IMAP APPENDUID (RFC 4315)
    and JMAP Email/import report.  ``modseq`` is the append's, shared by all its
    mailboxes."""

    mailbox_id: str
    uidvalidity: int
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True)
class Appended:
    email_id: str
    mailbox_id: str
    uidvalidity: int
    uid: int
    modseq: int
    thread_id: str
    created: bool  # False: the delivery id was seen before; nothing was written
    also: tuple[Placement, ...] = ()  # the other mailboxes (``also_in``), in order

    @property
    def placements(self) -> tuple[Placement, ...]:
        """Every mailbox the email went to, the first one first."""
        first = Placement(self.mailbox_id, self.uidvalidity, self.uid, self.modseq)
        return (first, *self.also)


@dataclass(frozen=True, slots=True)
class StoreResult:
    # (uid, modseq, keywords) after the store, of every message asked for that
    # exists (what the untagged FETCH responses report; the same on a re-run)
    messages: tuple[tuple[int, int, tuple[str, ...]], ...]
    modified: tuple[int, ...]  # UIDs that failed UNCHANGEDSINCE (RFC 7162 section 3.1.3)
    # the modseqs this store changed messages at: this run's and, with an op_id, that of
    # an earlier run that committed (a retry after commit_unknown_result finds its own
    # change done and writes nothing); a message at one of them holds this store's own
    # change, any other modseq is a change by someone else
    written: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ExpungeResult:
    uids: tuple[int, ...]  # expunged, ascending
    modseq: int | None  # the modseq of this expunge (None if nothing went)
    resume_after: int | None  # call again with after_uid=this; None: finished


async def append_email(
    tr: Transaction,
    account_id: str,
    mailbox_id: str,
    email: NewEmail,
    *,
    delivery_id: str,
    quota: int | None = None,
    also_in: Sequence[str] = (),
) -> Appended:
    """Store a new email in a mailbox (delivery, IMAP APPEND, Email/import).

    Adds the blob reference, quota usage, thread, counters and change log in the
    same transaction.  ``also_in``: more mailboxes it joins at once (JMAP
    mailboxIds), each under its own UID; a missing one raises
    :class:`MailboxNotFound` after the first was written, so the caller's
    transaction must not commit (:func:`transact` does not).  A repeated
    ``delivery_id`` returns the first result.  ``quota`` None or 0 is unlimited."""
    keys = account_keys(account_id)
    done = await _delivered(tr, keys, delivery_id)
    if done is not None:
        return done
    storage = await storage_of(tr, keys, mailbox_id)
    return await _append(tr, keys, mailbox_id, storage, email, delivery_id, quota, also_in)


@dataclass(frozen=True, slots=True)
class RoleMailbox:
    """An account's mailbox of one role, as a node may remember it between
    transactions: only ever a hint, checked against the mailbox's record."""

    mailbox_id: str
    storage: int


async def deliver_email(
    tr: Transaction,
    account_id: str,
    email: NewEmail,
    *,
    delivery_id: str,
    role: str = "inbox",
    mailbox_id: str | None = None,
    also_in: Sequence[str] = (),
    quota: int | None = None,
    uidvalidity_seed: int = 1,
    hint: RoleMailbox | None = None,
) -> tuple[Appended, RoleMailbox | None]:
    """The delivery pipeline's transaction: create the account if needed, find
    the target (``mailbox_id`` and ``also_in``, else the mailbox with ``role``,
    re-created if it was deleted) and append, idempotently as
    :func:`append_email` does.

    ``hint``, the role mailbox a previous call returned, saves the lookup of the
    role: it is used only if the mailbox's record, read here (so a concurrent
    change conflicts), is still live, selectable and of that role.  Returns the
    role mailbox to remember (None when ``mailbox_id`` was given)."""
    await ensure_account(tr, account_id, uidvalidity_seed=uidvalidity_seed)
    keys = account_keys(account_id)
    if mailbox_id is not None:
        return await append_email(
            tr, account_id, mailbox_id, email, delivery_id=delivery_id, quota=quota,
            also_in=also_in,
        ), None
    target: RoleMailbox | None = None
    if hint is not None:
        rec = await find_mailbox_record(tr, keys, hint.mailbox_id)
        if rec is not None and not rec.deleted and rec.role == role and rec.storage:
            target = RoleMailbox(hint.mailbox_id, rec.storage)
    if target is None:
        found = await ensure_role_mailbox(tr, account_id, role)
        target = RoleMailbox(found, await storage_of(tr, keys, found))
    done = await _delivered(tr, keys, delivery_id)
    if done is None:
        done = await _append(tr, keys, target.mailbox_id, target.storage, email, delivery_id,
                             quota)
    return done, target


async def _delivered(tr: Transaction, keys: AccountKeys, delivery_id: str) -> Appended | None:
    """The first result of a delivery id seen before (its marker), else None."""
    if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID:
        raise ValueError("a delivery id of 1..500 characters is required")
    raw = await tr.get(keys.delivery.pack((delivery_id,)))
    if raw is None:
        return None
    d = DeliveryRecord.decode(raw)
    also = tuple(Placement(m, v, u, d.modseq) for m, v, u in d.also)
    return Appended(d.email_id, d.mailbox_id, d.uidvalidity, d.uid, d.modseq, d.thread_id,
                    created=False, also=also)


async def _append(
    tr: Transaction,
    keys: AccountKeys,
    mailbox_id: str,
    storage: int,
    email: NewEmail,
    delivery_id: str,
    quota: int | None,
    also_in: Sequence[str] = (),
) -> Appended:
    if await emails.read_email(tr, keys, email.email_id) is not None:
        raise EmailExists(email.email_id)
    await check_quota(tr, keys, email.size, quota)
    changes = ChangeSet(tr, keys)
    rec = await emails.create_email(
        tr,
        keys,
        changes,
        email.email_id,
        blob_id=email.blob_id,
        size=email.size,
        received_us=round(email.received_at * 1_000_000),
        keywords=normalise_keywords(email.keywords),
        summary=email.summary,
        headers=email.headers,
    )
    uid, rec = await emails.add_membership(
        tr, keys, changes, storage, mailbox_id, email.email_id, rec
    )
    also: list[tuple[str, int, int]] = []
    for other in also_in:
        other_storage = await storage_of(tr, keys, other)
        if rec.member(other_storage) is None:
            other_uid, rec = await emails.add_membership(
                tr, keys, changes, other_storage, other, email.email_id, rec
            )
            also.append((other, other_storage, other_uid))
    modseq = await changes.modseq()
    tr.set(
        keys.delivery.pack((delivery_id,)),
        DeliveryRecord(
            email.email_id, mailbox_id, storage, uid, modseq, rec.thread_id, tuple(also)
        ).encode(),
    )
    delivered = email.delivered_at if email.delivered_at is not None else email.received_at
    tr.set(keys.delivery_time.pack((int(delivered), delivery_id)), b"")
    return Appended(email.email_id, mailbox_id, storage, uid, modseq, rec.thread_id, created=True,
                    also=tuple(Placement(m, v, u, modseq) for m, v, u in also))


async def expire_deliveries(
    tr: Transaction, account_id: str, before: float, *, limit: int = MAX_BATCH
) -> int:
    """Forget up to ``limit`` delivery markers of deliveries made before
    ``before`` (seconds; ``NewEmail.delivered_at``); how many.  A delivery
    repeated after that no longer returns its first result: it fails with
    EmailExists (the derived email id is taken) while the email exists."""
    keys = account_keys(account_id)
    rows = await tr.get_range(
        keys.delivery_time.range()[0], keys.delivery_time.pack((int(before),)), limit=limit
    )
    for row in rows:
        _, delivery_id = keys.delivery_time.unpack(row.key)
        tr.clear(row.key)
        tr.clear(keys.delivery.pack((str(delivery_id),)))
    return len(rows)


def _check_batch(uids: Collection[int]) -> None:
    if len(uids) > MAX_BATCH:
        raise BatchTooLarge(f"{len(uids)} messages in one call; at most {MAX_BATCH}")


async def _copy(
    tr: Transaction,
    account_id: str,
    source_id: str,
    uids: Sequence[int],
    target_id: str,
    *,
    move: bool,
    changes: ChangeSet | None = None,
) -> list[tuple[int, int]]:
    _check_batch(uids)
    keys = account_keys(account_id)
    source = await storage_of(tr, keys, source_id)
    target = await storage_of(tr, keys, target_id)
    changes = changes or ChangeSet(tr, keys)
    out: list[tuple[int, int]] = []
    asked = sorted(set(uids))
    # the memberships and email records read at once, not one awaited read each
    members = await emails.read_memberships(tr, keys, source, asked)
    if source == target:  # every message is there already, under its own UID
        return [(u, u) for u, m in zip(asked, members, strict=True) if m is not None]
    found = [(uid, m) for uid, m in zip(asked, members, strict=True) if m is not None]
    recs = await emails.read_emails(tr, keys, [m.email_id for _, m in found])
    last_key = keys.storage_key(target, S_LAST_UID)
    last = decode_int(await tr.get(last_key))   # the UIDs of the batch taken here
    added: list[int] = []
    moved: list[tuple[int, MembershipRecord]] = []
    counters = emails.Counters()
    for (uid, member), rec in zip(found, recs, strict=True):
        if rec is None:
            continue
        existing = rec.member(target)
        if existing is None:
            new_uid, _ = await emails.add_membership(
                tr, keys, changes, target, target_id, member.email_id, rec,
                deleted=DELETED in member.keywords, uid=last + len(added) + 1,
                counters=counters,
            )
            added.append(new_uid)
            await changes.record(EMAIL, member.email_id, UPDATED)
        else:
            new_uid = existing[0]
        moved.append((uid, member))
        out.append((uid, new_uid))
    counters.apply(tr)
    if added:
        tr.set(last_key, encode_int(added[-1]))
        await uidmap.add_uids(tr, keys, target, added)
    if move:  # after the copies: each email record read again holds its new membership
        await emails.remove_memberships(tr, keys, changes, source, moved)
    return out


async def copy_messages(
    tr: Transaction, account_id: str, source_id: str, uids: Sequence[int], target_id: str
) -> list[tuple[int, int]]:
    """IMAP COPY: (source uid, target uid) pairs (RFC 4315 COPYUID).  The email
    joins the target mailbox; if it is there already, its UID there is given."""
    return await _copy(tr, account_id, source_id, uids, target_id, move=False)


async def move_messages(
    tr: Transaction,
    account_id: str,
    source_id: str,
    uids: Sequence[int],
    target_id: str,
    *,
    op_id: str | None,
) -> list[tuple[int, int]]:
    """IMAP MOVE (RFC 6851): copy, then expunge from the source.

    The (source uid, target uid) pairs survive a retry after an unknown commit
    result: they are recorded under the marker of ``op_id`` (generated once per
    MOVE by the caller, :mod:`fdb_layers.mail.markers`) and a retry returns them.
    ``op_id=None``: no marker; a retry returns only what it moved itself."""
    keys = account_keys(account_id)
    if op_id is not None:
        done = await read_marker(tr, keys, op_id)
        if done is not None:
            return [(int(a), int(b)) for a, b in done]
    changes = ChangeSet(tr, keys)
    pairs = await _copy(tr, account_id, source_id, uids, target_id, move=True,
                        changes=changes)
    if op_id is not None:
        await write_marker(tr, keys, changes, op_id, tuple(pairs))
    return pairs


async def store_keywords(
    tr: Transaction,
    account_id: str,
    mailbox_id: str,
    uids: Sequence[int],
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    replace: Iterable[str] | None = None,
    unchanged_since: int | None = None,
    op_id: str | None = None,
) -> StoreResult:
    """IMAP STORE on UIDs: set (``replace``), add or remove keywords.

    With ``unchanged_since`` (CONDSTORE, RFC 7162 section 3.1.3), a message whose
    modseq is higher fails and is listed in ``modified``, also when the store would
    change nothing (example 10 there: message 7 already has \\Deleted and still
    fails); ``unchanged_since=0`` fails for every message.  A conditional store
    needs an ``op_id``: it keeps that list across a retry after an unknown commit
    result (the first run's own change raised the modseq of the messages it stored,
    which must not then fail), recorded under its marker (:mod:`.markers`).  Any store
    may have an ``op_id``: its result's ``written`` then holds the modseq of an earlier
    run that committed too, so that a retry still tells its own change from others'."""
    _check_batch(uids)
    if unchanged_since is not None and op_id is None:
        raise ValueError("a conditional STORE (unchanged_since) needs an op_id")
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    to_add = set(normalise_keywords(add))
    to_remove = set(normalise_keywords(remove))
    replacement = None if replace is None else normalise_keywords(replace)
    changes = ChangeSet(tr, keys)
    failed: set[int] | None = None
    written: list[int] = []
    if op_id is not None:
        done = await read_marker_modseq(tr, keys, op_id)
        if done is not None:
            written.append(done[0])
            failed = {int(u) for u in done[1]}
    out: list[tuple[int, int, tuple[str, ...]]] = []
    modified: list[int] = []
    # every membership read at once, then every email record that changes (on
    # FoundationDB an awaited read per message was a round trip each)
    asked = sorted(set(uids))
    planned: list[tuple[int, MembershipRecord, tuple[str, ...] | None]] = []
    for uid, member in zip(asked, await emails.read_memberships(tr, keys, storage, asked),
                           strict=True):
        if member is None:
            continue
        if unchanged_since is not None and (
                uid in failed if failed is not None else member.modseq > unchanged_since):
            modified.append(uid)
            planned.append((uid, member, None))
            continue
        if replacement is not None:
            wanted = replacement
        else:
            wanted = tuple(sorted((set(member.keywords) | to_add) - to_remove))
        planned.append((uid, member, None if wanted == member.keywords else wanted))
    changing = [(uid, member, wanted) for uid, member, wanted in planned if wanted is not None]
    recs = dict(zip((uid for uid, _, _ in changing),
                    await emails.read_emails(tr, keys, [m.email_id for _, m, _ in changing]),
                    strict=True))
    counters = emails.Counters()
    for uid, member, change in planned:
        rec = recs.get(uid)
        if change is not None and rec is not None:
            new = await emails.set_keywords(
                tr, keys, changes, member.email_id, rec, change, storage=storage,
                known=(storage, uid, member), counters=counters,
            )
            out.append((uid, new.modseq,
                        emails.member_keywords(new.keywords, DELETED in change)))
            continue
        out.append((uid, member.modseq, member.keywords))
    counters.apply(tr)
    if op_id is not None and failed is None:
        await write_marker(tr, keys, changes, op_id, tuple(modified))
    if changes.allocated is not None:
        written.append(changes.allocated)
    return StoreResult(tuple(out), tuple(modified), tuple(written))


async def expunge_messages(
    tr: Transaction,
    account_id: str,
    mailbox_id: str,
    *,
    uids: Collection[int] | None = None,
    only_deleted: bool = True,
    after_uid: int = 0,
    limit: int = MAX_BATCH,
    op_id: str | None,
) -> ExpungeResult:
    """EXPUNGE (``uids=None``: every \\Deleted message), UID EXPUNGE (``uids``:
    the \\Deleted ones among them, RFC 4315), or removal from the mailbox
    regardless of flags (``only_deleted=False``, JMAP mailboxIds).

    At most ``limit`` messages per call; while ``resume_after`` is not None,
    call again with ``after_uid=resume_after`` in a new transaction.

    The result survives a retry after an unknown commit result: it is recorded
    under the marker of ``op_id`` (one per EXPUNGE, generated by the caller; each
    batch is told apart by its ``after_uid``, :mod:`fdb_layers.mail.markers`) and a
    retry returns it.  ``op_id=None``: no marker; a retry of a batch that did
    commit returns no UIDs (fine when the caller does not report them)."""
    if limit <= 0 or limit > MAX_BATCH:
        raise BatchTooLarge(f"limit must be 1..{MAX_BATCH}")
    keys = account_keys(account_id)
    if op_id is not None:
        done = await read_marker(tr, keys, op_id, after_uid)
        if done is not None:
            uids_done, modseq_done, resume_done = done
            return ExpungeResult(tuple(int(u) for u in uids_done), modseq_done, resume_done)
    storage = await storage_of(tr, keys, mailbox_id)
    if uids is not None and not isinstance(uids, range | set | frozenset):
        uids = set(uids)  # tested for membership below
    resume: int | None = None
    picked: list[int]
    if only_deleted or isinstance(uids, range):
        index = keys.deleted if only_deleted else keys.uid
        lo, hi = after_uid + 1, 2**63 - 1
        if isinstance(uids, range):
            lo, hi = max(lo, uids.start), min(hi, uids.stop)
        scanned = (
            await tr.get_range(index.pack((storage, lo)), index.pack((storage, hi)), limit=limit)
            if lo < hi else []
        )
        if len(scanned) == limit:
            resume = int(index.unpack(scanned[-1].key)[1])
        picked = [uid for uid in (int(index.unpack(row.key)[1]) for row in scanned)
                  if uids is None or uid in uids]
    else:
        if uids is None:
            raise MailError("uids are required with only_deleted=False")
        picked = sorted(u for u in uids if u > after_uid)
        if len(picked) > limit:
            picked = picked[:limit]
            resume = picked[-1]
    # the memberships read at once, not one awaited read per message (on FoundationDB
    # a round trip each: see emails.remove_memberships)
    members = await emails.read_memberships(tr, keys, storage, picked)
    victims = [(uid, m) for uid, m in zip(picked, members, strict=True) if m is not None]
    changes = ChangeSet(tr, keys)
    await emails.remove_memberships(tr, keys, changes, storage, victims)
    result = ExpungeResult(tuple(u for u, _ in victims), changes.allocated, resume)
    if op_id is not None:
        await write_marker(tr, keys, changes, op_id,
                           (result.uids, result.modseq, result.resume_after), after_uid)
    return result


async def set_email_keywords(
    tr: Transaction, account_id: str, email_id: str, keywords: Iterable[str]
) -> int:
    """JMAP Email/set keywords; the email's modseq afterwards."""
    keys = account_keys(account_id)
    rec = await emails.read_email(tr, keys, email_id)
    if rec is None:
        raise EmailNotFound(email_id)
    changes = ChangeSet(tr, keys)
    new = await emails.set_keywords(tr, keys, changes, email_id, rec, normalise_keywords(keywords))
    return new.modseq


async def set_email_mailboxes(
    tr: Transaction, account_id: str, email_id: str, mailbox_ids: Collection[str]
) -> None:
    """JMAP Email/set mailboxIds: join and leave mailboxes (at least one remains).

    A membership with ``$deleted`` (IMAP's \\Deleted) is one JMAP does not show (RFC
    8621 section 4.1.1): left as it is when ``mailbox_ids`` does not name its mailbox
    (the client did not see it there), made visible again when it does (its
    ``$deleted`` taken away, its UID kept)."""
    if not mailbox_ids:
        raise MailError("an email must be in at least one mailbox")
    keys = account_keys(account_id)
    rec = await emails.read_email(tr, keys, email_id)
    if rec is None:
        raise EmailNotFound(email_id)
    wanted = {await storage_of(tr, keys, m): m for m in mailbox_ids}
    current = emails.memberships(rec)
    members = {s: await emails.read_membership(tr, keys, s, uid) for s, uid in current.items()}
    shown = any(m is not None and DELETED not in m.keywords for m in members.values())
    changes = ChangeSet(tr, keys)
    for storage, mailbox_id in wanted.items():
        if storage not in current:
            _, rec = await emails.add_membership(
                tr, keys, changes, storage, mailbox_id, email_id, rec, deleted=False
            )
            # an email JMAP did not see (all \Deleted) is there again
            await changes.record(EMAIL, email_id, UPDATED if shown else CREATED)
    for storage, member in members.items():
        if storage in wanted and member is not None and DELETED in member.keywords:
            shared = tuple(k for k in rec.keywords if k != DELETED)
            rec = await emails.set_keywords(tr, keys, changes, email_id, rec, shared,
                                            storage=storage)
    for storage, member in members.items():  # last: each reads the record it changes
        if storage not in wanted and member is not None and DELETED not in member.keywords:
            await emails.remove_membership(tr, keys, changes, storage, current[storage],
                                           member)


async def destroy_email(
    tr: Transaction, account_id: str, email_id: str, *, op_id: str | None
) -> bool:
    """JMAP Email/set destroy: out of every mailbox, then gone.  False if it was gone.

    With ``op_id`` (generated once by the caller), a retry after an unknown commit
    result finds the marker of the first attempt and says True again, not False
    (:mod:`fdb_layers.mail.markers`)."""
    keys = account_keys(account_id)
    if op_id is not None and await read_marker(tr, keys, op_id) is not None:
        return True
    rec = await emails.read_email(tr, keys, email_id)
    current = {} if rec is None else emails.memberships(rec)
    changes = ChangeSet(tr, keys)
    for storage, uid in current.items():
        member = await emails.read_membership(tr, keys, storage, uid)
        if member is not None:
            await emails.remove_membership(tr, keys, changes, storage, uid, member)
    if op_id is not None:
        await write_marker(tr, keys, changes, op_id, ())
    return bool(current)


__all__ = [
    "Appended",
    "ExpungeResult",
    "NewEmail",
    "Placement",
    "RoleMailbox",
    "StoreResult",
    "append_email",
    "copy_messages",
    "deliver_email",
    "destroy_email",
    "email_id_for",
    "expire_deliveries",
    "expunge_messages",
    "move_messages",
    "set_email_keywords",
    "set_email_mailboxes",
    "store_keywords",
]
