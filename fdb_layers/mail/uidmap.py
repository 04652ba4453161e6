"""The compact UID map of a mailbox: its UIDs as runs of consecutive UIDs, a few values
per mailbox, so that SELECT of a 1,000,000-message mailbox reads a few keys instead of
one per message (issue 12, "Large mailboxes").

``[storage, chunk_first] -> (first, last, first, last, ...)``: each chunk holds ascending
runs whose UIDs are all >= its key and below the next chunk's key; at most
:data:`RUNS_PER_CHUNK` runs, so a value stays a few KB (FoundationDB's limit is 100 KB).
A mailbox filled by delivery is one run; every expunge in the middle adds at most one.

It is written in the same transaction as the per-message index (``[storage, uid]``):
:func:`add_uids` by every append/copy/move, :func:`remove_uids` by every expunge, through
:mod:`.emails`.  A reader checks it against the mailbox's message counter and falls back
to the index when they differ (a mailbox written before this map existed).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

from ..engine.base import Transaction
from ..keys import decode_int, unpack
from .layout import AccountKeys, account_keys, pack
from .mailboxes import storage_of

RUNS_PER_CHUNK = 512


class Counting(Protocol):
    """Where counters move: a transaction, or a batch's sum of moves (emails.Counters)."""

    def add(self, key: bytes, delta: int) -> None: ...

Runs = list[tuple[int, int]]


def _decode(raw: bytes) -> Runs:
    flat = unpack(raw)
    return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


def _encode(runs: Runs) -> bytes:
    return pack(tuple(x for run in runs for x in run))


async def add_uids(tr: Transaction, keys: AccountKeys, storage: int,
                   uids: Sequence[int]) -> None:
    """New UIDs, ascending and above every UID the storage had (UIDs only grow): the
    last chunk read once and each chunk written once, whatever their number (a COPY
    of 1,000 messages)."""
    if not uids:
        return
    rows = await tr.get_range(*keys.uid_runs.range((storage,)), limit=1, reverse=True)
    key, runs = (rows[0].key, _decode(rows[0].value)) if rows else (None, [])
    for uid in uids:
        if runs and runs[-1][1] + 1 == uid:
            runs[-1] = (runs[-1][0], uid)
        elif key is not None and len(runs) < RUNS_PER_CHUNK:
            runs.append((uid, uid))
        else:
            if key is not None:
                tr.set(key, _encode(runs))
            key, runs = keys.uid_runs.pack((storage, uid)), [(uid, uid)]
    assert key is not None
    tr.set(key, _encode(runs))


async def remove_uids(tr: Transaction, keys: AccountKeys, storage: int,
                      uids: Collection[int]) -> None:
    """Take ``uids`` out of their runs (UIDs not in the map are ignored): the chunks
    that hold them are read in two range reads and each written once, whatever the
    number of UIDs.  A run may split; a chunk that grows past :data:`RUNS_PER_CHUNK`
    runs is cut into chunks of at most that many, each keyed by its first UID (which
    lies between the chunk's key and the next chunk's)."""
    if not uids:
        return
    gone = sorted(set(uids))
    lo, hi = gone[0], gone[-1]
    head, rest = await asyncio.gather(
        tr.get_range(keys.uid_runs.pack((storage,)), keys.uid_runs.pack((storage, lo + 1)),
                     limit=1, reverse=True),
        tr.get_range(keys.uid_runs.pack((storage, lo + 1)),
                     keys.uid_runs.pack((storage, hi + 1))))
    for row in (*head, *rest):
        runs = _decode(row.value)
        kept = _without(runs, gone)
        if kept == runs:
            continue
        if not kept:
            tr.clear(row.key)
            continue
        for i in range(0, len(kept), RUNS_PER_CHUNK):
            piece = kept[i:i + RUNS_PER_CHUNK]
            key = row.key if i == 0 else keys.uid_runs.pack((storage, piece[0][0]))
            tr.set(key, _encode(piece))


def _without(runs: Runs, gone: list[int]) -> Runs:
    """``runs`` less the UIDs of ``gone`` (ascending)."""
    out: Runs = []
    for first, last in runs:
        start = first
        for j in range(bisect_left(gone, first), bisect_right(gone, last)):
            if gone[j] > start:
                out.append((start, gone[j] - 1))
            start = gone[j] + 1
        if start <= last:
            out.append((start, last))
    return out


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


def count_keywords(tr: Counting, keys: AccountKeys, storage: int, keywords: Iterable[str],
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
