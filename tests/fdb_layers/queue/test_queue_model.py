"""A state machine drives the queue with random operations (enqueue, the clock,
leases, attempts, retry, delete) and checks it against a small in-memory model,
on sqlite and on sqlite under injected conflicts and unknown commit results.

Checked after every step: each message's recipients, schedule and holder; the
counters by state equal a recount; the blob reference count equals the number
of queued messages (they share one body)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.queue import (
    DELAYED,
    DELIVERED,
    FAILED,
    PENDING,
    LeaseLost,
    RecipientResult,
    RetrySettings,
    count_queue,
    delete_message,
    enqueue_message,
    get_message,
    lease_due,
    list_messages,
    record_attempt,
    retry_now,
)
from fdb_layers.queue.schedule import HOUR, is_expired, needs_delay_notice, next_due_at
from tests.fdb_layers.mail.fixtures import open_engine
from tests.fdb_layers.queue.helpers import envelope, refcount

T = TypeVar("T")
SETTINGS = RetrySettings()
LEASE = 300.0
FINAL = (DELIVERED, FAILED)


@dataclass
class Msg:
    created: float
    due: float
    states: list[str]
    attempts: int = 0
    holder: str = ""
    expires: float = 0.0
    notified: tuple[bool, ...] = ()


class QueueModel(RuleBasedStateMachine):
    faults = False

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.mkdtemp()
        kind = "sqlite+faults" if self.faults else "sqlite"
        self.engine: Engine = self.run(open_engine(kind, f"{self.dir}/s.sqlite3", seed=5,
                                                   not_committed=0.05, unknown=0.3))
        self.now = 1000.0
        self.msgs: dict[str, Msg] = {}
        self.made = 0
        self.leases = 0

    def run(self, aw: Awaitable[T]) -> T:
        return self.loop.run_until_complete(aw)

    def tx(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self.run(transact(self.engine, fn, *args, **kwargs))

    def teardown(self) -> None:
        self.run(self.engine.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def pick(self, i: int) -> str | None:
        ids = sorted(self.msgs)
        return ids[i % len(ids)] if ids else None

    # --- rules ---------------------------------------------------------------------

    @rule(recipients=st.integers(1, 3), delay=st.sampled_from([0.0, 60.0, 600.0]))
    def enqueue(self, recipients: int, delay: float) -> None:
        self.made += 1
        qid = f"q{self.made:03}"
        env = envelope(recipients, created_at=self.now, due_at=self.now + delay)
        assert self.tx(enqueue_message, qid, env) in (True, False)  # False: a re-run
        self.msgs[qid] = Msg(self.now, self.now + delay, [PENDING] * recipients,
                             notified=(False,) * recipients)

    @rule(seconds=st.sampled_from([30.0, 200.0, 1000.0, 3 * HOUR, 2 * 86400.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule(limit=st.integers(1, 4))
    def lease(self, limit: int) -> None:
        self.leases += 1
        holder = f"w{self.leases}"
        due = sorted((m.due, q) for q, m in self.msgs.items() if m.due <= self.now)
        expected = sorted(q for _, q in due[:limit])
        got = self.tx(lease_due, self.now, holder, LEASE, limit)
        assert [m.queue_id for m in got] == expected
        for q in expected:
            m = self.msgs[q]
            m.holder, m.expires, m.due = holder, self.now + LEASE, self.now + LEASE

    @rule(i=st.integers(0, 50), outcomes=st.lists(
        st.sampled_from([None, DELIVERED, FAILED, DELAYED]), min_size=3, max_size=3))
    def attempt(self, i: int, outcomes: list[str | None]) -> None:
        qid = self.pick(i)
        if qid is None or not self.msgs[qid].holder:
            return
        m = self.msgs[qid]
        results = {n: RecipientResult(o, f"reply {o}") for n, o in enumerate(outcomes)
                   if o is not None and n < len(m.states)}
        out = self.tx(record_attempt, qid, m.holder, results, now=self.now)
        expired = is_expired(SETTINGS, m.created, self.now)
        late = needs_delay_notice(SETTINGS, m.created, self.now)
        notified = list(m.notified)
        failed, delivered, notice = [], [], []
        for n, state in enumerate(m.states):
            new = state
            if state not in FINAL and n in results:
                new = results[n].state
            if new not in FINAL and expired:
                new = FAILED
            if new == DELAYED and late and not notified[n]:
                notified[n] = True
                notice.append(n)
            if new != state and new == DELIVERED:
                delivered.append(n)
            if new != state and new == FAILED:
                failed.append(n)
            m.states[n] = new
        assert (out.delivered, out.failed) == (tuple(delivered), tuple(failed))
        if all(s in FINAL for s in m.states):
            assert out.removed
            del self.msgs[qid]
            return
        assert out.delay_notice == tuple(notice)
        m.attempts += 1
        m.notified = tuple(notified)
        m.holder, m.expires = "", 0.0
        due = next_due_at(SETTINGS, m.attempts, m.created, self.now)
        assert due is not None and out.next_due_at == due
        m.due = due

    @rule(i=st.integers(0, 50))
    def stale_attempt(self, i: int) -> None:
        """A holder whose lease was taken over is refused and changes nothing."""
        qid = self.pick(i)
        if qid is None:
            return
        try:
            self.tx(record_attempt, qid, "w0-never-held", {0: RecipientResult(DELIVERED, "")},
                    now=self.now)
        except LeaseLost:
            return
        raise AssertionError("a holder that never held the message recorded an attempt")

    @rule(i=st.integers(0, 50))
    def retry(self, i: int) -> None:
        qid = self.pick(i)
        if qid is None:
            return
        m = self.msgs[qid]
        held = bool(m.holder) and m.expires > self.now
        assert self.tx(retry_now, qid, self.now) == (not held)
        if not held:
            m.due, m.holder, m.expires = self.now, "", 0.0

    @rule(i=st.integers(0, 50))
    def delete(self, i: int) -> None:
        qid = self.pick(i)
        if qid is None:
            return
        self.tx(delete_message, qid, self.now)
        del self.msgs[qid]

    # --- invariants ----------------------------------------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        listed = self.tx(list_messages, limit=1000)
        assert [m.queue_id for m in listed] == sorted(self.msgs)
        for q, model in self.msgs.items():
            m = self.tx(get_message, q)
            assert m is not None
            assert [r.state for r in m.recipients] == model.states
            assert (m.due_at, m.attempts, m.holder) == (model.due, model.attempts, model.holder)
        counts = self.tx(count_queue)
        states = [s for m in self.msgs.values() for s in m.states]
        assert counts == {"messages": len(self.msgs),
                          **{s: states.count(s) for s in (PENDING, DELIVERED, FAILED, DELAYED)}}
        assert self.run(refcount(self.engine)) == len(self.msgs)


class QueueModelFaults(QueueModel):
    faults = True


def _settings() -> settings:
    return settings(max_examples=25, stateful_step_count=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


TestQueueModel = QueueModel.TestCase
TestQueueModel.settings = _settings()
TestQueueModelFaults = QueueModelFaults.TestCase
TestQueueModelFaults.settings = _settings()
