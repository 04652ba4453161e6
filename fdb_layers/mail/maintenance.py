"""Mailbox housekeeping: one leased pass over every account, resumable.

The mail layer leaves work behind that nobody asks for: the change log and the
QRESYNC tombstones grow with every change, delivery markers with every
delivery, and a deleted mailbox's storage waits to be emptied.  A *pass* visits
every account and, for each, calls the layer's own operations:

* :func:`fdb_layers.mail.cleanup.clean_storage` on its detached storages, in batches;
* :func:`fdb_layers.mail.changes.compact_changes` to forget the changes (and
  tombstones) older than the retention, or beyond the newest ``max_modseqs``;
* :func:`fdb_layers.mail.messages.expire_deliveries` for markers older than theirs;
* :func:`fdb_layers.mail.markers.expire_markers` for operation markers older than the
  change log's floor (up to a batch per pass).

Ages of changes.  The change log is ordered by modseq and carries no time, so
the pass leaves *checkpoints* of its own, ``[account, time] -> modseq``: "at
this time the account's modseq was this".  Changes up to the modseq of the
newest checkpoint older than the retention are older than the retention.  A
checkpoint is added when the newest one is more than 1/16 of the retention old,
so an account holds about 17 of them, and changes are kept for the retention
and at most a 16th (plus one pass interval) longer.  A checkpoint's time is
taken just before its transaction, so it may be early by the transaction's
duration (under 5 s): nothing next to a retention of days.

One node at a time: the work is leased (a key holding the holder and an
expiry), renewed while working; a node that loses its lease stops.  The cursor
(the pass's start and the last account done) is written with each renewal,
only by the lease holder, so a node that dies mid-pass leaves it for the next
one, which carries on from there once the lease expires.  Every step is a layer
operation that is safe to repeat, so work redone after a crash changes
nothing.  A complete pass clears the cursor and records its start; the next one
begins from the first account once ``pass_interval`` has passed.

Accounts are found with a skip scan of the mail subspace (one key read per
account, in snapshot transactions of ``account_batch`` accounts), so a pass
needs no index of accounts; the per-account work is one transaction in the
common case.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from . import layout as mail_layout
from .accounts import account_exists
from .changes import compact_changes, get_change_floor, get_modseq
from .cleanup import DEFAULT_BATCH as CLEANUP_BATCH
from .cleanup import clean_storage, list_pending
from ..engine.base import Engine, LayoutVersionError, Transaction
from ..engine.run import transact
from ..keys import Subspace, pack, unpack
from ..lease import get_lease, release_lease, take_lease
from ..layout import check_store_layouts
from .markers import expire_markers
from .messages import expire_deliveries

log = logging.getLogger(__name__)

# --- layout: every key of this layer -------------------------------------------------
LAYOUT = (1, 0)  # (major, minor): layout["maintenance"] (see fdb_layers.layout)
ROOT = Subspace(("maint",))
LEASE = ROOT.pack(("lease",))  # pack((holder, expires unix time)): who runs the pass
CURSOR = ROOT.pack(("cursor",))  # pack((pass started, last account done or None))
LAST_PASS = ROOT.pack(("pass",))  # pack((started, finished)): the last complete pass
CHECKPOINT = ROOT["ckpt"]  # [account_id, unix time] -> pack((modseq,)): see the docstring

DAY = 86400.0
DEFAULT_CHANGE_RETENTION = 30 * DAY
DEFAULT_DELIVERY_RETENTION = 7 * DAY
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_PASS_INTERVAL = 3600.0
DEFAULT_ACCOUNT_BATCH = 100
DELIVERY_BATCH = 500  # markers one transaction forgets (two small clears each)
PENDING_PAGE = 100  # detached storages of one account listed at once
CHECKPOINTS_PER_RETENTION = 16

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Retention:
    """What a pass keeps.  0 keeps forever (or, for ``max_modseqs``, sets no cap)."""

    change_seconds: float = DEFAULT_CHANGE_RETENTION  # changes and tombstones, by age
    max_modseqs: int = 0  # at most the newest this many modseqs of changes, whatever their age
    delivery_seconds: float = DEFAULT_DELIVERY_RETENTION  # delivery markers, by received-at


@dataclass(slots=True)
class MaintenanceResult:
    """What one :func:`run_maintenance` call did."""

    ran: bool = True  # False: another node holds the lease
    due: bool = True  # False: the last pass is more recent than the pass interval
    resumed: bool = False  # carried on a pass that an earlier run left unfinished
    completed: bool = False  # the pass reached its last account
    lease_lost: bool = False  # another node took the lease; this one stopped
    accounts: int = 0  # accounts maintained
    skipped_accounts: int = 0  # accounts written by a newer mail layout, left alone
    storages: int = 0  # detached storages emptied
    deliveries: int = 0  # delivery markers forgotten
    modseqs: int = 0  # modseqs whose changes and tombstones were forgotten


@dataclass(frozen=True, slots=True)
class MaintenanceState:
    """The pass in progress (``started`` None: none) and the last complete one."""

    started: float | None
    after: str | None  # last account done by the pass in progress
    last_started: float | None
    last_finished: float | None


# --- the lease -----------------------------------------------------------------------


async def take_maintenance_lease(tr: Transaction, holder: str, now: float, seconds: float) -> bool:
    """Take or renew the lease for ``holder``; False if another holder has it."""
    return await take_lease(tr, LEASE, holder, now, seconds)


async def release_maintenance_lease(tr: Transaction, holder: str) -> None:
    await release_lease(tr, LEASE, holder)


async def get_maintenance_lease(tr: Transaction) -> tuple[str, float] | None:
    """``(holder, expires)`` of the lease, or None."""
    return await get_lease(tr, LEASE)


async def _still_ours(tr: Transaction, holder: str) -> bool:
    """True while the lease key names ``holder``, expired or not: nobody took it
    over, so nobody else can have moved the cursor."""
    raw = await tr.get(LEASE)
    return raw is not None and unpack(raw)[0] == holder


async def _renew_lease(tr: Transaction, holder: str, now: float, seconds: float) -> bool:
    if not await _still_ours(tr, holder):
        return False
    tr.set(LEASE, pack((holder, now + seconds)))
    return True


# --- the cursor ----------------------------------------------------------------------


async def get_maintenance_state(tr: Transaction) -> MaintenanceState:
    started: float | None = None
    after: str | None = None
    raw = await tr.get(CURSOR)
    if raw is not None:
        s, a = unpack(raw)
        started, after = float(s), None if a is None else str(a)
    last_started: float | None = None
    last_finished: float | None = None
    raw = await tr.get(LAST_PASS)
    if raw is not None:
        ls, lf = unpack(raw)
        last_started, last_finished = float(ls), float(lf)
    return MaintenanceState(started, after, last_started, last_finished)


@dataclass(frozen=True, slots=True)
class _Start:
    ran: bool
    started: float | None = None  # None: no pass due
    after: str | None = None
    resumed: bool = False


async def _begin_pass(
    tr: Transaction, holder: str, now: float, lease_seconds: float, pass_interval: float
) -> _Start:
    """Take the lease; carry on the unfinished pass, or start one if due."""
    if not await take_maintenance_lease(tr, holder, now, lease_seconds):
        return _Start(ran=False)
    raw = await tr.get(CURSOR)
    if raw is not None:
        started, after = unpack(raw)
        return _Start(True, float(started), None if after is None else str(after),
                      resumed=float(started) != now)  # equal: our own retried commit
    last = await tr.get(LAST_PASS)
    if last is not None and float(unpack(last)[0]) > now - pass_interval:
        tr.clear(LEASE)  # nothing to do: leave the lease free
        return _Start(ran=True)
    tr.set(CURSOR, pack((now, None)))
    return _Start(True, now)


async def _advance(
    tr: Transaction, holder: str, now: float, lease_seconds: float, started: float, after: str
) -> bool:
    """Renew the lease and record progress; False if the lease or the pass is not ours."""
    if not await _renew_lease(tr, holder, now, lease_seconds):
        return False
    raw = await tr.get(CURSOR)
    if raw is None or float(unpack(raw)[0]) != started:
        return False
    tr.set(CURSOR, pack((started, after)))
    return True


async def _finish_pass(tr: Transaction, holder: str, now: float, started: float) -> bool:
    """Close the pass and free the lease; False if the lease or the pass is not ours."""
    raw = await tr.get(CURSOR)
    if raw is None:
        last = await tr.get(LAST_PASS)  # done already, if this is our own retried commit
        return last is not None and float(unpack(last)[0]) == started
    if float(unpack(raw)[0]) != started or not await _still_ours(tr, holder):
        return False
    tr.clear(CURSOR)
    tr.set(LAST_PASS, pack((started, now)))
    tr.clear(LEASE)
    return True


# --- accounts ------------------------------------------------------------------------


async def list_account_ids(
    tr: Transaction, *, after: str | None = None, limit: int = DEFAULT_ACCOUNT_BATCH
) -> list[str]:
    """Up to ``limit`` account ids after ``after``, in key order: a skip scan of
    the mail subspace (one single-key snapshot read per account)."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    root = mail_layout.ROOT
    begin = root.range()[0] if after is None else root.range((after,))[1]
    end = root.range()[1]
    out: list[str] = []
    while len(out) < limit and begin < end:
        rows = await tr.get_range(begin, end, limit=1, snapshot=True)
        if not rows:
            break
        account_id = str(root.unpack(rows[0].key)[0])
        out.append(account_id)
        begin = root.range((account_id,))[1]
    return out


async def _scan(tr: Transaction, after: str | None, limit: int) -> list[str]:
    """The next accounts of the pass; checkpoints of accounts between them that
    no longer exist are forgotten on the way."""
    ids = await list_account_ids(tr, after=after, limit=limit)
    begin = CHECKPOINT.range()[0] if after is None else CHECKPOINT.range((after,))[1]
    for account_id in ids:
        tr.clear_range(begin, CHECKPOINT.pack((account_id,)))
        begin = CHECKPOINT.range((account_id,))[1]
    if len(ids) < limit:
        tr.clear_range(begin, CHECKPOINT.range()[1])
    return ids


@dataclass(frozen=True, slots=True)
class _AccountStep:
    modseqs: int  # compacted
    deliveries: int  # markers forgotten
    pending: tuple[int, ...]  # detached storages (the first PENDING_PAGE)


async def _compact(tr: Transaction, account_id: str, now: float, keep: Retention) -> int:
    """Compact the change log as ``keep`` says and leave a checkpoint; the number
    of modseqs forgotten."""
    modseq = await get_modseq(tr, account_id)
    rows = await tr.get_range(*CHECKPOINT.range((account_id,)))
    points = [(float(CHECKPOINT.unpack(r.key)[1]), int(unpack(r.value)[0])) for r in rows]
    before = 0
    if keep.change_seconds > 0:
        old = [p for p in points if p[0] <= now - keep.change_seconds]
        if old:
            used_time, used_modseq = old[-1]
            before = used_modseq + 1
            # older checkpoints can never be the newest old one again
            tr.clear_range(CHECKPOINT.range((account_id,))[0],
                           CHECKPOINT.pack((account_id, used_time)))
        newest = points[-1] if points else None
        granularity = keep.change_seconds / CHECKPOINTS_PER_RETENTION
        if modseq > 0 and (newest is None
                           or (newest[0] <= now - granularity and newest[1] < modseq)):
            tr.set(CHECKPOINT.pack((account_id, now)), pack((modseq,)))
    if keep.max_modseqs > 0:
        before = max(before, modseq - keep.max_modseqs + 1)
    floor = await get_change_floor(tr, account_id)
    if before - 1 <= floor:
        return 0
    return await compact_changes(tr, account_id, before) - floor


async def _maintain_account(
    tr: Transaction, account_id: str, now: float, keep: Retention, delivery_batch: int
) -> _AccountStep:
    """The common case of an account in one transaction: compaction, a first
    batch of delivery markers, and the list of storages to empty.  Raises
    LayoutVersionError for an account written by a newer mail layout."""
    await account_exists(tr, account_id)  # refuses newer layouts; absent meta is no matter
    # operation markers live as long as the change log (the floor before this pass's
    # compaction: one pass later at most)
    await expire_markers(tr, account_id, await get_change_floor(tr, account_id),
                         limit=delivery_batch)
    modseqs = await _compact(tr, account_id, now, keep)
    deliveries = 0
    if keep.delivery_seconds > 0:
        deliveries = await expire_deliveries(
            tr, account_id, now - keep.delivery_seconds, limit=delivery_batch
        )
    pending = await list_pending(tr, account_id=account_id, limit=PENDING_PAGE)
    return _AccountStep(modseqs, deliveries, tuple(storage for _, storage in pending))


# --- the pass ------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    engine: Engine
    holder: str
    clock: Clock
    lease_seconds: float
    keep: Retention
    cleanup_batch: int
    delivery_batch: int
    renewed_at: float

    def now(self) -> float:
        return float(self.clock())

    async def hold(self) -> bool:
        """Renew the lease once a third of it has gone by; False once it is lost."""
        now = self.now()
        if now - self.renewed_at < self.lease_seconds / 3:
            return True
        self.renewed_at = now
        return await transact(self.engine, _renew_lease, self.holder, now, self.lease_seconds)


async def run_maintenance(
    engine: Engine,
    *,
    keep: Retention | None = None,
    clock: Clock = time.time,
    holder: str | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    pass_interval: float = DEFAULT_PASS_INTERVAL,
    account_batch: int = DEFAULT_ACCOUNT_BATCH,
    cleanup_batch: int = CLEANUP_BATCH,
    delivery_batch: int = DELIVERY_BATCH,
) -> MaintenanceResult:
    """Carry on the pass in progress, or start one if the last began more than
    ``pass_interval`` seconds ago, and run it to its end while this node holds
    the lease.  ``MaintenanceResult(ran=False)`` if another node holds it.
    Safe to call on any number of nodes at any time; each step commits on its
    own, and stopping anywhere (an error, a cancellation) loses nothing."""
    if account_batch <= 0 or cleanup_batch <= 0 or delivery_batch <= 0:
        raise ValueError("batch sizes must be positive")
    holder = holder or uuid.uuid4().hex
    keep = keep or Retention()
    # every layer (a pass touches mail keys too); the mail layer also versions each
    # account (its meta key): see _maintain_account
    await transact(engine, check_store_layouts)
    now = float(clock())
    start = await transact(engine, _begin_pass, holder, now, lease_seconds, pass_interval)
    if not start.ran:
        return MaintenanceResult(ran=False)
    if start.started is None:
        return MaintenanceResult(due=False)
    run = _Run(engine, holder, clock, lease_seconds, keep, cleanup_batch, delivery_batch, now)
    result = MaintenanceResult(resumed=start.resumed)
    after = start.after
    while True:
        ids = await transact(engine, _scan, after, account_batch)
        for account_id in ids:
            if not await _maintain(run, result, account_id):
                result.lease_lost = True
                break
            after = account_id
        if result.lease_lost:
            break
        if len(ids) < account_batch:
            result.completed = await transact(engine, _finish_pass, holder, run.now(),
                                              start.started)
            result.lease_lost = not result.completed
            break
        assert after is not None
        run.renewed_at = run.now()
        if not await transact(engine, _advance, holder, run.renewed_at, lease_seconds,
                              start.started, after):
            result.lease_lost = True
            break
    if result.lease_lost:
        log.warning("maintenance lost its lease; stopping")
    log.info("maintenance: %d accounts (%d skipped), %d storages emptied, %d delivery markers "
             "and %d modseqs of changes forgotten%s", result.accounts, result.skipped_accounts,
             result.storages, result.deliveries, result.modseqs,
             "; pass complete" if result.completed else "")
    return result


async def _maintain(run: _Run, result: MaintenanceResult, account_id: str) -> bool:
    """All the work of one account; False if the lease was lost."""
    now = run.now()
    try:
        step = await transact(run.engine, _maintain_account, account_id, now, run.keep,
                              run.delivery_batch)
    except LayoutVersionError as e:
        result.skipped_accounts += 1
        log.warning("maintenance skips an account: %s", e)
        return await run.hold()
    result.accounts += 1
    result.modseqs += step.modseqs
    result.deliveries += step.deliveries
    more = step.deliveries == run.delivery_batch
    while more:
        if not await run.hold():
            return False
        n = await transact(run.engine, expire_deliveries, account_id,
                           now - run.keep.delivery_seconds, limit=run.delivery_batch)
        result.deliveries += n
        more = n == run.delivery_batch
    pending = step.pending
    while pending:
        for storage in pending:
            while not await transact(run.engine, clean_storage, account_id, storage,
                                     batch=run.cleanup_batch):
                if not await run.hold():
                    return False
            result.storages += 1
        if len(pending) < PENDING_PAGE:
            break
        listed = await transact(run.engine, list_pending, account_id=account_id,
                                limit=PENDING_PAGE)
        pending = tuple(storage for _, storage in listed)
    return await run.hold()
