"""Threads: which conversation a new email joins.

An email joins the thread of a message it references (Message-ID, In-Reply-To,
References, as RFC 5256's REFERENCES algorithm links them) when the base
subjects (RFC 5256 section 2.1, compared as i;unicode-casemap: one
implementation, :mod:`mailtext.subjects`, shared with IMAP THREAD) agree, as
JMAP (RFC 8621 section 3) leaves to the server; otherwise it starts a thread.
An index Message-ID -> thread id is kept for the message's own id and for the
ids it references, so replies that arrive before their parent still meet it.
A thread lists its emails by received-at (JMAP Thread/get).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailtext.subjects import base_subject

from .changes import CREATED, DESTROYED, THREAD, UPDATED, ChangeSet
from .engine.base import Transaction
from .keys import unpack
from .mail_layout import AccountKeys, account_keys, pack, unpack_str

MAX_REFERENCES_INDEXED = 20  # the nearest ancestors; References can be long
MAX_MESSAGE_ID_LENGTH = 900  # keeps keys well under 1 KB


@dataclass(frozen=True, slots=True)
class ThreadHeaders:
    """What threading reads from a message (server.mime extracts it)."""

    message_id: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    subject: str = ""


def normalise_message_id(message_id: str) -> str | None:
    mid = message_id.strip().strip("<>").strip()
    if not mid or len(mid) > MAX_MESSAGE_ID_LENGTH:
        return None
    return mid


def _same_subject(their: str, subject: str) -> bool:
    """A thread's stored base subject against a new email's (both comparison forms).
    Threads of mail layout 1.0 hold ``str.lower()`` forms: their form is recomputed."""
    return their == subject or base_subject(their) == subject


async def _thread_subject(tr: Transaction, keys: AccountKeys, thread_id: str) -> str | None:
    raw = await tr.get(keys.thread.pack((thread_id,)))
    return None if raw is None else unpack_str(raw)


async def join_thread(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    email_id: str,
    received_us: int,
    headers: ThreadHeaders,
) -> str:
    """Put a new email in a thread (an existing one or a new one); its id."""
    own = normalise_message_id(headers.message_id or "")
    refs: list[str] = []
    for raw in (*headers.references, *headers.in_reply_to):
        mid = normalise_message_id(raw)
        if mid is not None and mid != own and mid not in refs:
            refs.append(mid)
    refs = refs[-MAX_REFERENCES_INDEXED:]
    subject = base_subject(headers.subject)

    candidates = ([own] if own else []) + list(reversed(refs))  # nearest first
    thread_id: str | None = None
    known: dict[str, bytes | None] = {}  # message id -> its index value, as read
    for mid in candidates:
        found = known[mid] = await tr.get(keys.message_id.pack((mid,)))
        if found is None:
            continue
        tid = unpack_str(found)
        their = await _thread_subject(tr, keys, tid)
        if their is None:  # that thread is gone
            continue
        if not their or not subject or _same_subject(their, subject):
            thread_id = tid
            break
    if thread_id is None:
        thread_id = "T" + email_id
        tr.set(keys.thread.pack((thread_id,)), pack((subject,)))
        await changes.record(THREAD, thread_id, CREATED)
    else:
        await changes.record(THREAD, thread_id, UPDATED)
    tr.set(keys.thread_email.pack((thread_id, received_us, email_id)), b"")
    value = pack((thread_id,))
    for mid in candidates:
        key = keys.message_id.pack((mid,))
        if mid == own:
            tr.set(key, value)  # its own id points at its own thread
        elif (known[mid] if mid in known else await tr.get(key)) is None:
            tr.set(key, value)
    return thread_id


async def leave_thread(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    thread_id: str,
    email_id: str,
    received_us: int,
) -> None:
    """Take a destroyed email out of its thread; the thread goes with its last email."""
    tr.clear(keys.thread_email.pack((thread_id, received_us, email_id)))
    rest = await tr.get_range(*keys.thread_email.range((thread_id,)), limit=1)
    if rest:
        await changes.record(THREAD, thread_id, UPDATED)
    else:
        tr.clear(keys.thread.pack((thread_id,)))
        await changes.record(THREAD, thread_id, DESTROYED)


async def list_thread(tr: Transaction, account_id: str, thread_id: str) -> list[str]:
    """The email ids of a thread, oldest received first (empty if unknown)."""
    keys = account_keys(account_id)
    rows = await tr.get_range(*keys.thread_email.range((thread_id,)))
    return [str(unpack(r.key[len(keys.thread_email.raw_prefix):])[2]) for r in rows]
