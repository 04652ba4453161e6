"""The outbound queue (fdb_layers/queue/messages.py) on every engine: sqlite,
FoundationDB, and both under injected conflicts and unknown commit results.
Writes run twice where a retry after an unknown result could repeat them."""

from __future__ import annotations

import asyncio

import pytest

from fdb_layers.blobs.refs import list_unreferenced
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.queue import (
    DELAYED,
    DELIVERED,
    FAILED,
    PENDING,
    LeaseLost,
    MessageNotFound,
    Recipient,
    RecipientResult,
    RetrySettings,
    count_queue,
    delete_message,
    enqueue_message,
    expire_tombstones,
    get_message,
    lease_due,
    list_messages,
    record_attempt,
    renew_lease,
    retry_now,
    watch_queue,
)
from fdb_layers.queue.layout import MAX_ADDRESS, MAX_QUEUE_ID, MAX_RECIPIENTS, MAX_REPLY
from fdb_layers.queue.schedule import DAY, HOUR, MINUTE
from tests.fdb_layers.queue.helpers import BLOB, enqueue, envelope, refcount

LEASE = 60.0
OK = RecipientResult(DELIVERED, "250 2.0.0 ok")
LATER = RecipientResult(DELAYED, "451 4.3.0 try later")
NO = RecipientResult(FAILED, "550 5.1.1 no such user")


async def lease(engine: Engine, holder: str, now: float, limit: int = 10,
                seconds: float = LEASE) -> list[str]:
    """Lease twice under one holder (a re-run returns the same), return the queue ids."""
    first = await transact(engine, lease_due, now, holder, seconds, limit)
    again = await transact(engine, lease_due, now, holder, seconds, limit)
    assert [m.queue_id for m in again] == [m.queue_id for m in first]
    return [m.queue_id for m in first]


# --- enqueue -----------------------------------------------------------------------------


async def test_enqueue_keeps_the_envelope_and_is_a_no_op_when_repeated(engine: Engine) -> None:
    await enqueue(engine, "q1", envelope(3))
    assert not await transact(engine, enqueue_message, "q1", envelope(5))
    m = await transact(engine, get_message, "q1")
    assert m is not None
    assert (m.sender, m.envid, m.ret, m.blob_id, m.size, m.due_at) == (
        "alice@example.org", "ENV-1", "HDRS", BLOB, 1234, 100.0)
    assert [r.address for r in m.recipients] == [f"rcpt{i}@example.net" for i in range(3)]
    assert m.recipients[1].notify == ("FAILURE", "DELAY")
    assert m.recipients[1].orcpt == "rfc822;rcpt1@example.net"
    assert {r.state for r in m.recipients} == {PENDING}
    assert m.state == PENDING and m.holder == "" and m.attempts == 0
    assert await transact(engine, count_queue) == {
        "messages": 1, PENDING: 3, DELIVERED: 0, FAILED: 0, DELAYED: 0}
    assert await refcount(engine) == 1  # the blob GC keeps the body


@pytest.mark.parametrize("bad", [
    {"recipients": ()},
    {"recipients": tuple(Recipient(f"r{i}@example.net") for i in range(1001))},
    {"recipients": (Recipient("a@" + "b" * 511),)},
    {"sender": "a@" + "b" * 511},
    {"recipients": (Recipient(""),)},
    {"recipients": (Recipient("a@b", ("NEVER", "SUCCESS")),)},
    {"recipients": (Recipient("a@b", ("SOMETIMES",)),)},
    {"ret": "BODY"},
    {"envid": "x" * 101},
    {"blob_id": "not-a-blob"},
    {"size": -1},
])
async def test_a_bad_envelope_is_refused_and_nothing_is_queued(
        engine: Engine, bad: dict[str, object]) -> None:
    from dataclasses import replace
    with pytest.raises(ValueError):
        await transact(engine, enqueue_message, "q1", replace(envelope(), **bad))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await transact(engine, enqueue_message, "", envelope())
    assert await transact(engine, get_message, "q1") is None
    assert (await transact(engine, count_queue))["messages"] == 0


async def test_enqueue_wakes_a_watching_worker(engine: Engine) -> None:
    watch = await watch_queue(engine)
    await transact(engine, enqueue_message, "q1", envelope())
    await asyncio.wait_for(watch.wait(), 30)


# --- leases ------------------------------------------------------------------------------


async def test_only_due_messages_are_leased_oldest_first(engine: Engine) -> None:
    await enqueue(engine, "late", envelope(due_at=300.0))
    await enqueue(engine, "soon", envelope(due_at=200.0))
    await enqueue(engine, "now", envelope(due_at=100.0))
    assert await lease(engine, "w1", 50.0) == []
    assert await lease(engine, "w2", 200.0) == ["now", "soon"]
    assert await lease(engine, "w3", 200.0) == []  # held by w2
    m = await transact(engine, get_message, "now")
    assert m is not None and m.holder == "w2" and m.lease_expires == 200.0 + LEASE
    assert await lease(engine, "w4", 255.0) == []
    assert await lease(engine, "w6", 300.0, limit=1) == ["now"]  # its lease expired at 260
    assert await lease(engine, "w7", 300.0) == ["late", "soon"]


async def test_two_concurrent_leasers_never_get_the_same_message(engine: Engine) -> None:
    for i in range(12):
        await enqueue(engine, f"q{i:02}", envelope(1))
    holders = [f"w{i}" for i in range(4)]
    got = await asyncio.gather(*(
        transact(engine, lease_due, 500.0, h, LEASE, 5) for h in holders))
    ids = [m.queue_id for batch in got for m in batch]
    assert len(ids) == len(set(ids)) == 12
    for h, batch in zip(holders, got, strict=True):
        for m in batch:
            stored = await transact(engine, get_message, m.queue_id)
            assert stored is not None and stored.holder == h


async def test_an_expired_lease_hands_the_message_over_and_the_old_holder_is_refused(
        engine: Engine) -> None:
    await enqueue(engine, "q1")
    assert await lease(engine, "dead", 100.0) == ["q1"]
    assert await lease(engine, "other", 100.0 + LEASE - 1) == []
    assert await lease(engine, "other", 100.0 + LEASE) == ["q1"]
    with pytest.raises(LeaseLost):
        await transact(engine, record_attempt, "q1", "dead", {0: OK, 1: OK}, now=200.0)
    m = await transact(engine, get_message, "q1")
    assert m is not None and m.holder == "other" and m.attempts == 0
    assert {r.state for r in m.recipients} == {PENDING}


# --- attempts ----------------------------------------------------------------------------


async def test_delivered_to_all_removes_the_message_and_drops_its_blob_reference(
        engine: Engine) -> None:
    await enqueue(engine, "q1")
    await lease(engine, "w1", 100.0)
    for _ in range(2):  # a repeat returns the first outcome
        outcome = await transact(engine, record_attempt, "q1", "w1", {0: OK, 1: NO},
                                 now=110.0)
        assert outcome.removed and outcome.next_due_at is None
        assert (outcome.delivered, outcome.failed) == ((0,), (1,))
    assert await transact(engine, get_message, "q1") is None
    assert await refcount(engine) == 0
    assert [b for _, b in await transact(engine, list_unreferenced, 1e12)] == [BLOB]
    assert await transact(engine, count_queue) == {
        "messages": 0, PENDING: 0, DELIVERED: 0, FAILED: 0, DELAYED: 0}
    # the queue id is finished: queueing it again is a no-op until the tombstone expires
    await enqueue(engine, "q1")
    assert await transact(engine, get_message, "q1") is None
    assert await transact(engine, expire_tombstones, 111.0) in (0, 1)
    await enqueue(engine, "q1")
    assert await transact(engine, get_message, "q1") is not None


async def test_a_deferred_recipient_is_retried_on_the_schedule(engine: Engine) -> None:
    await enqueue(engine, "q1", envelope(3))
    await lease(engine, "w1", 100.0)
    for _ in range(2):
        outcome = await transact(engine, record_attempt, "q1", "w1",
                                 {0: OK, 1: LATER}, now=110.0)
        assert not outcome.removed and outcome.next_due_at == 110.0 + 2 * MINUTE
        assert (outcome.delivered, outcome.failed, outcome.delay_notice) == ((0,), (), ())
    m = await transact(engine, get_message, "q1")
    assert m is not None and m.state == DELAYED and m.holder == "" and m.attempts == 1
    assert [(r.state, r.reply, r.attempts) for r in m.recipients] == [
        (DELIVERED, OK.reply, 1), (DELAYED, LATER.reply, 1), (PENDING, "", 0)]
    assert await transact(engine, count_queue) == {
        "messages": 1, PENDING: 1, DELIVERED: 1, FAILED: 0, DELAYED: 1}
    assert await lease(engine, "w2", 110.0 + MINUTE) == []
    assert await lease(engine, "w2", 110.0 + 2 * MINUTE) == ["q1"]
    outcome = await transact(engine, record_attempt, "q1", "w2", {1: OK, 2: OK},
                             now=300.0)
    assert outcome.removed and outcome.delivered == (1, 2)
    assert await refcount(engine) == 0


async def test_an_explicit_next_due_time_wins_over_the_schedule(engine: Engine) -> None:
    await enqueue(engine, "q1")
    await lease(engine, "w1", 100.0)
    outcome = await transact(engine, record_attempt, "q1", "w1", {0: LATER}, 5000.0,
                             now=110.0)
    assert outcome.next_due_at == 5000.0


async def test_a_delay_notice_once_after_4_hours_and_a_bounce_after_5_days(
        engine: Engine) -> None:
    settings = RetrySettings()
    await enqueue(engine, "q1", envelope(2, due_at=0.0, created_at=0.0))
    await lease(engine, "w1", 0.0)
    await transact(engine, record_attempt, "q1", "w1", {0: LATER, 1: LATER}, now=10.0)
    await transact(engine, retry_now, "q1", 4 * HOUR)
    await lease(engine, "w2", 4 * HOUR)
    out = await transact(engine, record_attempt, "q1", "w2", {0: LATER, 1: OK},
                         now=4 * HOUR, settings=settings)
    assert out.delay_notice == (0,) and out.delivered == (1,)
    await transact(engine, retry_now, "q1", 5 * HOUR)
    await lease(engine, "w3", 5 * HOUR)
    out = await transact(engine, record_attempt, "q1", "w3", {0: LATER}, now=5 * HOUR)
    assert out.delay_notice == ()  # once
    await transact(engine, retry_now, "q1", 5 * DAY)
    await lease(engine, "w4", 5 * DAY)
    out = await transact(engine, record_attempt, "q1", "w4", {}, now=5 * DAY)
    assert out.removed and out.failed == (0,)
    assert await refcount(engine) == 0


async def test_record_attempt_refuses_unknown_recipients_and_states(engine: Engine) -> None:
    await enqueue(engine, "q1")
    await lease(engine, "w1", 100.0)
    with pytest.raises(ValueError):
        await transact(engine, record_attempt, "q1", "w1", {2: OK}, now=110.0)
    with pytest.raises(ValueError):
        await transact(engine, record_attempt, "q1", "w1",
                       {0: RecipientResult(PENDING, "")}, now=110.0)
    with pytest.raises(LeaseLost):
        await transact(engine, record_attempt, "absent", "w1", {0: OK}, now=110.0)
    m = await transact(engine, get_message, "q1")
    assert m is not None and m.holder == "w1"


# --- management --------------------------------------------------------------------------


async def test_list_by_state_with_a_cursor(engine: Engine) -> None:
    for i in range(5):
        await enqueue(engine, f"q{i}", envelope(1))
    await lease(engine, "w1", 100.0, limit=2)  # q0..q4 are all due at 100: q0, q1
    for qid in ("q0", "q1"):
        await transact(engine, record_attempt, qid, "w1", {0: LATER}, now=110.0)
    page = await transact(engine, list_messages, limit=3)
    assert [m.queue_id for m in page] == ["q0", "q1", "q2"]
    rest = await transact(engine, list_messages, limit=3, cursor="q2")
    assert [m.queue_id for m in rest] == ["q3", "q4"]
    delayed = await transact(engine, list_messages, state=DELAYED)
    assert [m.queue_id for m in delayed] == ["q0", "q1"]
    pending = await transact(engine, list_messages, state=PENDING)
    assert [m.queue_id for m in pending] == ["q2", "q3", "q4"]
    with pytest.raises(ValueError):
        await transact(engine, list_messages, state=DELIVERED)


async def test_retry_now_makes_a_message_due_unless_a_worker_holds_it(engine: Engine) -> None:
    await enqueue(engine, "q1", envelope(due_at=10_000.0))
    assert await lease(engine, "w1", 100.0) == []
    for _ in range(2):
        assert await transact(engine, retry_now, "q1", 100.0)
    assert await lease(engine, "w1", 100.0) == ["q1"]
    assert not await transact(engine, retry_now, "q1", 120.0)  # w1 holds it
    with pytest.raises(MessageNotFound):
        await transact(engine, retry_now, "absent", 100.0)


async def test_delete_drops_the_blob_reference_and_the_holder_loses_its_lease(
        engine: Engine) -> None:
    await enqueue(engine, "q1")
    await enqueue(engine, "q2")
    assert await refcount(engine) == 2
    await lease(engine, "w1", 100.0, limit=1)
    for _ in range(2):
        await transact(engine, delete_message, "q1", 120.0)
    assert await transact(engine, get_message, "q1") is None
    assert await refcount(engine) == 1
    with pytest.raises(LeaseLost):
        await transact(engine, record_attempt, "q1", "w1", {0: OK}, now=130.0)
    assert await lease(engine, "w2", 1000.0) == ["q2"]
    assert await transact(engine, count_queue) == {
        "messages": 1, PENDING: 2, DELIVERED: 0, FAILED: 0, DELAYED: 0}
    await enqueue(engine, "q1")  # deleted: not queued again
    assert await transact(engine, get_message, "q1") is None


# --- limits ------------------------------------------------------------------------------


async def test_a_thousand_recipients_fit_foundationdbs_limits(engine: Engine) -> None:
    await enqueue(engine, "big", envelope(1000))
    assert await lease(engine, "w1", 100.0) == ["big"]
    results = {i: (OK if i % 2 else RecipientResult(DELAYED, "451 " + "x" * 500))
               for i in range(1000)}
    out = await transact(engine, record_attempt, "big", "w1", results, now=110.0)
    assert len(out.delivered) == 500 and not out.removed
    assert await transact(engine, count_queue) == {
        "messages": 1, PENDING: 0, DELIVERED: 500, FAILED: 0, DELAYED: 500}
    await transact(engine, retry_now, "big", 200.0)
    await lease(engine, "w2", 200.0)
    out = await transact(engine, record_attempt, "big", "w2",
                         {i: NO for i in range(0, 1000, 2)}, now=210.0)
    assert out.removed and len(out.failed) == 500
    assert await refcount(engine) == 0


async def test_a_message_at_every_bound_fits_in_one_transaction(engine: Engine) -> None:
    from dataclasses import replace
    long = "x" * 400 + "@example.net"
    assert len(long) <= MAX_ADDRESS
    env = replace(envelope(), sender=long, envid="e" * 100, recipients=tuple(
        Recipient(f"{i:04}{long}"[:MAX_ADDRESS], ("SUCCESS", "FAILURE", "DELAY"),
                  f"rfc822;{i:04}{long}"[:MAX_ADDRESS])
        for i in range(MAX_RECIPIENTS)))
    await enqueue(engine, "q" * MAX_QUEUE_ID, env)
    assert await lease(engine, "w" * 200, 100.0) == ["q" * MAX_QUEUE_ID]
    reply = RecipientResult(DELAYED, "4" * 5000)  # kept up to MAX_REPLY characters
    out = await transact(engine, record_attempt, "q" * MAX_QUEUE_ID, "w" * 200,
                         dict.fromkeys(range(MAX_RECIPIENTS), reply), now=110.0)
    assert not out.removed
    m = await transact(engine, get_message, "q" * MAX_QUEUE_ID)
    assert m is not None and len(m.recipients) == MAX_RECIPIENTS
    assert {len(r.reply) for r in m.recipients} == {MAX_REPLY}


# --- lease renewal -------------------------------------------------------------------------


async def test_renewed_lease_is_not_taken_and_a_lost_one_is_not_renewed(engine: Engine) -> None:
    """Issue 14: a worker still delivering renews its lease: another worker does not
    lease the message when the first lease would have expired; once the attempt is
    recorded (or the lease taken over) renewal says False and changes nothing."""
    await enqueue(engine, "q1", envelope(1, due_at=100.0))
    assert await lease(engine, "w1", 100.0) == ["q1"]
    for _ in range(2):      # a re-run sets the same lease
        assert await transact(engine, renew_lease, "q1", "w1", 150.0, LEASE)
    assert await lease(engine, "w2", 100.0 + LEASE + 1) == []
    m = await transact(engine, get_message, "q1")
    assert m is not None and (m.holder, m.lease_expires, m.due_at) == ("w1", 210.0, 210.0)
    assert await lease(engine, "w3", 211.0) == ["q1"]     # expired: another takes it
    assert not await transact(engine, renew_lease, "q1", "w1", 212.0, LEASE)
    await transact(engine, record_attempt, "q1", "w3", {0: OK}, now=213.0)
    assert not await transact(engine, renew_lease, "q1", "w3", 214.0, LEASE)
    assert await transact(engine, get_message, "q1") is None
