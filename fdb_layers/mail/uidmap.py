"""The compact UID map of a mailbox: its UIDs as runs of consecutive UIDs, a few values
per mailbox, so that SELECT of a 1,000,000-message mailbox reads a few keys instead of
one per message (issue 12, "Large mailboxes").

``[storage, chunk_first] -> (first, last, first, last, ...)``: each chunk holds ascending
runs whose UIDs are all >= its key and below the next chunk's key; at most
:data:`RUNS_PER_CHUNK` runs, so a value stays a few KB (FoundationDB's limit is 100 KB).
A mailbox filled by delivery is one run; every expunge in the middle adds at most one.

It is written in the same transaction as the per-message index (``[storage, uid]``):
:func:`add_uid` by every append/copy/move, :func:`remove_uid` by every expunge, through
:mod:`.emails`.  A reader checks it against the mailbox's message counter and falls back
to the index when they differ (a mailbox written before this map existed).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..engine.base import Transaction
from ..keys import decode_int, unpack
from .layout import AccountKeys, account_keys, pack
from .mailboxes import storage_of

RUNS_PER_CHUNK = 512

Runs = list[tuple[int, int]]


def _decode(raw: bytes) -> Runs:
    flat = unpack(raw)
    return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


def _encode(runs: Runs) -> bytes:
    return pack(tuple(x for run in runs for x in run))


async def add_uid(tr: Transaction, keys: AccountKeys, storage: int, uid: int) -> None:
    """A new UID (always above every UID the storage had: UIDs only grow)."""
    rows = await tr.get_range(*keys.uid_runs.range((storage,)), limit=1, reverse=True)
    if rows:
        key = rows[0].key
        runs = _decode(rows[0].value)
        if runs and runs[-1][1] + 1 == uid:
            runs[-1] = (runs[-1][0], uid)
            tr.set(key, _encode(runs))
            return
        if len(runs) < RUNS_PER_CHUNK:
            runs.append((uid, uid))
            tr.set(key, _encode(runs))
            return
    tr.set(keys.uid_runs.pack((storage, uid)), _encode([(uid, uid)]))


async def remove_uid(tr: Transaction, keys: AccountKeys, storage: int, uid: int) -> None:
    """Take ``uid`` out of its run (a run may split in two; a chunk that grows past
    :data:`RUNS_PER_CHUNK` splits in two as well)."""
    rows = await tr.get_range(keys.uid_runs.pack((storage,)),
                              keys.uid_runs.pack((storage, uid + 1)), limit=1, reverse=True)
    if not rows:
        return
    key = rows[0].key
    runs = _decode(rows[0].value)
    i = next((j for j, (a, b) in enumerate(runs) if a <= uid <= b), -1)
    if i < 0:
        return
    first, last = runs[i]
    pieces = [(a, b) for a, b in ((first, uid - 1), (uid + 1, last)) if a <= b]
    runs[i:i + 1] = pieces
    if not runs:
        tr.clear(key)
    elif len(runs) > RUNS_PER_CHUNK:
        half = len(runs) // 2
        tr.set(key, _encode(runs[:half]))
        tr.set(keys.uid_runs.pack((storage, runs[half][0])), _encode(runs[half:]))
    else:
        tr.set(key, _encode(runs))


async def read_uid_runs(tr: Transaction, keys: AccountKeys, storage: int) -> Runs:
    runs: Runs = []
    for row in await tr.get_range(*keys.uid_runs.range((storage,))):
        runs.extend(_decode(row.value))
    return runs


async def list_uid_runs(tr: Transaction, account_id: str, mailbox_id: str,
                        *, expected: int | None = None) -> Runs:
    """The mailbox's UIDs as ascending (first, last) runs: sequence number n is the n-th
    UID of them (RFC 9051 section 2.3.1.2).  With ``expected`` (the message count of the
    mailbox's status, read in the same transaction), a map that does not hold that many
    UIDs (written before the map existed) is replaced by runs read from the index."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    runs = await read_uid_runs(tr, keys, storage)
    if expected is None or sum(b - a + 1 for a, b in runs) == expected:
        return runs
    from .queries import list_uids
    out: Runs = []
    for uid in await list_uids(tr, account_id, mailbox_id):
        if out and out[-1][1] + 1 == uid:
            out[-1] = (out[-1][0], uid)
        else:
            out.append((uid, uid))
    return out


def count_keywords(tr: Transaction, keys: AccountKeys, storage: int, keywords: Iterable[str],
                   sign: int) -> None:
    """Messages of ``storage`` with each keyword, +1 / -1 (atomic adds: no conflicts)."""
    for k in keywords:
        tr.add(keys.keyword_count.pack((storage, k)), sign)


async def list_keywords_in_use(tr: Transaction, account_id: str, mailbox_id: str) -> list[str]:
    """The keywords some message of the mailbox has (SELECT's FLAGS), without reading the
    messages: one short range of counters."""
    keys = account_keys(account_id)
    storage = await storage_of(tr, keys, mailbox_id)
    rows = await tr.get_range(*keys.keyword_count.range((storage,)))
    return [str(keys.keyword_count.unpack(r.key)[1]) for r in rows if decode_int(r.value) > 0]
