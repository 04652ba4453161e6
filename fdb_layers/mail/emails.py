"""Email objects and their mailbox memberships: the writes every operation shares.

An email is one object per account (its JMAP id) with a record, its parsed
summary (split over values of at most 90,000 bytes), a thread and one blob
reference.  It is in one or more storages (mailboxes), each time under its own
UID.  Keywords belong to the email (JMAP's model) and are copied into each
membership so that FETCH FLAGS reads one range -- but for ``$deleted`` (IMAP's
``\\Deleted``), which belongs to one membership: a copy is a message of its own in
IMAP, and clients move by COPY, STORE ``\\Deleted``, EXPUNGE (RFC 9051 section 6.4.7),
which must not mark the copy.  When its last membership goes,
the email goes: record, summary, thread entry, quota usage and blob reference.

These functions keep every counter and index in step; they check nothing that
the public operations (:mod:`fdb_layers.mail.messages`) check first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import lru_cache

from ..blobs import refs as blobrefs
from .changes import COUNTS, CREATED, DESTROYED, EMAIL, MAILBOX, THREAD, UPDATED, ChangeSet
from ..engine.base import Transaction
from ..keys import decode_int, encode_int
from .keywords import DELETED, SEEN
from .layout import (
    S_HIGHEST_MODSEQ,
    S_LAST_UID,
    S_MESSAGES,
    S_SIZE,
    S_UNSEEN,
    SUMMARY_CHUNK,
    AccountKeys,
    EmailRecord,
    MembershipRecord,
    pack,
    pack_int,
)
from .mailboxes import mailbox_of_storage
from .quota import add_usage
from .threads import ThreadHeaders, join_thread, leave_threads
from . import uidmap


def blob_ref_id(keys: AccountKeys, email_id: str) -> str:
    """Names this email's reference, so that adding or removing it twice is a no-op."""
    return f"mail/{keys.account_id}/{email_id}"


async def list_emails_of_blob(
    tr: Transaction, keys: AccountKeys, blob_id: str, *, limit: int = 0
) -> list[str]:
    """Ids of this account's emails whose message is ``blob_id``, from the blob's named
    references (one account's names never match another's)."""
    prefix = blob_ref_id(keys, "")
    refs = await blobrefs.list_blob_refs(tr, blob_id, prefix, limit=limit)
    return [r[len(prefix):] for r in refs]


# Decoded records by their stored bytes (a pure function's results: a record read again
# unchanged is not decoded again; a changed one is other bytes).  Mail list views read
# the same records over and over; records are frozen, so sharing them is safe.
_decode_email = lru_cache(maxsize=16_384)(EmailRecord.decode)


async def read_email(tr: Transaction, keys: AccountKeys, email_id: str) -> EmailRecord | None:
    raw = await tr.get(keys.email.pack((email_id,)))
    return None if raw is None else _decode_email(raw)


async def read_emails(tr: Transaction, keys: AccountKeys, email_ids: Sequence[str]
                      ) -> list[EmailRecord | None]:
    """:func:`read_email` of each id, in order, the records read at once."""
    raws = await tr.get_many([keys.email.pack((i,)) for i in email_ids])
    return [None if raw is None else _decode_email(raw) for raw in raws]


async def read_thread_id(tr: Transaction, keys: AccountKeys, email_id: str) -> str | None:
    """The email's thread id, decoding only the head of its record."""
    raw = await tr.get(keys.email.pack((email_id,)))
    return None if raw is None else EmailRecord.decode_thread_id(raw)


async def read_membership(
    tr: Transaction, keys: AccountKeys, storage: int, uid: int
) -> MembershipRecord | None:
    raw = await tr.get(keys.uid.pack((storage, uid)))
    return None if raw is None else MembershipRecord.decode(raw)


async def read_memberships(
    tr: Transaction, keys: AccountKeys, storage: int, uids: Sequence[int]
) -> list[MembershipRecord | None]:
    """:func:`read_membership` of each UID, in order, the records read at once: UIDs that
    fill at least half of the span between the lowest and the highest (a STORE, COPY or
    EXPUNGE of ``1:*``) in one range read, others by point reads issued together (on
    FoundationDB each point read costs the client as much as a key of a range)."""
    if not uids:
        return []
    lo, hi = min(uids), max(uids)
    if hi - lo + 1 <= 2 * len(uids):
        rows = await tr.get_range(keys.uid.pack((storage, lo)), keys.uid.pack((storage, hi + 1)))
        found = {uid: MembershipRecord.decode(row.value)
                 for uid, row in ((int(keys.uid.unpack(row.key)[1]), row) for row in rows)}
        return [found.get(uid) for uid in uids]
    raws = await tr.get_many([keys.uid.pack((storage, uid)) for uid in uids])
    return [None if raw is None else MembershipRecord.decode(raw) for raw in raws]


def memberships(rec: EmailRecord) -> dict[int, int]:
    """storage -> uid for every storage the email is in."""
    return {storage: uid for storage, uid, _ in rec.members}


async def read_summary(tr: Transaction, keys: AccountKeys, email_id: str) -> bytes | None:
    rows = await tr.get_range(*keys.summary.range((email_id,)))
    if not rows:
        return None
    return b"".join(r.value for r in rows)


async def create_email(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    email_id: str,
    *,
    blob_id: str,
    size: int,
    received_us: int,
    keywords: tuple[str, ...],
    summary: bytes,
    headers: ThreadHeaders,
) -> EmailRecord:
    """Everything of a new email but its record, which the caller writes once it
    holds the first membership (:func:`add_membership` does): one encoding, one write."""
    modseq = await changes.modseq()
    thread_id = await join_thread(tr, keys, changes, email_id, received_us, headers)
    chunks = [summary[i : i + SUMMARY_CHUNK] for i in range(0, len(summary), SUMMARY_CHUNK)]
    for i, chunk in enumerate(chunks):
        tr.set(keys.summary.pack((email_id, i)), chunk)
    rec = EmailRecord(received_us, size, blob_id, thread_id, keywords, len(chunks), modseq)
    add_usage(tr, keys, size, 1)
    await blobrefs.add_blob_ref(tr, blob_id, size, ref_id=blob_ref_id(keys, email_id))
    await changes.record(EMAIL, email_id, CREATED)
    return rec


async def _destroy_emails(
    tr: Transaction, keys: AccountKeys, changes: ChangeSet,
    doomed: Sequence[tuple[str, EmailRecord]],
) -> None:
    """Everything of emails whose last membership went: record, summary, thread
    entries, quota usage, blob references (their reads batched)."""
    if not doomed:
        return
    for email_id, _ in doomed:
        tr.clear(keys.email.pack((email_id,)))
        tr.clear_range(*keys.summary.range((email_id,)))
    await leave_threads(tr, keys, changes,
                        [(rec.thread_id, email_id, rec.received_us) for email_id, rec in doomed])
    add_usage(tr, keys, -sum(rec.size for _, rec in doomed), -len(doomed))
    await blobrefs.remove_blob_refs(
        tr, [(rec.blob_id, blob_ref_id(keys, email_id)) for email_id, rec in doomed])
    for email_id, _ in doomed:
        await changes.record(EMAIL, email_id, DESTROYED)


def member_keywords(keywords: tuple[str, ...], deleted: bool) -> tuple[str, ...]:
    """A membership's keywords: the email's, with ``$deleted`` as that membership has it."""
    shared = [k for k in keywords if k != DELETED]
    return tuple(sorted([*shared, DELETED])) if deleted else tuple(shared)


class Counters:
    """The atomic counter moves of a batch, summed, then made once each by :meth:`apply`
    in the same transaction: a batch of 1,000 messages moves a mailbox's counters with a
    few atomic operations instead of thousands (on FoundationDB each costs the client as
    much as a write).  Given where a function takes ``tr`` for its counters only."""

    __slots__ = ("_adds", "_maxes")

    def __init__(self) -> None:
        self._adds: dict[bytes, int] = {}
        self._maxes: dict[bytes, int] = {}

    def add(self, key: bytes, delta: int) -> None:
        self._adds[key] = self._adds.get(key, 0) + delta

    def max(self, key: bytes, value: int) -> None:
        if key not in self._maxes or value > self._maxes[key]:
            self._maxes[key] = value

    def apply(self, tr: Transaction) -> None:
        for key, delta in self._adds.items():
            if delta:
                tr.add(key, delta)
        for key, value in self._maxes.items():
            tr.max(key, value)
        self._adds.clear()
        self._maxes.clear()


def _count(tr: Transaction | Counters, keys: AccountKeys, storage: int, size: int,
           keywords: tuple[str, ...], sign: int) -> None:
    tr.add(keys.storage_key(storage, S_MESSAGES), sign)
    tr.add(keys.storage_key(storage, S_SIZE), sign * size)
    if SEEN not in keywords:
        tr.add(keys.storage_key(storage, S_UNSEEN), sign)
    uidmap.count_keywords(tr, keys, storage, keywords, sign)


def _runs(uids: Iterable[int]) -> list[tuple[int, int]]:
    """The distinct UIDs as ascending runs of consecutive UIDs, (first, last) each."""
    out: list[tuple[int, int]] = []
    for uid in sorted(set(uids)):
        if out and out[-1][1] + 1 == uid:
            out[-1] = (out[-1][0], uid)
        else:
            out.append((uid, uid))
    return out


async def _note_mailbox(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    storage: int,
    mailbox_id: str | None = None,
) -> None:
    """Log that a mailbox's counts changed (once per call, see ChangeSet)."""
    if not changes.first_note(storage):
        return
    if mailbox_id is None:
        mailbox_id = await mailbox_of_storage(tr, keys, storage)
    if mailbox_id is not None:
        await changes.record(MAILBOX, mailbox_id, COUNTS)


async def add_membership(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    storage: int,
    mailbox_id: str,
    email_id: str,
    rec: EmailRecord,
    *,
    deleted: bool | None = None,
    uid: int | None = None,
    counters: Counters | None = None,
) -> tuple[int, EmailRecord]:
    """Put the email in a storage under the next UID, saved now (its RFC 8514 save date);
    that UID and the new record.  ``deleted``: whether this membership has ``$deleted``
    (a COPY carries the source message's); None takes the email's keywords as they are.
    ``uid``: the UID the caller took for it, the caller then moving the storage's last
    UID and putting the UIDs of its batch in the UID map (:func:`uidmap.add_uids`) once;
    ``counters``: where the mailbox's counters move (the caller applies them), else ``tr``."""
    count = tr if counters is None else counters
    take = uid is None
    if uid is None:
        last_key = keys.storage_key(storage, S_LAST_UID)
        uid = decode_int(await tr.get(last_key)) + 1
        tr.set(last_key, encode_int(uid))
    modseq = await changes.modseq()
    keywords = rec.keywords if deleted is None else member_keywords(rec.keywords, deleted)
    tr.set(keys.uid.pack((storage, uid)), MembershipRecord(email_id, modseq, keywords).encode())
    tr.set(keys.uid_modseq.pack((storage, modseq, uid)), b"")
    tr.set(keys.saved.pack((storage, uid)), pack_int(time.time_ns() // 1000))
    if take:
        await uidmap.add_uids(tr, keys, storage, [uid])
    tr.set(keys.received.pack((storage, rec.received_us, email_id)), pack((uid, rec.thread_id)))
    new = replace(rec, members=(*rec.members, (storage, uid, modseq)))
    tr.set(keys.email.pack((email_id,)), new.encode())
    if DELETED in keywords:
        tr.set(keys.deleted.pack((storage, uid)), b"")
    _count(count, keys, storage, rec.size, keywords, +1)
    count.max(keys.storage_key(storage, S_HIGHEST_MODSEQ), modseq)
    await _note_mailbox(tr, keys, changes, storage, mailbox_id)
    return uid, new


async def remove_membership(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    storage: int,
    uid: int,
    member: MembershipRecord,
    *,
    tombstone: bool = True,
) -> None:
    """Take one message out of a storage (EXPUNGE); the email goes with its last one.

    ``tombstone`` keeps the UID with its modseq for QRESYNC VANISHED (not
    needed when the whole storage is being removed)."""
    await remove_memberships(tr, keys, changes, storage, [(uid, member)], tombstone=tombstone)


async def remove_memberships(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    storage: int,
    victims: Sequence[tuple[int, MembershipRecord]],
    *,
    tombstone: bool = True,
) -> None:
    """:func:`remove_membership` of each ``(uid, record)`` of one storage (distinct
    UIDs, so distinct emails), to the same effect, but every read done for all of
    them at once and the counters moved once: on FoundationDB each awaited read is a
    round trip, and an expunge of 1,000 messages one after another waited for seven
    of them per message (320 expunges a second at 100,000)."""
    if not victims:
        return
    recs = await read_emails(tr, keys, [member.email_id for _, member in victims])
    modseq = await changes.modseq()
    counters = Counters()
    counted = 0
    updated: list[str] = []
    doomed: list[tuple[str, EmailRecord]] = []
    for first, last in _runs(uid for uid, _ in victims):
        for space in (keys.uid, keys.deleted, keys.saved):   # [storage, uid] indexes
            if first == last:
                tr.clear(space.pack((storage, first)))
            else:  # every UID of the run goes: one range, not a key each
                tr.clear_range(space.pack((storage, first)), space.pack((storage, last + 1)))
    for (uid, member), rec in zip(victims, recs, strict=True):
        email_id = member.email_id
        tr.clear(keys.uid_modseq.pack((storage, member.modseq, uid)))
        if tombstone:
            tr.set(keys.vanished.pack((storage, modseq, uid)), b"")
        if rec is None:  # cannot happen while the indexes agree; stay safe
            continue
        tr.clear(keys.received.pack((storage, rec.received_us, email_id)))
        _count(counters, keys, storage, rec.size, member.keywords, -1)
        counted += 1
        rest = tuple(m for m in rec.members if m[0] != storage)
        if rest:
            tr.set(keys.email.pack((email_id,)), replace(rec, members=rest).encode())
            updated.append(email_id)
        else:
            doomed.append((email_id, rec))
    await uidmap.remove_uids(tr, keys, storage, [uid for uid, _ in victims])
    if tombstone:
        tr.max(keys.storage_key(storage, S_HIGHEST_MODSEQ), modseq)
    counters.apply(tr)
    if tombstone and counted:
        await _note_mailbox(tr, keys, changes, storage)
    for email_id in updated:
        await changes.record(EMAIL, email_id, UPDATED)
    await _destroy_emails(tr, keys, changes, doomed)


async def set_keywords(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    email_id: str,
    rec: EmailRecord,
    keywords: tuple[str, ...],
    *,
    storage: int | None = None,
    known: tuple[int, int, MembershipRecord] | None = None,
    counters: Counters | None = None,
) -> EmailRecord:
    """Give the email new keywords, in every mailbox it is in; the new record.

    ``$deleted`` is each membership's own: with ``storage`` (an IMAP STORE in that
    mailbox) it is set or cleared there only; without (JMAP), ``$deleted`` in
    ``keywords`` marks every membership and its absence leaves each as it was.
    ``known``: (storage, uid, record) of a membership the caller read in this
    transaction, not read again; ``counters``: where the mailboxes' counters move (the
    caller applies them), else ``tr``."""
    count = tr if counters is None else counters
    shared = tuple(k for k in keywords if k != DELETED)
    planned: list[tuple[int, int, int, tuple[str, ...], tuple[str, ...]]] = []
    for member_storage, uid, old_modseq in rec.members:
        if known is not None and known[0] == member_storage and known[1] == uid:
            member: MembershipRecord | None = known[2]
        else:
            member = await read_membership(tr, keys, member_storage, uid)
        old = rec.keywords if member is None else member.keywords
        if storage is None:
            deleted = DELETED in keywords or DELETED in old
        elif member_storage == storage:
            deleted = DELETED in keywords
        else:
            deleted = DELETED in old
        planned.append((member_storage, uid, old_modseq, old, member_keywords(shared, deleted)))
    if shared == rec.keywords and all(old == new for *_, old, new in planned):
        return rec
    modseq = await changes.modseq()
    members = []
    hidden_changed = False
    for member_storage, uid, old_modseq, old, new_keywords in planned:
        if old == new_keywords:
            members.append((member_storage, uid, old_modseq))
            continue
        members.append((member_storage, uid, modseq))
        tr.set(keys.uid.pack((member_storage, uid)),
               MembershipRecord(email_id, modseq, new_keywords).encode())
        uidmap.count_keywords(count, keys, member_storage, set(new_keywords) - set(old), +1)
        uidmap.count_keywords(count, keys, member_storage, set(old) - set(new_keywords), -1)
        tr.clear(keys.uid_modseq.pack((member_storage, old_modseq, uid)))
        tr.set(keys.uid_modseq.pack((member_storage, modseq, uid)), b"")
        count.max(keys.storage_key(member_storage, S_HIGHEST_MODSEQ), modseq)
        was_seen, seen = SEEN in old, SEEN in new_keywords
        if was_seen != seen:
            count.add(keys.storage_key(member_storage, S_UNSEEN), -1 if seen else 1)
            await _note_mailbox(tr, keys, changes, member_storage)
        was_deleted, deleted = DELETED in old, DELETED in new_keywords
        if was_deleted != deleted:
            if deleted:
                tr.set(keys.deleted.pack((member_storage, uid)), b"")
            else:
                tr.clear(keys.deleted.pack((member_storage, uid)))
            # JMAP does not show a message with $deleted (RFC 8621 section 4.1.1): the
            # mailbox's counts and the thread's emails as JMAP sees them change
            await _note_mailbox(tr, keys, changes, member_storage)
            hidden_changed = True
    new = replace(rec, keywords=shared, modseq=modseq, members=tuple(members))
    tr.set(keys.email.pack((email_id,)), new.encode())
    if hidden_changed:
        await changes.record(THREAD, rec.thread_id, UPDATED)
    # for JMAP, an email with $deleted in every mailbox is not there: one that this hides
    # is destroyed, one it shows again created, one hidden before and after unchanged
    shown_before = any(DELETED not in old for *_, old, _ in planned)
    shown = any(DELETED not in new_keywords for *_, new_keywords in planned)
    if shown_before or shown:
        await changes.record(EMAIL, email_id, UPDATED if shown_before == shown
                             else CREATED if shown else DESTROYED)
    return new
