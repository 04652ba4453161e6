"""The garbage collector that removes unreferenced blobs (their counts: :mod:`.refs`).

How the collector never leaves a dangling reference
---------------------------------------------------
Candidates are blobs whose count fell to 0 more than ``grace`` ago (an index
by time) and orphans: blobs in the blob store, last modified more than
``grace`` ago, with no record here (a crash between the put and the commit).
For each one:

1. *claim* (a transaction): re-check that the count is still 0 (or, for an
   orphan, that no record appeared) and write a deletion marker.  A concurrent
   :func:`add_blob_ref` reads the marker key, so the two transactions conflict:
   either the reference commits first (the claim then sees count > 0 and backs
   off: the re-reference wins) or the claim does (the writer then sees the
   marker and gets :class:`BlobBeingDeleted`, so it re-puts after the marker
   is gone and never references a blob being removed).
2. *delete* with ``BlobStore.delete_if_older(id, now - grace)``: a writer that
   put the blob again (a dedupe before its commit) refreshed it, so it is
   kept.  On ``fs`` the age check and the removal are atomic.  On ``s3`` they
   are a HEAD then a DELETE; a put landing between them *and* a commit landing
   after step 3 is the one remaining window (one round trip wide); a writer
   that cannot accept it checks ``exists`` after its commit and re-puts.
3. *finish* (a transaction): clear the marker (if still ours) and, if the blob
   is gone and still unreferenced, its record; if it was kept, its
   "unreferenced since" moves to now, so it is looked at again a grace later.

Markers carry the time they were written; a collector never starts a delete
more than ``marker_ttl / 2`` after its claim.  A marker older than
``marker_ttl`` belongs to a collector that died: the next run resumes it.

One node at a time: the work is leased (a key holding the holder and an
expiry), taken and renewed between batches; a node that loses its lease stops
after its current batch.  The lease only avoids duplicated work: safety rests
on the markers, so two collectors overlapping for a moment do no harm.
Listing the blob store for orphans is the costly part; the time of the last
complete scan is kept in the store so that, whichever node runs, it happens
once per ``orphan_scan_interval``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..engine.base import Engine, Transaction
from ..engine.run import transact
from ..keys import decode_int, pack, unpack
from ..layout import check_store_layouts
from ..lease import get_lease, release_lease, take_lease
from .refs import (
    COUNT,
    DELETING,
    LEASE,
    ORPHAN_SCAN,
    SIZE,
    UNREF_SINCE,
    UNREFERENCED,
    is_blob_id,
    list_unreferenced,
)
from .uploads import expire_uploads

log = logging.getLogger(__name__)


DEFAULT_GRACE_SECONDS = 3600.0
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_ORPHAN_SCAN_INTERVAL = 86400.0
MAX_REPORTED_IDS = 1000  # GcResult.deleted_ids keeps the first ones only

Clock = Callable[[], float]


class GcBlobStore(Protocol):
    """What the collector needs of a blob store (``server.blobs.BlobStore`` fits)."""

    def list(self) -> AsyncIterator[tuple[str, float]]: ...

    async def delete_if_older(self, blob_id: str, cutoff: float) -> bool: ...

    async def exists(self, blob_id: str) -> bool: ...

# --- the GC lease --------------------------------------------------------------------


async def take_gc_lease(tr: Transaction, holder: str, now: float, seconds: float) -> bool:
    """Take or renew the GC lease for ``holder``; False if another holder has it."""
    return await take_lease(tr, LEASE, holder, now, seconds)


async def release_gc_lease(tr: Transaction, holder: str) -> None:
    await release_lease(tr, LEASE, holder)


async def get_gc_lease(tr: Transaction) -> tuple[str, float] | None:
    """``(holder, expires)`` of the GC lease, or None."""
    return await get_lease(tr, LEASE)


# --- the collector -------------------------------------------------------------------


@dataclass(slots=True)
class GcResult:
    """What one :func:`collect_blobs` run did."""

    ran: bool = True  # False: another node holds the lease
    deleted: int = 0  # unreferenced blobs removed
    orphans: int = 0  # orphans (never referenced) removed
    kept: int = 0  # candidates re-put or re-referenced meanwhile
    resumed: int = 0  # deletions left by a collector that died, finished
    lease_lost: bool = False
    orphan_scan: bool = False  # the blob store was listed for orphans
    deleted_ids: list[str] = field(default_factory=list)  # the first MAX_REPORTED_IDS
    uploads_expired: int = 0  # upload references dropped at their expiry (.uploads)

    def _tally(self, outcome: bool | None, blob_id: str, kind: str) -> None:
        if outcome is None:
            return
        if not outcome:
            self.kept += 1
            return
        if kind == "orphan":
            self.orphans += 1
        elif kind == "resumed":
            self.resumed += 1
        else:
            self.deleted += 1
        if len(self.deleted_ids) < MAX_REPORTED_IDS:
            self.deleted_ids.append(blob_id)


@dataclass(frozen=True, slots=True)
class _Run:
    engine: Engine
    store: GcBlobStore
    token: str
    grace: float
    lease_seconds: float
    marker_ttl: float
    clock: Clock
    concurrency: int


async def collect_blobs(
    engine: Engine,
    store: GcBlobStore,
    *,
    grace: float = DEFAULT_GRACE_SECONDS,
    clock: Clock = time.time,
    holder: str | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    marker_ttl: float | None = None,
    orphan_scan_interval: float = DEFAULT_ORPHAN_SCAN_INTERVAL,
    batch: int = 100,
    concurrency: int = 8,
) -> GcResult:
    """Remove blobs unreferenced (or orphaned) for longer than ``grace`` seconds.

    Runs only while this node holds the GC lease; returns ``GcResult(ran=False)``
    if another node has it.  Safe to run on any number of nodes at any time.
    Listing the whole blob store for orphans is costly: it happens only when the
    last complete scan (by any node) is ``orphan_scan_interval`` seconds old
    (0: every run).
    Up to ``concurrency`` blobs of a batch are collected at once.
    """
    holder = holder or uuid.uuid4().hex
    await transact(engine, check_store_layouts)  # every layer: GC touches several
    if not await transact(engine, take_gc_lease, holder, clock(), lease_seconds):
        return GcResult(ran=False)
    run = _Run(engine, store, holder, grace, lease_seconds,
               marker_ttl if marker_ttl is not None else lease_seconds, clock,
               max(1, concurrency))
    result = GcResult()
    try:
        result.uploads_expired = await _expire_uploads(run, batch)
        held = await _resume_stale(run, result, batch)
        held = held and await _collect_unreferenced(run, result, batch)
        if held and await transact(engine, _orphan_scan_due, clock(), orphan_scan_interval):
            result.orphan_scan = True
            held = await _collect_orphans(run, result, batch)
            if held:
                await transact(engine, _record_orphan_scan, clock())
        result.lease_lost = not held
        if not held:
            log.warning("blob GC lost its lease; stopping")
    finally:
        if not result.lease_lost:
            await transact(engine, release_gc_lease, holder)
    log.info("blob GC: %d unreferenced and %d orphan blobs removed, %d kept, %d resumed",
             result.deleted, result.orphans, result.kept, result.resumed)
    return result


async def _expire_uploads(run: _Run, batch: int) -> int:
    """Drop expired upload references first: their blobs become unreferenced, and are
    removed a grace period later like any other."""
    total = 0
    while True:
        dropped = await transact(run.engine, expire_uploads, run.clock(), limit=batch)
        total += dropped
        if dropped < batch:
            return total


async def _renew(run: _Run) -> bool:
    return await transact(run.engine, take_gc_lease, run.token, run.clock(), run.lease_seconds)


async def _collect_batch(run: _Run, result: GcResult, kind: str,
                         items: list[tuple[str, float | None]]) -> bool:
    """Collect ``(blob_id, unreferenced since)`` items, a few at once; then renew
    the lease (False: lost)."""
    orphan = {"orphan": True, "unreferenced": False}.get(kind)
    limit = asyncio.Semaphore(run.concurrency)

    async def one(blob_id: str, since: float | None) -> None:
        async with limit:
            outcome = await _collect_one(run, blob_id, orphan=orphan, since=since)
        result._tally(outcome, blob_id, kind)

    await asyncio.gather(*(one(blob_id, since) for blob_id, since in items))
    return await _renew(run)


async def _resume_stale(run: _Run, result: GcResult, batch: int) -> bool:
    """Finish deletions whose collector died (markers older than ``marker_ttl``)."""
    cursor: bytes | None = b""
    while cursor is not None:
        stale, cursor = await transact(run.engine, _list_stale_markers,
                                       run.clock() - run.marker_ttl, cursor, batch)
        if not await _collect_batch(run, result, "resumed", [(b, None) for b in stale]):
            return False
    return True


async def _collect_unreferenced(run: _Run, result: GcResult, batch: int) -> bool:
    cursor = b""
    while True:
        cutoff = run.clock() - run.grace
        rows = await transact(run.engine, list_unreferenced, cutoff, after=cursor, limit=batch)
        if not rows:
            return True
        cursor = UNREFERENCED.pack(rows[-1])
        if not await _collect_batch(run, result, "unreferenced",
                                    [(blob_id, since) for since, blob_id in rows]):
            return False


async def _collect_orphans(run: _Run, result: GcResult, batch: int) -> bool:
    pending: list[str] = []
    async for blob_id, modified in run.store.list():
        if modified < run.clock() - run.grace and is_blob_id(blob_id):
            pending.append(blob_id)
        if len(pending) >= batch:
            if not await _collect_orphan_batch(run, result, pending):
                return False
            pending = []
    return await _collect_orphan_batch(run, result, pending)


async def _collect_orphan_batch(run: _Run, result: GcResult, ids: list[str]) -> bool:
    if not ids:
        return await _renew(run)
    orphans = await transact(run.engine, _without_record, ids)
    return await _collect_batch(run, result, "orphan", [(b, None) for b in orphans])


async def _orphan_scan_due(tr: Transaction, now: float, interval: float) -> bool:
    raw = await tr.get(ORPHAN_SCAN)
    return raw is None or float(unpack(raw)[0]) <= now - interval


async def _record_orphan_scan(tr: Transaction, now: float) -> None:
    tr.set(ORPHAN_SCAN, pack((now,)))


async def _collect_one(run: _Run, blob_id: str, *, orphan: bool | None,
                       since: float | None = None) -> bool | None:
    """Claim, delete, finish (see the module docstring).  True: deleted; False:
    kept (re-put meanwhile); None: not claimed (referenced, or another collector's)."""
    started = run.clock()
    cutoff = started - run.grace
    claimed = await transact(run.engine, _claim, blob_id, run.token, started, cutoff,
                             run.marker_ttl, orphan, since)
    if not claimed:
        return None
    deleted = False
    if run.clock() < started + run.marker_ttl / 2:
        deleted = await run.store.delete_if_older(blob_id, cutoff)
        if not deleted and not await run.store.exists(blob_id):
            deleted = True  # already gone (a collector died after deleting it)
    await transact(run.engine, _finish, blob_id, run.token, deleted, run.clock())
    if deleted:
        log.debug("blob %s collected", blob_id)
    return deleted


async def _claim(tr: Transaction, blob_id: str, token: str, now: float, cutoff: float,
                 marker_ttl: float, orphan: bool | None, listed_since: float | None) -> bool:
    """Write our deletion marker if the blob may still be collected.  ``orphan``
    None: resuming a stale marker, whatever the blob's kind; ``listed_since``:
    the time of the index entry that made it a candidate."""
    marker_key = DELETING.pack((blob_id,))
    marker = await tr.get(marker_key)
    if marker is not None:
        owner, written = unpack(marker)
        if owner != token and float(written) > now - marker_ttl:
            return False  # another collector is on it
    count = await tr.get(COUNT.pack((blob_id,)))
    if orphan is True and count is not None:
        return False  # referenced (or unreferenced, recorded) since we listed it
    if decode_int(count) > 0:
        await _clear_unreferenced(tr, blob_id)  # a stale index entry
        if marker is not None:
            tr.clear(marker_key)
        return False
    if orphan is False:
        raw = await tr.get(UNREF_SINCE.pack((blob_id,)))
        since = None if raw is None else float(unpack(raw)[0])
        if listed_since is not None and since != listed_since:
            tr.clear(UNREFERENCED.pack((listed_since, blob_id)))  # a stale index entry
        if since is None or since > cutoff:
            return False  # unreferenced again more recently: a later run decides
    tr.set(marker_key, pack((token, now)))
    return True


async def _finish(tr: Transaction, blob_id: str, token: str, deleted: bool, now: float) -> None:
    marker_key = DELETING.pack((blob_id,))
    marker = await tr.get(marker_key)
    if marker is not None:
        if unpack(marker)[0] != token:
            return  # another collector took over; it finishes
        tr.clear(marker_key)
    count_key = COUNT.pack((blob_id,))
    count = await tr.get(count_key)
    if decode_int(count) > 0:
        return
    if deleted:
        await _clear_unreferenced(tr, blob_id)
        tr.clear(count_key)
        tr.clear(SIZE.pack((blob_id,)))
    elif count is not None:  # kept: unreferenced from now on, looked at again later
        await _clear_unreferenced(tr, blob_id)
        tr.set(UNREF_SINCE.pack((blob_id,)), pack((now,)))
        tr.set(UNREFERENCED.pack((now, blob_id)), b"")


async def _clear_unreferenced(tr: Transaction, blob_id: str) -> None:
    since_key = UNREF_SINCE.pack((blob_id,))
    since = await tr.get(since_key)
    if since is not None:
        tr.clear(since_key)
        tr.clear(UNREFERENCED.pack((unpack(since)[0], blob_id)))


async def _list_stale_markers(tr: Transaction, written_before: float, after: bytes,
                              limit: int) -> tuple[list[str], bytes | None]:
    """Blobs with a marker written before ``written_before``, from the page after
    key ``after``; and the cursor of the next page (None at the end)."""
    begin = max(DELETING.range()[0], after + b"\x00" if after else b"")
    rows = await tr.get_range(begin, DELETING.range()[1], limit=limit)
    stale: list[str] = []
    for kv in rows:
        (blob_id,) = DELETING.unpack(kv.key)
        if float(unpack(kv.value)[1]) < written_before:
            stale.append(str(blob_id))
    return stale, (rows[-1].key if len(rows) == limit else None)


async def _without_record(tr: Transaction, ids: list[str]) -> list[str]:
    """Those of ``ids`` the store knows nothing about (orphan candidates; the
    claim re-checks, so snapshot reads do)."""
    counts = await asyncio.gather(*(tr.get(COUNT.pack((b,)), snapshot=True) for b in ids))
    return [blob_id for blob_id, count in zip(ids, counts, strict=True) if count is None]
