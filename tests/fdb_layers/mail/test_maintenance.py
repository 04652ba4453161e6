"""The maintenance pass: lease, resumable cursor, and what it keeps and forgets.

Every test runs on each contract engine, including sqlite under fault
injection; counts reported by a pass are checked only without faults (after an
unknown commit result the retried attempt finds the work done and reports 0),
the store's contents always."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fdb_layers.mail import accounts, mailboxes
from fdb_layers.mail.changes import EMAIL, get_change_floor, get_changes, get_modseq
from fdb_layers.mail.cleanup import list_pending
from fdb_layers.engine.base import Engine, KeyValue, Transaction, Watch
from fdb_layers.engine.faults import FaultyEngine
from fdb_layers.engine.run import transact
from fdb_layers.keys import pack
from fdb_layers.mail.errors import CannotCalculateChanges
from fdb_layers.mail.layout import BARRIER, ROOT, account_keys
from fdb_layers.mail.maintenance import (
    CHECKPOINT,
    LAYOUT,
    Retention,
    get_maintenance_lease,
    get_maintenance_state,
    list_account_ids,
    run_maintenance,
    take_maintenance_lease,
)
from fdb_layers.mail.maintenance import ROOT as MAINT_ROOT
from fdb_layers.mail.markers import expire_markers
from fdb_layers.mail.queries import get_email, list_vanished
from fdb_layers.mail.messages import append_email, expunge_messages

from .fixtures import ACCOUNT, dump, new_email


T0 = 1_700_100_000.0
KEEP = Retention(change_seconds=100.0, delivery_seconds=500.0)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def exact(engine: Engine) -> bool:
    """Counts are exact only without injected unknown results."""
    return not isinstance(engine, FaultyEngine)


async def append(engine: Engine, account: str, n: int, received_at: float,
                 box: str = "inbox") -> str:
    got = await transact(engine, append_email, account, box,
                         new_email(n, received_at=received_at), delivery_id=f"d{n}")
    return got.email_id


def marker(account: str, n: int) -> bytes:
    return account_keys(account).delivery.pack((f"d{n}",))


def changed(before: dict[bytes, bytes], after: dict[bytes, bytes]) -> set[bytes]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def is_bookkeeping(key: bytes) -> bool:
    """Keys of the maintenance layer itself and the layout records."""
    return key.startswith(MAINT_ROOT.key()) or key.startswith(pack(("layout",)))


# --- an engine that runs a hook before each commit ------------------------------------


class HookEngine:
    """Wraps an engine; ``hook(keys written)`` runs before each commit and may
    raise (a node dying) or act on the inner engine (another node)."""

    def __init__(self, inner: Engine, hook: Callable[[list[bytes]], Awaitable[None]]) -> None:
        self.inner = inner
        self.name = inner.name
        self.hook = hook

    def create_transaction(self) -> Transaction:
        return _HookTransaction(self, self.inner.create_transaction())  # type: ignore[return-value]

    async def watch(self, key: bytes) -> Watch:
        return await self.inner.watch(key)

    async def close(self) -> None:
        pass  # the inner engine belongs to the fixture


class _HookTransaction:
    def __init__(self, engine: HookEngine, inner: Transaction) -> None:
        self._engine = engine
        self._inner = inner
        self.written: list[bytes] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get_range(self, begin: bytes, end: bytes, **kw: Any) -> list[KeyValue]:
        return await self._inner.get_range(begin, end, **kw)

    def set(self, key: bytes, value: bytes) -> None:
        self.written.append(key)
        self._inner.set(key, value)

    def clear(self, key: bytes) -> None:
        self.written.append(key)
        self._inner.clear(key)

    def clear_range(self, begin: bytes, end: bytes) -> None:
        self.written.append(begin)
        self._inner.clear_range(begin, end)

    async def commit(self) -> None:
        await self._engine.hook(self.written)
        await self._inner.commit()

    async def on_error(self, error: Any) -> None:
        self.written = []
        await self._inner.on_error(error)

    def reset(self) -> None:
        self.written = []
        self._inner.reset()


class Crash(Exception):
    """The node died."""


def touches(keys: list[bytes], account: str) -> bool:
    prefix = ROOT.pack((account,))
    return any(k.startswith(prefix) for k in keys)


async def seed_accounts(engine: Engine, names: list[str]) -> None:
    """Accounts, each with one delivery marker old enough to expire."""
    for i, name in enumerate(names):
        await transact(engine, accounts.ensure_account, name)
        await append(engine, name, i, received_at=T0 - 1000)


# --- tests -------------------------------------------------------------------------


async def test_accounts_are_found_by_skip_scan(engine: Engine) -> None:
    names = ["a", "a\x00b", "ab", "b", "bob@example.org", "\u00e9t\u00e9"]
    for name in names:
        await transact(engine, accounts.ensure_account, name)
    assert await transact(engine, list_account_ids, limit=100) == sorted(
        names, key=lambda s: pack((s,)))
    paged: list[str] = []
    after = None
    while page := await transact(engine, list_account_ids, after=after, limit=4):
        paged.extend(page)
        after = page[-1]
    assert paged == await transact(engine, list_account_ids, limit=100)


async def test_changes_and_markers_expire_after_their_retention(engine: Engine) -> None:
    clock = Clock()
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await append(engine, ACCOUNT, 1, received_at=T0 - 1000)
    await append(engine, ACCOUNT, 2, received_at=T0 - 1000)
    await append(engine, ACCOUNT, 3, received_at=T0 - 10)
    await transact(engine, expunge_messages, ACCOUNT, "inbox", uids=[1], only_deleted=False,
                   op_id=None)
    m1 = await transact(engine, get_modseq, ACCOUNT)

    first = await run_maintenance(engine, keep=KEEP, clock=clock)
    assert first.completed and first.accounts == 1
    assert first.deliveries == 2 or not exact(engine)
    assert first.modseqs == 0
    store = await dump(engine)
    assert marker(ACCOUNT, 1) not in store and marker(ACCOUNT, 2) not in store
    assert marker(ACCOUNT, 3) in store  # received 10 s ago: kept
    assert await transact(engine, get_change_floor, ACCOUNT) == 0

    # later changes; then a pass before the retention has gone by compacts nothing
    clock.now = T0 + 20
    await append(engine, ACCOUNT, 4, received_at=T0 + 20)
    await transact(engine, expunge_messages, ACCOUNT, "inbox", uids=[2], only_deleted=False,
                   op_id=None)
    clock.now = T0 + 50
    await run_maintenance(engine, keep=KEEP, clock=clock, pass_interval=0)
    assert await transact(engine, get_change_floor, ACCOUNT) == 0
    newer = await transact(engine, get_changes, ACCOUNT, EMAIL, str(m1))
    vanished = await transact(engine, list_vanished, ACCOUNT, "inbox", m1)
    assert vanished == [2]
    assert await transact(engine, list_vanished, ACCOUNT, "inbox", 0) == [1, 2]
    before = await dump(engine)

    # past the retention of the first pass's checkpoint: changes up to m1 go
    clock.now = T0 + 101
    third = await run_maintenance(engine, keep=KEEP, clock=clock, pass_interval=0)
    assert third.completed and (third.modseqs == m1 or not exact(engine))
    assert await transact(engine, get_change_floor, ACCOUNT) == m1
    with pytest.raises(CannotCalculateChanges):
        await transact(engine, get_changes, ACCOUNT, EMAIL, str(m1 - 1))
    with pytest.raises(CannotCalculateChanges):
        await transact(engine, list_vanished, ACCOUNT, "inbox", m1 - 1)
    assert await transact(engine, get_changes, ACCOUNT, EMAIL, str(m1)) == newer
    assert await transact(engine, list_vanished, ACCOUNT, "inbox", m1) == vanished

    # nothing newer touched: only log entries and tombstones up to m1 went
    after = await dump(engine)
    keys = account_keys(ACCOUNT)
    for key in changed(before, after):
        if is_bookkeeping(key) or key == keys.count_key(BARRIER):
            continue
        assert key not in after, key
        if keys.log.contains(key):
            assert keys.log.unpack(key)[1] <= m1
        else:
            assert keys.vanished.contains(key) and keys.vanished.unpack(key)[1] <= m1
    assert marker(ACCOUNT, 3) in after and marker(ACCOUNT, 4) in after


async def test_max_modseqs_caps_the_change_log(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for n in range(5):
        await append(engine, ACCOUNT, n, received_at=T0)
    modseq = await transact(engine, get_modseq, ACCOUNT)
    keep = Retention(change_seconds=0, max_modseqs=2, delivery_seconds=0)
    await run_maintenance(engine, keep=keep, clock=Clock())
    assert await transact(engine, get_change_floor, ACCOUNT) == modseq - 2
    changes = await transact(engine, get_changes, ACCOUNT, EMAIL, str(modseq - 2))
    assert len(changes.created) == 2
    assert marker(ACCOUNT, 0) in await dump(engine)  # delivery_seconds=0: kept


async def test_deleted_mailbox_storage_is_emptied(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.create_mailbox, ACCOUNT, "old", mailbox_id="old")
    ids = [await append(engine, ACCOUNT, n, received_at=T0, box="old") for n in range(5)]
    status = await transact(engine, mailboxes.get_status, ACCOUNT, "old")
    await transact(engine, mailboxes.delete_mailbox, ACCOUNT, "old")
    assert await transact(engine, list_pending, account_id=ACCOUNT) == [
        (ACCOUNT, status.uidvalidity)]

    result = await run_maintenance(engine, keep=KEEP, clock=Clock(), cleanup_batch=2)
    assert result.completed and (result.storages == 1 or not exact(engine))
    assert await transact(engine, list_pending) == []
    for email_id in ids:
        assert await transact(engine, get_email, ACCOUNT, email_id) is None
    keys = account_keys(ACCOUNT)
    store = await dump(engine)
    for space in (keys.uid, keys.uid_modseq, keys.received, keys.storage_counter):
        begin, end = space.range((status.uidvalidity,))
        assert not [k for k in store if begin <= k < end]


async def test_a_repeated_pass_is_a_no_op(engine: Engine) -> None:
    clock = Clock()
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.create_mailbox, ACCOUNT, "old", mailbox_id="old")
    await append(engine, ACCOUNT, 1, received_at=T0 - 1000, box="old")
    await append(engine, ACCOUNT, 2, received_at=T0 - 1000)
    await transact(engine, mailboxes.delete_mailbox, ACCOUNT, "old")
    await run_maintenance(engine, keep=KEEP, clock=clock)
    clock.now = T0 + 101
    await run_maintenance(engine, keep=KEEP, clock=clock, pass_interval=0)
    before = await dump(engine)
    again = await run_maintenance(engine, keep=KEEP, clock=clock, pass_interval=0)
    assert again.completed and again.accounts == 1
    assert (again.storages, again.deliveries, again.modseqs) == (0, 0, 0)
    assert changed(before, await dump(engine)) == set()


async def test_pass_interval_spaces_passes(engine: Engine) -> None:
    clock = Clock()
    await seed_accounts(engine, ["a", "b"])
    assert (await run_maintenance(engine, keep=KEEP, clock=clock)).completed
    state = await transact(engine, get_maintenance_state)
    assert (state.started, state.last_started, state.last_finished) == (None, T0, T0)
    clock.now = T0 + 10
    idle = await run_maintenance(engine, keep=KEEP, clock=clock, pass_interval=3600)
    assert idle.ran and not idle.due and idle.accounts == 0
    assert await transact(engine, get_maintenance_lease) is None  # left free
    clock.now = T0 + 3601
    assert (await run_maintenance(engine, keep=KEEP, clock=clock, pass_interval=3600)).completed


async def test_the_lease_lets_one_worker_run(engine: Engine) -> None:
    clock = Clock()
    await seed_accounts(engine, ["a", "b", "c"])
    await transact(engine, take_maintenance_lease, "other-node", T0, 60.0)
    before = await dump(engine)
    held = await run_maintenance(engine, keep=KEEP, clock=clock, holder="me")
    assert not held.ran and held.accounts == 0
    assert {k for k in changed(before, await dump(engine)) if not is_bookkeeping(k)} == set()
    assert await transact(engine, get_maintenance_lease) == ("other-node", T0 + 60)

    clock.now = T0 + 61  # the other node's lease expired
    got = await run_maintenance(engine, keep=KEEP, clock=clock, holder="me")
    assert got.ran and got.completed and got.accounts == 3
    assert await transact(engine, get_maintenance_lease) is None

    # two workers at once: exactly one does the pass
    clock.now = T0 + 5000
    both = await asyncio.gather(
        run_maintenance(engine, keep=KEEP, clock=clock, holder="x"),
        run_maintenance(engine, keep=KEEP, clock=clock, holder="y"),
    )
    assert sum(r.completed for r in both) == 1
    assert all(r.completed or not r.ran or not r.due for r in both)


async def test_a_worker_that_loses_its_lease_stops(engine: Engine) -> None:
    names = ["a1", "a2", "a3", "a4", "a5", "a6"]
    await seed_accounts(engine, names)
    stolen = False

    async def steal(written: list[bytes]) -> None:
        nonlocal stolen
        if not stolen and touches(written, "a3"):
            stolen = True  # A stalled past its lease; B took it over
            await transact(engine, take_maintenance_lease, "thief", T0 + 1000, 60.0)

    result = await run_maintenance(HookEngine(engine, steal), keep=KEEP, clock=Clock(),
                                   holder="me", account_batch=2)
    assert result.lease_lost and not result.completed
    state = await transact(engine, get_maintenance_state)
    assert state.started == T0 and state.after == "a2"  # A did not move B's cursor
    lease = await transact(engine, get_maintenance_lease)
    assert lease is not None and lease[0] == "thief"


async def test_a_pass_resumes_where_a_dead_worker_stopped(engine: Engine) -> None:
    names = ["a1", "a2", "a3", "a4", "a5", "a6"]
    await seed_accounts(engine, names)
    dead = False

    async def die(written: list[bytes]) -> None:
        nonlocal dead
        if dead or touches(written, "a5"):
            dead = True
            raise Crash()

    with pytest.raises(Crash):
        await run_maintenance(HookEngine(engine, die), keep=KEEP, clock=Clock(), holder="A",
                              account_batch=2)
    state = await transact(engine, get_maintenance_state)
    assert state.started == T0 and state.after == "a4"
    store = await dump(engine)
    assert [marker(a, i) in store for i, a in enumerate(names)] == [False] * 4 + [True] * 2

    # B waits for A's lease to expire, then carries on from the cursor
    clock = Clock(T0 + 30)
    assert not (await run_maintenance(engine, keep=KEEP, clock=clock, holder="B")).ran
    clock.now = T0 + 61
    result = await run_maintenance(engine, keep=KEEP, clock=clock, holder="B", account_batch=2)
    assert result.resumed and result.completed and result.accounts == 2
    store = await dump(engine)
    assert not any(marker(a, i) in store for i, a in enumerate(names))
    state = await transact(engine, get_maintenance_state)
    assert (state.started, state.last_started) == (None, T0)

    # the next pass starts from the first account again
    clock.now = T0 + 5000
    again = await run_maintenance(engine, keep=KEEP, clock=clock, holder="B", pass_interval=0)
    assert not again.resumed and again.accounts == 6


async def test_accounts_of_a_newer_layout_are_left_alone(engine: Engine) -> None:
    await seed_accounts(engine, ["a", "b", "c"])

    async def newer(tr: Transaction) -> None:
        tr.set(account_keys("b").meta, pack((99,)))

    await transact(engine, newer)
    result = await run_maintenance(engine, keep=KEEP, clock=Clock())
    assert result.completed and result.accounts == 2 and result.skipped_accounts == 1
    store = await dump(engine)
    assert [marker(a, i) in store for i, a in enumerate("abc")] == [False, True, False]


async def test_checkpoints_of_gone_accounts_are_forgotten(engine: Engine) -> None:
    await seed_accounts(engine, ["b", "d"])

    async def stale(tr: Transaction) -> None:
        for gone in ("a", "c", "e"):
            tr.set(CHECKPOINT.pack((gone, T0 - 5)), pack((3,)))

    await transact(engine, stale)
    await run_maintenance(engine, keep=KEEP, clock=Clock())
    store = await dump(engine)
    left = sorted({CHECKPOINT.unpack(k)[0] for k in store if CHECKPOINT.contains(k)})
    assert left == ["b", "d"]
    assert (await transact(engine, _layouts))["maintenance"] == LAYOUT


async def _layouts(tr: Transaction) -> dict[str, tuple[int, int]]:
    from fdb_layers.layout import get_layouts

    return await get_layouts(tr)


class TickingClock(Clock):
    """Each reading is 25 s after the last: the lease (60 s) needs renewing as work goes."""

    def __call__(self) -> float:
        self.now += 25.0
        return self.now


async def test_long_work_goes_in_batches_and_renews_the_lease(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.create_mailbox, ACCOUNT, "old", mailbox_id="old")
    for n in range(5):
        await append(engine, ACCOUNT, n, received_at=T0 - 1000, box="old")
    for n in range(5, 12):
        await append(engine, ACCOUNT, n, received_at=T0 - 1000)
    await transact(engine, mailboxes.delete_mailbox, ACCOUNT, "old")
    await seed_accounts(engine, ["b", "c", "d"])
    result = await run_maintenance(engine, keep=KEEP, clock=TickingClock(), holder="me",
                                   account_batch=1, delivery_batch=2, cleanup_batch=2)
    assert result.completed and not result.lease_lost and result.accounts == 4
    if exact(engine):
        assert (result.deliveries, result.storages) == (12 + 3, 1)
    store = await dump(engine)
    assert not any(marker(ACCOUNT, n) in store for n in range(12))
    assert await transact(engine, list_pending) == []
    assert await transact(engine, get_maintenance_lease) is None


async def test_operation_markers_go_with_the_change_log(engine: Engine) -> None:
    await setup_for_markers(engine)
    keys = account_keys(ACCOUNT)

    async def markers(tr: Transaction) -> int:
        return len(await tr.get_range(*keys.op.range()))

    assert await transact(engine, markers) == 1
    assert await transact(engine, expire_markers, ACCOUNT, 1) == 0  # newer than the floor
    modseq = await transact(engine, get_modseq, ACCOUNT)
    # 1, or 0 when a lost reply ran it again
    assert await transact(engine, expire_markers, ACCOUNT, modseq + 1) in (0, 1)
    assert await transact(engine, markers) == 0


async def setup_for_markers(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, append_email, ACCOUNT, "inbox", new_email(1), delivery_id="d1")
    await transact(engine, expunge_messages, ACCOUNT, "inbox", uids=[1], only_deleted=False,
                   op_id="x1")
