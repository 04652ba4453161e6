"""Reading messages: by UID range, by id, changed or vanished since a modseq,
and a mailbox's emails by received-at.

Each read is one range or a few point reads: FETCH FLAGS of a whole mailbox
is one range of ``[storage, uid] -> (email id, modseq, keywords)``;
CONDSTORE's CHANGEDSINCE reads the ``[storage, modseq, uid]`` index and
QRESYNC's VANISHED the tombstones, from the given modseq on.  The UID list
these return is what an IMAP session keeps to map sequence numbers to UIDs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from ..blobs import refs as blobrefs
from .changes import EMAIL, THREAD, Changes, get_change_floor, get_changes
from .emails import (
    list_emails_of_blob,
    memberships,
    read_email,
    read_emails,
    read_membership,
    read_memberships,
    read_summary,
    read_thread_id,
)
from ..engine.base import Transaction
from .errors import CannotCalculateChanges, MailboxNotFound
from .keywords import DELETED, SEEN
from .layout import (
    AccountKeys,
    EmailRecord,
    MembershipRecord,
    account_keys,
    pack,
    received_thread_key,
    unpack_int,
)
from .mailboxes import list_mailboxes, mailbox_of_storage, storage_of
from .threads import list_thread

MAX_UID = 2**32 - 1  # IMAP UIDs are 32-bit (RFC 9051 section 2.3.1.1)


@dataclass(frozen=True, slots=True)
class Message:
    """One message in one mailbox (what FETCH UID FLAGS MODSEQ needs)."""

    uid: int
    email_id: str
    modseq: int
    keywords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Email:
    """The account-level email object (what Email/get needs besides the summary)."""

    id: str
    blob_id: str
    size: int
    received_at: float
    thread_id: str
    keywords: tuple[str, ...]
    mailboxes: dict[str, int]  # mailbox id -> UID there
    modseq: int


def _message(uid: int, m: MembershipRecord) -> Message:
    return Message(uid, m.email_id, m.modseq, m.keywords)


async def list_messages(
    tr: Transaction,
    account_id: str,
    mailbox_id: str,
    *,
    first_uid: int = 1,
    last_uid: int = MAX_UID,
    limit: int = 0,
    reverse: bool = False,
) -> list[Message]:
    """Messages with ``first_uid <= uid <= last_uid`` in UID order (or newest
    first with ``reverse``); ``limit`` 0 means all."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    if first_uid > last_uid:
        return []
    rows = await tr.get_range(
        keys.uid.pack((storage, first_uid)),
        keys.uid.pack((storage, last_uid + 1)),
        limit=limit,
        reverse=reverse,
    )
    prefix = keys.uid.pack((storage,))
    out = []
    for r in rows:
        key, value = r.key, r.value
        if type(key) is not bytes or type(value) is not bytes:
            key, value = bytes(key), bytes(value)   # a bytearray or memoryview: no hash
        kept = _MESSAGES.get(key)
        if kept is not None and kept[0] == value:
            out.append(kept[1])
            continue
        message = _message(_uid_after(prefix, key), MembershipRecord.decode(value))
        if len(_MESSAGES) >= MESSAGES_KEPT:
            _MESSAGES.clear()
        _MESSAGES[key] = (value, message)
        out.append(message)
    return out


# membership key -> (its value, the Message of both): the key names the account, mailbox
# and UID and the value is the whole record, so a Message made once is reused while the
# value read is the same (a FETCH 1:* of a large mailbox lists every message each time);
# at most MESSAGES_KEPT (~0.4 KB each) per process
MESSAGES_KEPT = 20_000
_MESSAGES: dict[bytes, tuple[bytes, Message]] = {}


def _uid_after(prefix: bytes, key: bytes) -> int:
    """The UID at the end of ``prefix + pack((uid,))`` (a positive tuple-layer int)."""
    n = key[len(prefix)] - 0x14
    return int.from_bytes(key[len(prefix) + 1 : len(prefix) + 1 + n], "big")


async def list_uids(
    tr: Transaction, account_id: str, mailbox_id: str, *, after_uid: int = 0, limit: int = 0
) -> list[int]:
    """UIDs above ``after_uid`` in order, ``limit`` at most (0: all): the UID map
    an IMAP session keeps for sequence numbers.  A very large mailbox is read in
    pages (say 100,000 per transaction) to stay within the 5 s limit."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    prefix = keys.uid.pack((storage,))
    rows = await tr.get_range(
        keys.uid.pack((storage, after_uid + 1)), keys.uid.range((storage,))[1], limit=limit
    )
    return [_uid_after(prefix, r.key) for r in rows]


async def get_message(
    tr: Transaction, account_id: str, mailbox_id: str, uid: int
) -> Message | None:
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    member = await read_membership(tr, keys, storage, uid)
    return None if member is None else _message(uid, member)


async def get_messages(
    tr: Transaction, account_id: str, mailbox_id: str, uids: Sequence[int]
) -> list[Message]:
    """:func:`get_message` of each UID (at most a few thousand) that exists, in the
    order given, read at once."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    return [_message(uid, m) for uid, m in await _read_memberships(tr, keys, storage, uids)]


async def list_changed_since(
    tr: Transaction, account_id: str, mailbox_id: str, modseq: int, *, limit: int = 0
) -> list[Message]:
    """Messages whose modseq is above ``modseq`` (CONDSTORE CHANGEDSINCE), by UID."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    rows = await tr.get_range(
        keys.uid_modseq.pack((storage, modseq + 1)),
        keys.uid_modseq.range((storage,))[1],
        limit=limit,
    )
    uids = [int(keys.uid_modseq.unpack(r.key)[2]) for r in rows]
    out = [_message(uid, member)
           for uid, member in await _read_memberships(tr, keys, storage, uids)]
    return sorted(out, key=lambda m: m.uid)


async def _read_memberships(tr: Transaction, keys: AccountKeys, storage: int,
                            uids: Sequence[int]) -> list[tuple[int, MembershipRecord]]:
    """The membership records of these UIDs that exist, read a batch at a time (every
    read of a batch issued at once).  One read awaited after another kept the check after
    a STORE of 100,000 messages busy for minutes on FoundationDB, far past its 5-second
    transaction limit."""
    out: list[tuple[int, MembershipRecord]] = []
    for first in range(0, len(uids), _MEMBERSHIP_BATCH):
        batch = uids[first:first + _MEMBERSHIP_BATCH]
        members = await read_memberships(tr, keys, storage, batch)
        out.extend((uid, m) for uid, m in zip(batch, members, strict=True) if m is not None)
    return out


_MEMBERSHIP_BATCH = 2_000


async def list_vanished(
    tr: Transaction, account_id: str, mailbox_id: str, modseq: int, *, limit: int = 0
) -> list[int]:
    """UIDs expunged after ``modseq`` (QRESYNC VANISHED (EARLIER)), ascending.
    CannotCalculateChanges if tombstones that old were compacted away."""
    if modseq < await get_change_floor(tr, account_id):
        raise CannotCalculateChanges(f"no expunge records from modseq {modseq}")
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    rows = await tr.get_range(
        keys.vanished.pack((storage, modseq + 1)),
        keys.vanished.range((storage,))[1],
        limit=limit,
    )
    return sorted(int(keys.vanished.unpack(r.key)[2]) for r in rows)


async def get_email(
    tr: Transaction, account_id: str, email_id: str, *,
    storages: dict[int, str | None] | None = None,
) -> Email | None:
    """The email, None if there is none.  ``storages``, a dict the caller keeps for one
    transaction and passes to every call, remembers which mailbox each storage is (one
    read per mailbox instead of one per email and mailbox)."""
    keys = account_keys(account_id)
    rec = await read_email(tr, keys, email_id)
    if rec is None:
        return None
    boxes: dict[str, int] = {}
    for storage, uid in memberships(rec).items():
        mailbox_id = await _mailbox_of(tr, keys, storage, storages)
        if mailbox_id is not None:  # a deleted mailbox's storage is being emptied
            boxes[mailbox_id] = uid
    return _email(email_id, rec, boxes, rec.keywords)


async def get_emails(
    tr: Transaction, account_id: str, email_ids: Sequence[str]
) -> list[Email | None]:
    """:func:`get_email` of each id, in order: the records read at once, the mailbox of
    each storage once."""
    keys = account_keys(account_id)
    storages: dict[int, str | None] = {}
    out: list[Email | None] = []
    for email_id, rec in zip(email_ids, await read_emails(tr, keys, email_ids), strict=True):
        if rec is None:
            out.append(None)
            continue
        boxes: dict[str, int] = {}
        for storage, uid in memberships(rec).items():
            mailbox_id = await _mailbox_of(tr, keys, storage, storages)
            if mailbox_id is not None:
                boxes[mailbox_id] = uid
        out.append(_email(email_id, rec, boxes, rec.keywords))
    return out


async def _mailbox_of(tr: Transaction, keys: AccountKeys, storage: int,
                      storages: dict[int, str | None] | None) -> str | None:
    if storages is None:
        return await mailbox_of_storage(tr, keys, storage)
    if storage not in storages:
        storages[storage] = await mailbox_of_storage(tr, keys, storage)
    return storages[storage]


def _email(email_id: str, rec: EmailRecord, boxes: dict[str, int],
           keywords: tuple[str, ...]) -> Email:
    return Email(
        id=email_id,
        blob_id=rec.blob_id,
        size=rec.size,
        received_at=rec.received_us / 1_000_000,
        thread_id=rec.thread_id,
        keywords=keywords,
        mailboxes=boxes,
        modseq=rec.modseq,
    )


# The \\Deleted UIDs of one storage read in one range when there are at most this many
# (a client's STORE before its EXPUNGE: usually none or a few); past it, a point read each.
_DELETED_RANGE = 1000
# storage -> its \\Deleted UIDs (None: too many, read each): a cache for one transaction
DeletedUids = dict[int, frozenset[int] | None]


async def _is_deleted(tr: Transaction, keys: AccountKeys, storage: int, uid: int,
                      cache: DeletedUids | None) -> bool:
    if cache is not None:
        if storage not in cache:
            rows = await tr.get_range(*keys.deleted.range((storage,)), limit=_DELETED_RANGE + 1)
            cache[storage] = None if len(rows) > _DELETED_RANGE else frozenset(
                int(keys.deleted.unpack(r.key)[1]) for r in rows)
        known = cache[storage]
        if known is not None:
            return uid in known
    return await tr.get(keys.deleted.pack((storage, uid))) is not None


async def get_visible_email(
    tr: Transaction, account_id: str, email_id: str, *,
    storages: dict[int, str | None] | None = None,
    deleted: DeletedUids | None = None,
) -> Email | None:
    """The email as JMAP shows it (RFC 8621 section 4.1.1: a message with IMAP's
    \\Deleted is not visible): its mailboxes without those where it has ``$deleted``,
    its keywords without ``$deleted``; None if there is no email or it has ``$deleted``
    in every mailbox it is in.  ``storages`` as for :func:`get_email`; ``deleted``, a
    dict kept likewise, holds each storage's \\Deleted UIDs, one range read per mailbox
    (without it: one point read per membership)."""
    keys = account_keys(account_id)
    rec = await read_email(tr, keys, email_id)
    if rec is None:
        return None
    return await _visible(tr, keys, email_id, rec, storages, deleted)


async def get_visible_emails(
    tr: Transaction, account_id: str, email_ids: Sequence[str], *,
    storages: dict[int, str | None] | None = None,
    deleted: DeletedUids | None = None,
) -> list[Email | None]:
    """:func:`get_visible_email` of each id, in order, the email records read at once
    (one batch of point reads: a page of a mail list view)."""
    keys = account_keys(account_id)
    records = await read_emails(tr, keys, email_ids)
    return [None if rec is None else await _visible(tr, keys, email_id, rec, storages, deleted)
            for email_id, rec in zip(email_ids, records, strict=True)]


async def iter_visible_emails(tr: Transaction, account_id: str, *, page: int = 1024
                              ) -> AsyncIterator[Email]:
    """Every email of the account that JMAP shows (:func:`get_visible_email`), each once
    whatever its mailboxes, mailbox by mailbox; each mailbox is read ``page`` messages at
    a time, so a caller that stops early has read little more than it took."""
    seen: set[str] = set()
    storages: dict[int, str | None] = {}
    deleted: DeletedUids = {}
    for box in await list_mailboxes(tr, account_id):
        if not box.uidvalidity:
            continue
        first = 1
        while True:
            try:
                batch = await list_messages(tr, account_id, box.id, first_uid=first,
                                            limit=page)
            except MailboxNotFound:     # deleted meanwhile
                break
            for message in batch:
                if message.email_id in seen:
                    continue
                seen.add(message.email_id)
                email = await get_visible_email(tr, account_id, message.email_id,
                                                storages=storages, deleted=deleted)
                if email is not None:
                    yield email
            if len(batch) < page:
                break
            first = batch[-1].uid + 1


async def _visible(tr: Transaction, keys: AccountKeys, email_id: str, rec: EmailRecord,
                   storages: dict[int, str | None] | None, deleted: DeletedUids | None
                   ) -> Email | None:
    boxes: dict[str, int] = {}
    hidden = False
    for storage, uid in memberships(rec).items():
        # what this transaction read already is looked up here, without a coroutine
        # each: a page of 50 emails asks the same one or two storages 50 times
        known = deleted.get(storage) if deleted is not None else None
        if known is not None:
            gone = uid in known
        else:
            gone = await _is_deleted(tr, keys, storage, uid, deleted)
        if gone:
            hidden = True
            continue
        if storages is not None and storage in storages:
            mailbox_id = storages[storage]
        else:
            mailbox_id = await _mailbox_of(tr, keys, storage, storages)
        if mailbox_id is not None:  # a deleted mailbox's storage is being emptied
            boxes[mailbox_id] = uid
    if hidden and not boxes:
        return None
    keywords = rec.keywords
    if DELETED in keywords:
        keywords = tuple(k for k in keywords if k != DELETED)
    return _email(email_id, rec, boxes, keywords)


async def get_visible_changes(
    tr: Transaction, account_id: str, kind: str, since_state: str, *,
    max_changes: int | None = None,
) -> Changes:
    """:func:`get_changes` as JMAP sees them (RFC 8621 section 4.1.1): an email with
    ``$deleted`` in every mailbox it is in, or a thread whose every email is such, is not
    visible, so one updated since ``since_state`` is reported destroyed and one created
    since is left out (RFC 8620 section 5.2).  (A STORE that hides or shows an email logs
    it destroyed or created: :func:`fdb_layers.mail.emails.set_keywords`.)  One record
    read per created or updated email, the emails of each created or updated thread."""
    changes = await get_changes(tr, account_id, kind, since_state, max_changes=max_changes)
    if kind not in (EMAIL, THREAD):
        return changes
    deleted: DeletedUids = {}
    hidden: set[str] = set()
    for oid in (*changes.created, *changes.updated):
        ids = [oid] if kind == EMAIL else await list_thread(tr, account_id, oid)
        if not [e for e in ids
                if await get_visible_email(tr, account_id, e, deleted=deleted) is not None]:
            hidden.add(oid)
    if not hidden:
        return changes
    return replace(changes, created=tuple(i for i in changes.created if i not in hidden),
                   updated=tuple(i for i in changes.updated if i not in hidden),
                   destroyed=(*changes.destroyed,
                              *(i for i in changes.updated if i in hidden)))


async def count_deleted(tr: Transaction, account_id: str, mailbox_id: str) -> tuple[int, int]:
    """(messages, unseen messages) of a mailbox that have ``$deleted``: what JMAP's
    totalEmails and unreadEmails leave out (RFC 8621 section 4.1.1).  One range read of
    the \\Deleted index (usually empty) and a point read per message in it, in batches."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    rows = await tr.get_range(*keys.deleted.range((storage,)))
    total = unseen = 0
    uids = [int(keys.deleted.unpack(r.key)[1]) for r in rows]
    for _, member in await _read_memberships(tr, keys, storage, uids):
        total += 1
        unseen += SEEN not in member.keywords
    return total, unseen


async def find_email_of_blob(tr: Transaction, account_id: str, blob_id: str) -> Email | None:
    """An email of the account visible to JMAP (in a mailbox, without ``$deleted`` there)
    whose message is the blob ``blob_id``; None if there is none: what says that the
    account may read that blob.  A message with IMAP's \\Deleted in every mailbox is not
    visible (RFC 8621 section 4.1.1), so neither is its blob."""
    if not blobrefs.is_blob_id(blob_id):
        return None
    for email_id in await list_emails_of_blob(tr, account_keys(account_id), blob_id, limit=16):
        email = await get_visible_email(tr, account_id, email_id)
        if email is not None and email.mailboxes:
            return email
    return None


async def list_blob_emails(
    tr: Transaction, account_id: str, blob_id: str, *, limit: int = 1000
) -> list[str]:
    """The account's emails made of ``blob_id`` (their blob references; JMAP
    Blob/lookup and who may read a blob), at most ``limit``."""
    return await list_emails_of_blob(tr, account_keys(account_id), blob_id, limit=limit)


async def get_summary(tr: Transaction, account_id: str, email_id: str) -> bytes | None:
    """The parsed summary stored at delivery (server.mime's bytes)."""
    return await read_summary(tr, account_keys(account_id), email_id)


async def query_mailbox(
    tr: Transaction,
    account_id: str,
    mailbox_id: str,
    *,
    newest_first: bool = True,
    position: int = 0,
    limit: int = 50,
) -> list[tuple[str, int]]:
    """(email id, uid) of a mailbox's emails sorted by received-at (JMAP
    Email/query with inMailbox), without those with ``$deleted`` (RFC 8621 section
    4.1.1); reads ``position + limit`` index keys and the mailbox's \\Deleted index
    (one range, usually empty; past ``_DELETED_RANGE`` keys, a point read per row)."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    cache: DeletedUids = {}
    await _is_deleted(tr, keys, storage, 0, cache)
    known = cache[storage]
    if known is not None and not known:
        rows = await tr.get_range(
            *keys.received.range((storage,)), limit=position + limit, reverse=newest_first
        )
        return [
            (str(keys.received.unpack(r.key)[2]), unpack_int(r.value)) for r in rows[position:]
        ]
    begin, end = keys.received.range((storage,))
    want = position + limit
    chunk = want + (_DELETED_RANGE if known is None else len(known))
    out: list[tuple[str, int]] = []
    while len(out) < want:
        rows = await tr.get_range(begin, end, limit=chunk, reverse=newest_first)
        for r in rows:
            uid = unpack_int(r.value)
            if not await _is_deleted(tr, keys, storage, uid, cache):
                out.append((str(keys.received.unpack(r.key)[2]), uid))
        if len(rows) < chunk:
            break
        if newest_first:
            end = rows[-1].key
        else:
            begin = rows[-1].key + b"\x00"
    return out[position:want]


async def query_mailbox_threads(
    tr: Transaction,
    account_id: str,
    mailbox_id: str,
    *,
    newest_first: bool = True,
    position: int = 0,
    limit: int = 50,
    chunk: int = 200,
) -> list[str]:
    """The ids of a mailbox's emails by received-at, only the first of each thread
    (JMAP Email/query with inMailbox and collapseThreads, RFC 8621 section 4.4.3):
    reads the received-at index in chunks (whose values name each email's thread; an
    entry of a layout before 1.4 has its email's record read) until ``position + limit``
    threads are found, so the cost follows the page, not the mailbox.  Emails with
    ``$deleted`` there are left out (RFC 8621 section 4.1.1; one range read of the
    mailbox's \\Deleted index, as :func:`query_mailbox`)."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    cache: DeletedUids = {}
    await _is_deleted(tr, keys, storage, 0, cache)
    any_deleted = cache[storage] != frozenset()    # usually none: no uid decoded then
    begin, end = keys.received.range((storage,))
    want = position + limit
    seen: set[bytes] = set()  # the threads met, packed
    out: list[str] = []
    while len(out) < want:
        rows = await tr.get_range(begin, end, limit=chunk, reverse=newest_first)
        for row in rows:
            thread = received_thread_key(row.value)
            if thread is not None and thread in seen:
                continue  # most rows: decoded no further
            if any_deleted and await _is_deleted(tr, keys, storage, unpack_int(row.value),
                                                 cache):
                continue
            email_id = str(keys.received.unpack(row.key)[2])
            if thread is None:  # written before layout 1.4
                thread_id = await read_thread_id(tr, keys, email_id)
                if thread_id is None:
                    continue
                thread = pack((thread_id,))
                if thread in seen:
                    continue
            seen.add(thread)
            out.append(email_id)
            if len(out) == want:
                break
        if len(rows) < chunk:
            break
        if newest_first:
            end = rows[-1].key
        else:
            begin = rows[-1].key + b"\x00"
    return out[position:]


async def get_save_dates(
    tr: Transaction, account_id: str, mailbox_id: str, uids: list[int]
) -> dict[int, float | None]:
    """The save date (RFC 8514: when the message was added to this mailbox, seconds since
    the epoch) of each UID; None for a message saved before save dates were kept (layout
    1.3) or not in the mailbox.  One point read per UID."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    out: dict[int, float | None] = {}
    for uid in uids:
        raw = await tr.get(keys.saved.pack((storage, uid)))
        out[uid] = None if raw is None else unpack_int(raw) / 1_000_000
    return out


async def list_save_dates(
    tr: Transaction, account_id: str, mailbox_id: str, *, after_uid: int = 0, limit: int = 0
) -> dict[int, float]:
    """UID -> save date of the messages of a mailbox that have one (SEARCH SAVEDBEFORE /
    SAVEDON / SAVEDSINCE), one range read; paged like :func:`list_uids`."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    rows = await tr.get_range(
        keys.saved.pack((storage, after_uid + 1)), keys.saved.range((storage,))[1], limit=limit
    )
    return {int(keys.saved.unpack(r.key)[1]): unpack_int(r.value) / 1_000_000 for r in rows}
