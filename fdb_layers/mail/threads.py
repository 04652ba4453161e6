"""Threads: which conversation a new email joins.

An email joins the thread of a message it references (Message-ID, In-Reply-To,
References, as RFC 5256's REFERENCES algorithm links them) when the base
subjects (RFC 5256 section 2.1, compared as i;unicode-casemap: one
implementation, :mod:`mailtext.subjects`, shared with IMAP THREAD) agree, as
JMAP (RFC 8621 section 3) leaves to the server; otherwise it starts a thread.
The index ``[Message-ID, email id] -> thread id`` holds one entry per email for
its own id and for each id it references (so replies that arrive before their
parent still meet it), and loses them when that email is destroyed: a reply to
a destroyed message joins the thread of any surviving email that shares one of
its ids (as Stalwart finds threads by the emails that share references), and
never a thread that is gone.  Entries of mail layout 1.0 (``[Message-ID]``, one
per id, never cleared) are still read; one that points at a destroyed thread
is cleared when met, and the new email's own entry takes its place.  A thread
lists its emails by received-at (JMAP Thread/get).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from mailtext.subjects import base_subject

from .changes import CREATED, DESTROYED, THREAD, UPDATED, ChangeSet
from ..engine.base import Transaction
from ..keys import unpack
from .layout import AccountKeys, account_keys, pack, unpack_str

MAX_REFERENCES_INDEXED = 20  # the nearest ancestors; References can be long
MAX_MESSAGE_ID_LENGTH = 900  # keeps keys well under 1 KB
MAX_ENTRIES_READ = 8  # emails sharing one Message-ID looked at (a thread root has many)


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
    subjects: dict[str, str | None] = {}  # thread id -> its base subject (None: gone)
    for mid in candidates:
        legacy = keys.message_id.pack((mid,))  # layout 1.0: [mid] -> (thread_id,)
        rows = await tr.get_range(legacy, keys.message_id.range((mid,))[1],
                                  limit=MAX_ENTRIES_READ)
        for row in rows:
            tid = unpack_str(row.value)
            if tid not in subjects:
                subjects[tid] = await _thread_subject(tr, keys, tid)
            their = subjects[tid]
            if their is None:  # only a 1.0 entry can point at a thread that is gone
                tr.clear(row.key)
                continue
            if not their or not subject or _same_subject(their, subject):
                thread_id = tid
                break
        if thread_id is not None:
            break
    if thread_id is None:
        thread_id = "T" + email_id
        tr.set(keys.thread.pack((thread_id,)), pack((subject,)))
        await changes.record(THREAD, thread_id, CREATED)
    else:
        await changes.record(THREAD, thread_id, UPDATED)
    # the email's entries, listed in its thread entry so that leave_threads clears them
    tr.set(keys.thread_email.pack((thread_id, received_us, email_id)), pack(tuple(candidates)))
    value = pack((thread_id,))
    for mid in candidates:
        tr.set(keys.message_id.pack((mid, email_id)), value)
    return thread_id


async def leave_threads(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    leaving: Sequence[tuple[str, str, int]],
) -> None:
    """Take destroyed emails, ``(thread id, email id, received_us)`` each, out of their
    threads, with their Message-ID entries; a thread goes with its last email.  The
    entries are read at once, then one short range per thread concurrently (an
    expunge of a thousand messages waits for two reads, not two thousand)."""
    entry_keys = [keys.thread_email.pack((t, r, e)) for t, e, r in leaving]
    for (_, email_id, _), key, raw in zip(leaving, entry_keys, await tr.get_many(entry_keys),
                                          strict=True):
        for mid in unpack(raw) if raw else ():  # b"": an email of layout 1.0, no entries
            tr.clear(keys.message_id.pack((str(mid), email_id)))
        tr.clear(key)
    threads = list(dict.fromkeys(t for t, _, _ in leaving))
    rests = await asyncio.gather(
        *(tr.get_range(*keys.thread_email.range((t,)), limit=1) for t in threads))
    for thread_id, rest in zip(threads, rests, strict=True):
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
