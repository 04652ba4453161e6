"""Accounts: created on first use, keyed by the directory's principal id.

Nothing about the principal is stored; the account is its layout version, its
counters and its mailboxes.  :func:`ensure_account` creates the special-use
mailboxes (RFC 6154 / RFC 8621 roles) once; :func:`ensure_role_mailbox`
re-creates one that was deleted.  Listeners (IMAP IDLE, JMAP push) watch the
account's modseq key, which every change bumps in its own transaction.
"""

from __future__ import annotations

from dataclasses import replace

from .changes import MAILBOX, UPDATED, ChangeSet
from ..engine.base import Engine, LayoutVersionError, Transaction, Watch
from ..keys import encode_int, unpack
from .errors import AccountNotFound
from .layout import LAYOUT_VERSION, MODSEQ, STORAGE, MailboxRecord, account_keys, pack
from .mailboxes import INBOX, ROLES, find_child, generate_mailbox_id, insert_mailbox

ROLE_NAMES = {
    "inbox": INBOX,
    "drafts": "Drafts",
    "sent": "Sent",
    "junk": "Junk",
    "trash": "Trash",
    "archive": "Archive",
}


def _check_layout(raw: bytes) -> None:
    version = int(unpack(raw)[0])
    if version > LAYOUT_VERSION:
        raise LayoutVersionError(
            f"account written by mail layout {version}; this node knows {LAYOUT_VERSION}"
        )


async def account_exists(tr: Transaction, account_id: str) -> bool:
    raw = await tr.get(account_keys(account_id).meta)
    if raw is None:
        return False
    _check_layout(raw)
    return True


async def require_account(tr: Transaction, account_id: str) -> None:
    if not await account_exists(tr, account_id):
        raise AccountNotFound(account_id)


async def ensure_account(
    tr: Transaction, account_id: str, *, uidvalidity_seed: int = 1
) -> bool:
    """Create the account and its role mailboxes unless it exists; True if created.

    ``uidvalidity_seed`` (for instance the current time in seconds) is the first
    UIDVALIDITY given out, so that an account deleted and created again does not
    repeat UIDVALIDITY values that clients may have cached."""
    if not account_id:
        raise ValueError("empty account id")
    keys = account_keys(account_id)
    raw = await tr.get(keys.meta)
    if raw is not None:
        _check_layout(raw)
        return False
    tr.set(keys.meta, pack((LAYOUT_VERSION,)))
    if uidvalidity_seed > 1:
        tr.set(keys.count_key(STORAGE), encode_int(uidvalidity_seed - 1))
    changes = ChangeSet(tr, keys)
    for role in ROLES:
        await insert_mailbox(
            tr, keys, changes, role, "", ROLE_NAMES[role], role=role, subscribed=True
        )
    return True


async def ensure_role_mailbox(tr: Transaction, account_id: str, role: str) -> str:
    """The id of the mailbox with ``role``; re-created (or the role given back
    to a mailbox of the standard name) if it was deleted."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    keys = account_keys(account_id)
    raw = await tr.get(keys.role.pack((role,)))
    if raw is not None:
        return str(unpack(raw)[0])
    await require_account(tr, account_id)
    changes = ChangeSet(tr, keys)
    name = ROLE_NAMES[role]
    found = await find_child(tr, keys, "", name)
    if found is not None:
        rec_raw = await tr.get(keys.mailbox.pack((found,)))
        assert rec_raw is not None
        rec = MailboxRecord.decode(rec_raw)
        if not rec.role:
            tr.set(keys.mailbox.pack((found,)), replace(rec, role=role).encode())
            tr.set(keys.role.pack((role,)), pack((found,)))
            await changes.record(MAILBOX, found, UPDATED)
            return found
        name = f"{name} ({role})"
    mailbox_id = await generate_mailbox_id(tr, keys)
    await insert_mailbox(tr, keys, changes, mailbox_id, "", name, role=role, subscribed=True)
    return mailbox_id


async def watch_account(engine: Engine, account_id: str) -> Watch:
    """A watch that fires at the account's next change (IMAP IDLE, JMAP push)."""
    return await engine.watch(account_keys(account_id).count_key(MODSEQ))
