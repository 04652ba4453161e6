"""Mailboxes: hierarchy, names, roles, subscriptions, status.

A mailbox is a record ``(parent_id, name, role, storage, subscribed)`` plus a
name index ``[parent_id, name] -> id``.  Names are one level each, UTF-8 (the
IMAP edge converts modified UTF-7), joined by ``/`` into paths.  The mailbox's
messages live under its *storage* number (also its UIDVALIDITY), so renaming a
mailbox of any size rewrites one record and moving a parent moves its children
for free.  Deleting detaches the storage in one small transaction;
:mod:`fdb_layers.mail.cleanup` empties it later in batches.

A name stays subscribed when its mailbox is deleted or renamed away and can be
subscribed before it exists (RFC 3501 section 6.3.6): such names are kept apart, see
:mod:`fdb_layers.mail.subscriptions`.

Status (messages, unseen, size, UIDNEXT, HIGHESTMODSEQ) comes from counters kept
with atomic adds, so SELECT, STATUS and Mailbox/get never scan.  Every write is
idempotent for a caller-given mailbox id: running it twice changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .changes import COUNTS, CREATED, DESTROYED, MAILBOX, UPDATED, ChangeSet, set_barrier
from ..engine.base import Transaction
from ..keys import decode_int, encode_int
from .errors import (
    InvalidMailboxName,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotDeletable,
    MailboxNotEmpty,
    MailboxNotFound,
    MailboxNotSelectable,
    RoleExists,
)
from .markers import read_marker, write_marker
from .metadata import clear_annotations, copy_annotations
from .subscriptions import add_name, keep_name, list_names, take_name
from .layout import (
    MAILBOX_SEQ,
    PENDING_CLEANUP,
    S_HIGHEST_MODSEQ,
    S_LAST_UID,
    S_MESSAGES,
    S_SIZE,
    S_UNSEEN,
    STORAGE,
    AccountKeys,
    MailboxRecord,
    account_keys,
    pack,
    unpack_str,
)

DELIMITER = "/"
INBOX = "INBOX"
ROLES = ("inbox", "drafts", "sent", "junk", "trash", "archive")  # every account has each
# a role a mailbox may be given, of which no account gets a mailbox made: \Important
# (RFC 8457 section 3; JMAP's "important", RFC 8621 section 2)
OPTIONAL_ROLES = ("important",)
MAX_NAME_BYTES = 255
MAX_DEPTH = 32
MAX_UIDVALIDITY = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: str
    parent_id: str | None
    name: str
    path: str
    role: str | None
    subscribed: bool
    uidvalidity: int  # 0: \Noselect
    sort_order: int = 0  # JMAP's sortOrder (RFC 8621 section 2)

    @property
    def selectable(self) -> bool:
        return self.uidvalidity != 0


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    mailbox_id: str
    uidvalidity: int
    uidnext: int
    messages: int
    unseen: int
    size: int
    highestmodseq: int


# --- helpers shared with the message modules ----------------------------------------


async def find_mailbox_record(
    tr: Transaction, keys: AccountKeys, mailbox_id: str
) -> MailboxRecord | None:
    """The mailbox's record (a deleted one's tombstone too), or None."""
    raw = await tr.get(keys.mailbox.pack((mailbox_id,)))
    return None if raw is None else MailboxRecord.decode(raw)


async def load_mailbox(tr: Transaction, keys: AccountKeys, mailbox_id: str) -> MailboxRecord:
    rec = await find_mailbox_record(tr, keys, mailbox_id)
    if rec is None:
        raise MailboxNotFound(mailbox_id)
    if rec.deleted:
        raise MailboxNotFound(mailbox_id)
    return rec


async def storage_of(tr: Transaction, keys: AccountKeys, mailbox_id: str) -> int:
    """The storage (= UIDVALIDITY) of a selectable mailbox."""
    rec = await load_mailbox(tr, keys, mailbox_id)
    if rec.storage == 0:
        raise MailboxNotSelectable(mailbox_id)
    return rec.storage


async def mailbox_of_storage(tr: Transaction, keys: AccountKeys, storage: int) -> str | None:
    raw = await tr.get(keys.storage.pack((storage,)))
    return None if raw is None else unpack_str(raw)


def _check_name(name: str) -> None:
    if not name or DELIMITER in name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidMailboxName(name)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidMailboxName(name)


def _index_name(parent_id: str, name: str) -> str:
    """INBOX is case-insensitive at the top level (RFC 9051 section 5.1)."""
    if not parent_id and name.upper() == INBOX:
        return INBOX
    return name


def split_path(path: str) -> list[str]:
    parts = path.rstrip(DELIMITER).split(DELIMITER) if path else []
    if not parts or len(parts) > MAX_DEPTH:
        raise InvalidMailboxName(path)
    for p in parts:
        _check_name(p)
    return parts


async def find_child(
    tr: Transaction, keys: AccountKeys, parent_id: str, name: str
) -> str | None:
    """The id of ``parent_id``'s child mailbox called ``name``, or None."""
    raw = await tr.get(keys.mailbox_name.pack((parent_id, _index_name(parent_id, name))))
    return None if raw is None else unpack_str(raw)


async def _find_path(tr: Transaction, keys: AccountKeys, parts: list[str]) -> str | None:
    parent = ""
    for part in parts:
        found = await find_child(tr, keys, parent, part)
        if found is None:
            return None
        parent = found
    return parent


async def _path_of(tr: Transaction, keys: AccountKeys, rec: MailboxRecord) -> str:
    parts = [rec.name]
    parent = rec.parent_id
    while parent:
        p = await load_mailbox(tr, keys, parent)
        parts.append(p.name)
        parent = p.parent_id
    return DELIMITER.join(reversed(parts))


def _public(mailbox_id: str, rec: MailboxRecord, path: str) -> Mailbox:
    return Mailbox(
        id=mailbox_id,
        parent_id=rec.parent_id or None,
        name=rec.name,
        path=path,
        role=rec.role or None,
        subscribed=rec.subscribed,
        uidvalidity=rec.storage,
        sort_order=rec.sort_order,
    )


async def _new_storage(
    tr: Transaction, keys: AccountKeys, mailbox_id: str, modseq: int
) -> int:
    key = keys.count_key(STORAGE)
    storage = decode_int(await tr.get(key)) + 1
    if storage > MAX_UIDVALIDITY:
        raise InvalidMailboxName("UIDVALIDITY space exhausted")
    tr.set(key, encode_int(storage))
    tr.set(keys.storage.pack((storage,)), pack((mailbox_id,)))
    tr.max(keys.storage_key(storage, S_HIGHEST_MODSEQ), modseq)
    return storage


def _detach_storage(tr: Transaction, keys: AccountKeys, storage: int) -> None:
    """The storage's messages are no longer visible; the cleaner removes them."""
    tr.clear(keys.storage.pack((storage,)))
    tr.set(keys.cleanup.pack((storage,)), b"")
    tr.set(PENDING_CLEANUP.pack((keys.account_id, storage)), b"")


async def generate_mailbox_id(tr: Transaction, keys: AccountKeys) -> str:
    """A new mailbox id of the account (a counter: ids are never reused)."""
    key = keys.count_key(MAILBOX_SEQ)
    n = decode_int(await tr.get(key)) + 1
    tr.set(key, encode_int(n))
    return f"m{n}"


async def insert_mailbox(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    mailbox_id: str,
    parent_id: str,
    name: str,
    *,
    role: str = "",
    subscribed: bool | None = None,
    sort_order: int = 0,
) -> MailboxRecord:
    """Write a new mailbox (checks done by the caller).  ``subscribed=None``: subscribed
    if its name is (RFC 3501 section 6.3.6: the name outlived an earlier mailbox, or was
    subscribed before it existed); either way the mailbox now carries the name's
    subscription."""
    modseq = await changes.modseq()
    storage = await _new_storage(tr, keys, mailbox_id, modseq)
    rec = MailboxRecord(parent_id, name, role, storage, False, False, sort_order)
    kept = await take_name(tr, keys, await _path_of(tr, keys, rec))
    rec = replace(rec, subscribed=kept if subscribed is None else subscribed)
    tr.set(keys.mailbox.pack((mailbox_id,)), rec.encode())
    tr.set(keys.mailbox_name.pack((parent_id, _index_name(parent_id, name))), pack((mailbox_id,)))
    if role:
        tr.set(keys.role.pack((role,)), pack((mailbox_id,)))
    await changes.record(MAILBOX, mailbox_id, CREATED)
    return rec


async def _check_new_id(
    tr: Transaction, keys: AccountKeys, mailbox_id: str
) -> MailboxRecord | None:
    raw = await tr.get(keys.mailbox.pack((mailbox_id,)))
    if raw is None:
        return None
    rec = MailboxRecord.decode(raw)
    if rec.deleted:
        raise MailboxExists(f"mailbox id {mailbox_id!r} was used before")
    return rec


# --- reads ----------------------------------------------------------------------------


async def get_mailbox(tr: Transaction, account_id: str, mailbox_id: str) -> Mailbox:
    keys = account_keys(account_id)
    rec = await load_mailbox(tr, keys, mailbox_id)
    return _public(mailbox_id, rec, await _path_of(tr, keys, rec))


async def find_mailbox(tr: Transaction, account_id: str, path: str) -> Mailbox:
    """The mailbox at ``path`` (``INBOX`` in any case)."""
    keys = account_keys(account_id)
    mailbox_id = await _find_path(tr, keys, split_path(path))
    if mailbox_id is None:
        raise MailboxNotFound(path)
    return await get_mailbox(tr, account_id, mailbox_id)


async def find_role(tr: Transaction, account_id: str, role: str) -> str | None:
    keys = account_keys(account_id)
    raw = await tr.get(keys.role.pack((role,)))
    return None if raw is None else unpack_str(raw)


async def list_mailboxes(tr: Transaction, account_id: str) -> list[Mailbox]:
    """Every live mailbox with its full path, in path order."""
    keys = account_keys(account_id)
    records: dict[str, MailboxRecord] = {}
    for row in await tr.get_range(*keys.mailbox.range()):
        rec = MailboxRecord.decode(row.value)
        if not rec.deleted:
            records[str(keys.mailbox.unpack(row.key)[0])] = rec
    paths: dict[str, str] = {}

    def path(mid: str) -> str:
        if mid not in paths:
            rec = records[mid]
            parent = rec.parent_id
            paths[mid] = rec.name if not parent else path(parent) + DELIMITER + rec.name
        return paths[mid]

    out = [_public(mid, rec, path(mid)) for mid, rec in records.items()]
    return sorted(out, key=lambda m: m.path)


async def get_status(tr: Transaction, account_id: str, mailbox_id: str) -> MailboxStatus:
    """SELECT/STATUS/Mailbox/get figures, from counters only."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)

    async def counter(name: str) -> int:
        return decode_int(await tr.get(keys.storage_key(storage, name)))

    return MailboxStatus(
        mailbox_id=mailbox_id,
        uidvalidity=storage,
        uidnext=await counter(S_LAST_UID) + 1,
        messages=await counter(S_MESSAGES),
        unseen=await counter(S_UNSEEN),
        size=await counter(S_SIZE),
        highestmodseq=await counter(S_HIGHEST_MODSEQ),
    )


async def get_highest_modseq(tr: Transaction, account_id: str, mailbox_id: str) -> int:
    """The mailbox's HIGHESTMODSEQ alone (as in :func:`get_status`, one counter read
    instead of five): what an IMAP session checks after each command for others' changes."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    return decode_int(await tr.get(keys.storage_key(storage, S_HIGHEST_MODSEQ)))


# --- writes ---------------------------------------------------------------------------


async def create_mailbox(
    tr: Transaction,
    account_id: str,
    name: str,
    *,
    mailbox_id: str,
    parent_id: str | None = None,
    role: str | None = None,
    subscribed: bool | None = None,
    sort_order: int = 0,
) -> Mailbox:
    """Create one mailbox under ``parent_id`` (JMAP Mailbox/set create; IMAP CREATE with
    a special use).  ``subscribed=None``: as its name is (see :func:`insert_mailbox`)."""
    keys = account_keys(account_id)
    parent = parent_id or ""
    existing = await _check_new_id(tr, keys, mailbox_id)
    if existing is not None:
        if existing.parent_id == parent and existing.name == name:
            return _public(mailbox_id, existing, await _path_of(tr, keys, existing))
        raise MailboxExists(f"mailbox id {mailbox_id!r} is taken")
    _check_name(name)
    if not 0 <= sort_order < 2**31:
        raise ValueError("a sort order is in [0, 2^31)")
    if parent:
        await load_mailbox(tr, keys, parent)
    if await find_child(tr, keys, parent, name) is not None:
        raise MailboxExists(name)
    if role:
        if role not in ROLES + OPTIONAL_ROLES:
            raise ValueError(f"unknown role {role!r}")
        if await tr.get(keys.role.pack((role,))) is not None:
            raise RoleExists(role)
    changes = ChangeSet(tr, keys)
    rec = await insert_mailbox(
        tr, keys, changes, mailbox_id, parent, name, role=role or "", subscribed=subscribed,
        sort_order=sort_order,
    )
    return _public(mailbox_id, rec, await _path_of(tr, keys, rec))


async def _create_parents(
    tr: Transaction, keys: AccountKeys, changes: ChangeSet, parts: list[str]
) -> str:
    """The id of the mailbox at ``parts``, creating missing levels (IMAP CREATE/RENAME)."""
    parent = ""
    for part in parts:
        found = await find_child(tr, keys, parent, part)
        if found is None:
            found = await generate_mailbox_id(tr, keys)
            await insert_mailbox(tr, keys, changes, found, parent, part)
        parent = found
    return parent


async def create_mailbox_path(
    tr: Transaction,
    account_id: str,
    path: str,
    *,
    mailbox_id: str,
    subscribed: bool | None = None,
) -> Mailbox:
    """IMAP CREATE (RFC 9051 section 6.3.4): creates missing superiors too."""
    keys = account_keys(account_id)
    parts = split_path(path)
    found = await _find_path(tr, keys, parts)
    if found is not None:
        if found == mailbox_id:
            return await get_mailbox(tr, account_id, mailbox_id)
        raise MailboxExists(path)
    await _check_new_id(tr, keys, mailbox_id)
    changes = ChangeSet(tr, keys)
    parent = await _create_parents(tr, keys, changes, parts[:-1])
    rec = await insert_mailbox(
        tr, keys, changes, mailbox_id, parent, parts[-1], subscribed=subscribed
    )
    return _public(mailbox_id, rec, await _path_of(tr, keys, rec))


async def _is_self_or_descendant(
    tr: Transaction, keys: AccountKeys, candidate: str, mailbox_id: str
) -> bool:
    while candidate:
        if candidate == mailbox_id:
            return True
        candidate = (await load_mailbox(tr, keys, candidate)).parent_id
    return False


async def _subtree(
    tr: Transaction, keys: AccountKeys, mailbox_id: str, path: str
) -> list[tuple[str, str, MailboxRecord]]:
    """``(id, path, record)`` of the mailbox and of every mailbox below it."""
    out = [(mailbox_id, path, await load_mailbox(tr, keys, mailbox_id))]
    for row in await tr.get_range(*keys.mailbox_name.range((mailbox_id,))):
        child = unpack_str(row.value)
        rec = await load_mailbox(tr, keys, child)
        out += await _subtree(tr, keys, child, path + DELIMITER + rec.name)
    return out


async def _move_subscriptions(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    moved: list[tuple[str, str, MailboxRecord]],
    old_path: str,
    new_path: str,
) -> None:
    """After a rename: the old names stay subscribed (RFC 3501 section 6.3.6: the server
    does not drop a name because its mailbox went), each mailbox keeps its own flag
    (JMAP isSubscribed follows the mailbox), and a mailbox landing on a subscribed name
    without a mailbox takes that subscription over."""
    for _, path, rec in moved:
        if rec.subscribed:
            keep_name(tr, keys, path)
    for mailbox_id, path, _ in moved:
        if await take_name(tr, keys, new_path + path[len(old_path):]):
            rec = await load_mailbox(tr, keys, mailbox_id)
            if not rec.subscribed:
                tr.set(keys.mailbox.pack((mailbox_id,)), replace(rec, subscribed=True).encode())
                await changes.record(MAILBOX, mailbox_id, UPDATED)


async def _move(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    mailbox_id: str,
    rec: MailboxRecord,
    parent: str,
    name: str,
) -> MailboxRecord:
    if await _is_self_or_descendant(tr, keys, parent, mailbox_id):
        raise InvalidMailboxName("a mailbox cannot move below itself")
    if await find_child(tr, keys, parent, name) is not None:
        raise MailboxExists(name)
    old_path = await _path_of(tr, keys, rec)
    moved = await _subtree(tr, keys, mailbox_id, old_path)
    tr.clear(keys.mailbox_name.pack((rec.parent_id, _index_name(rec.parent_id, rec.name))))
    tr.set(keys.mailbox_name.pack((parent, _index_name(parent, name))), pack((mailbox_id,)))
    new = replace(rec, parent_id=parent, name=name)
    tr.set(keys.mailbox.pack((mailbox_id,)), new.encode())
    await changes.record(MAILBOX, mailbox_id, UPDATED)
    await _move_subscriptions(tr, keys, changes, moved, old_path, await _path_of(tr, keys, new))
    return await load_mailbox(tr, keys, mailbox_id)


async def rename_mailbox(
    tr: Transaction, account_id: str, mailbox_id: str, *, name: str, parent_id: str | None
) -> Mailbox:
    """Change a mailbox's name and/or parent (JMAP); its messages are not touched."""
    keys = account_keys(account_id)
    rec = await load_mailbox(tr, keys, mailbox_id)
    parent = parent_id or ""
    if (rec.parent_id, rec.name) != (parent, name):
        _check_name(name)
        if rec.role == "inbox":
            raise InvalidMailboxName("INBOX cannot be renamed or moved")
        if parent:
            await load_mailbox(tr, keys, parent)
        rec = await _move(tr, keys, ChangeSet(tr, keys), mailbox_id, rec, parent, name)
    return _public(mailbox_id, rec, await _path_of(tr, keys, rec))


async def rename_mailbox_path(
    tr: Transaction,
    account_id: str,
    old_path: str,
    new_path: str,
    *,
    new_mailbox_id: str,
    source_id: str | None = None,
) -> Mailbox:
    """IMAP RENAME (RFC 9051 section 6.3.6).  Superiors of the new name are
    created; renaming INBOX moves its messages to a new mailbox (``new_mailbox_id``)
    and leaves INBOX empty with a new UIDVALIDITY; the new mailbox gets a copy of
    INBOX's annotations (RFC 5464 section 4.1).

    ``source_id``, the id the caller found at ``old_path``, makes a repeated call
    (after an unknown commit result) a no-op instead of MailboxExists."""
    keys = account_keys(account_id)
    old_parts, new_parts = split_path(old_path), split_path(new_path)
    source = await _find_path(tr, keys, old_parts)
    target = await _find_path(tr, keys, new_parts)
    if target is not None:
        if target in (new_mailbox_id, source_id) or target == source:
            return await get_mailbox(tr, account_id, target)  # done before
        raise MailboxExists(new_path)
    if source is None:
        raise MailboxNotFound(old_path)
    rec = await load_mailbox(tr, keys, source)
    changes = ChangeSet(tr, keys)
    if rec.role == "inbox" and not rec.parent_id:
        await _check_new_id(tr, keys, new_mailbox_id)
        parent = await _create_parents(tr, keys, changes, new_parts[:-1])
        modseq = await changes.modseq()
        kept = await take_name(tr, keys, DELIMITER.join(new_parts))
        moved = MailboxRecord(
            parent, new_parts[-1], "", rec.storage, rec.subscribed or kept, False
        )
        tr.set(keys.mailbox.pack((new_mailbox_id,)), moved.encode())
        tr.set(
            keys.mailbox_name.pack((parent, _index_name(parent, new_parts[-1]))),
            pack((new_mailbox_id,)),
        )
        tr.set(keys.storage.pack((rec.storage,)), pack((new_mailbox_id,)))
        await copy_annotations(tr, keys, source, new_mailbox_id)
        fresh = await _new_storage(tr, keys, source, modseq)
        tr.set(keys.mailbox.pack((source,)), replace(rec, storage=fresh).encode())
        await changes.record(MAILBOX, new_mailbox_id, CREATED)
        await changes.record(MAILBOX, source, COUNTS)
        # Every email of INBOX changed mailboxIds; the log cannot hold that many.
        set_barrier(tr, keys, modseq)
        return _public(new_mailbox_id, moved, await _path_of(tr, keys, moved))
    parent = await _create_parents(tr, keys, changes, new_parts[:-1])
    rec = await _move(tr, keys, changes, source, rec, parent, new_parts[-1])
    return _public(source, rec, await _path_of(tr, keys, rec))


async def delete_mailbox(
    tr: Transaction,
    account_id: str,
    mailbox_id: str,
    *,
    keep_if_children: bool = False,
    allow_nonempty: bool = True,
    op_id: str | None = None,
) -> None:
    """Delete a mailbox; its messages go in the background (see cleanup).

    With children: JMAP refuses (``keep_if_children=False``: MailboxHasChildren);
    IMAP (``keep_if_children=True``, RFC 9051 section 6.3.5) empties the mailbox
    and keeps its name as \\Noselect, and refuses if it is \\Noselect already.
    ``allow_nonempty=False`` is JMAP's onDestroyRemoveEmails=false.
    Deleting a deleted mailbox is a no-op.  Either way its annotations go (RFC 5464
    section 4.1: they belong to the mailbox that was deleted).

    ``op_id`` (required with ``keep_if_children``) names this DELETE: a retry
    after an unknown commit result finds its marker (:mod:`fdb_layers.mail.markers`)
    and is a no-op, where it would otherwise find the \\Noselect mailbox its
    first attempt made and refuse.
    """
    if keep_if_children and op_id is None:
        raise ValueError("an IMAP DELETE (keep_if_children) needs an op_id")
    keys = account_keys(account_id)
    if op_id is not None and await read_marker(tr, keys, op_id) is not None:
        return
    raw = await tr.get(keys.mailbox.pack((mailbox_id,)))
    if raw is None:
        raise MailboxNotFound(mailbox_id)
    rec = MailboxRecord.decode(raw)
    if rec.deleted:
        return
    if rec.role == "inbox":
        raise MailboxNotDeletable(mailbox_id)
    if not allow_nonempty and rec.storage:
        if decode_int(await tr.get(keys.storage_key(rec.storage, S_MESSAGES))) > 0:
            raise MailboxNotEmpty(mailbox_id)
    has_children = bool(await tr.get_range(*keys.mailbox_name.range((mailbox_id,)), limit=1))
    changes = ChangeSet(tr, keys)
    if has_children:
        if not keep_if_children or rec.storage == 0:
            raise MailboxHasChildren(mailbox_id)
        _detach_storage(tr, keys, rec.storage)
        clear_annotations(tr, keys, mailbox_id)
        tr.set(keys.mailbox.pack((mailbox_id,)), replace(rec, storage=0).encode())
        await changes.record(MAILBOX, mailbox_id, UPDATED)
        if op_id is not None:
            await write_marker(tr, keys, changes, op_id, ())
        return
    if rec.subscribed:
        # RFC 3501 section 6.3.6 (RFC 9051 section 6.3.7): the name stays subscribed
        keep_name(tr, keys, await _path_of(tr, keys, rec))
    if rec.storage:
        _detach_storage(tr, keys, rec.storage)
    clear_annotations(tr, keys, mailbox_id)
    tr.clear(keys.mailbox_name.pack((rec.parent_id, _index_name(rec.parent_id, rec.name))))
    if rec.role:
        tr.clear(keys.role.pack((rec.role,)))
    tr.set(keys.mailbox.pack((mailbox_id,)), replace(rec, storage=0, deleted=True).encode())
    await changes.record(MAILBOX, mailbox_id, DESTROYED)
    if op_id is not None:
        await write_marker(tr, keys, changes, op_id, ())


async def set_subscribed(
    tr: Transaction, account_id: str, mailbox_id: str, subscribed: bool
) -> None:
    keys = account_keys(account_id)
    rec = await load_mailbox(tr, keys, mailbox_id)
    if rec.subscribed != subscribed:
        tr.set(keys.mailbox.pack((mailbox_id,)), replace(rec, subscribed=subscribed).encode())
        await ChangeSet(tr, keys).record(MAILBOX, mailbox_id, UPDATED)


async def set_sort_order(
    tr: Transaction, account_id: str, mailbox_id: str, sort_order: int
) -> None:
    """JMAP's sortOrder of a mailbox (RFC 8621 section 2: 0 <= sortOrder < 2^31,
    ValueError otherwise)."""
    if not 0 <= sort_order < 2**31:
        raise ValueError("a sort order is in [0, 2^31)")
    keys = account_keys(account_id)
    rec = await load_mailbox(tr, keys, mailbox_id)
    if rec.sort_order != sort_order:
        tr.set(keys.mailbox.pack((mailbox_id,)), replace(rec, sort_order=sort_order).encode())
        await ChangeSet(tr, keys).record(MAILBOX, mailbox_id, UPDATED)


async def set_role(
    tr: Transaction, account_id: str, mailbox_id: str, role: str | None
) -> Mailbox:
    """Give a mailbox a role, or take it away (JMAP Mailbox/set update; RFC 8621 section
    2 only asks that a role be held by one mailbox of the account: RoleExists).  The
    inbox role stays with INBOX, which IMAP names by it (RFC 9051 section 5.1):
    ValueError, as for an unknown role."""
    keys = account_keys(account_id)
    rec = await load_mailbox(tr, keys, mailbox_id)
    new = role or ""
    if rec.role != new:
        if new not in ROLES + OPTIONAL_ROLES + ("",):
            raise ValueError(f"unknown role {role!r}")
        if "inbox" in (rec.role, new):
            raise ValueError("the inbox role stays with INBOX")
        if new:
            if await tr.get(keys.role.pack((new,))) is not None:
                raise RoleExists(new)
            tr.set(keys.role.pack((new,)), pack((mailbox_id,)))
        if rec.role:
            tr.clear(keys.role.pack((rec.role,)))
        rec = replace(rec, role=new)
        tr.set(keys.mailbox.pack((mailbox_id,)), rec.encode())
        await ChangeSet(tr, keys).record(MAILBOX, mailbox_id, UPDATED)
    return _public(mailbox_id, rec, await _path_of(tr, keys, rec))


async def subscribe_name(tr: Transaction, account_id: str, path: str, subscribed: bool) -> None:
    """IMAP SUBSCRIBE / UNSUBSCRIBE (RFC 9051 sections 6.3.7 and 6.3.8): of an existing
    mailbox, its flag; else of the name alone.  A server MAY refuse a name that does not
    exist (section 6.3.7); this one accepts it (up to :data:`.subscriptions.MAX_NAMES`:
    TooManySubscriptions), and a change of such a name moves the account's modseq.
    Unsubscribing a name that is not subscribed changes nothing, as for a mailbox that
    is not (so a retry after an unknown result is no error)."""
    keys = account_keys(account_id)
    parts = split_path(path)
    mailbox_id = await _find_path(tr, keys, parts)
    if mailbox_id is not None:
        await set_subscribed(tr, account_id, mailbox_id, subscribed)
        return
    name = DELIMITER.join(parts)
    changed = await add_name(tr, keys, name) if subscribed else await take_name(tr, keys, name)
    if changed:
        # no object of the change log changed, but the account did: its modseq moves so
        # that watchers wake (IMAP NOTIFY's SubscriptionChange, RFC 5465 section 5.5)
        await ChangeSet(tr, keys).modseq()


async def list_orphan_subscriptions(tr: Transaction, account_id: str) -> list[str]:
    """The subscribed names that have no mailbox (IMAP shows them \\NonExistent)."""
    return await list_names(tr, account_keys(account_id))
