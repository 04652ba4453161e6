"""The queue's operations: enqueue, lease what is due, record an attempt, and
the reads and writes of ``fdbmail queue list|show|retry|delete``.

Idempotence (every write may run again after ``commit_unknown_result``):

* :func:`enqueue_message` is named by the caller's queue id: a message that is
  queued, or was finished (a tombstone is kept, see :func:`expire_tombstones`),
  is not queued again;
* :func:`lease_due` is named by ``holder``, which the caller makes unique per
  call (``"<node>/<uuid>"``, made before the retry loop): a re-run returns the
  messages that this holder already leased, and takes no others;
* :func:`record_attempt` writes a marker ``[queue_id, holder]`` with its outcome
  in the same commit, and a repeat returns that outcome and changes nothing.

Leases are a compare-and-set through the store: a leaser reads the message's
record (a read conflict) and writes it with its holder and expiry, so of two
nodes leasing the same message one commits and the other retries and sees it
leased.  The lease moves the message's due entry to the lease's expiry: a
worker that dies leaves a message that comes due again when its lease expires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from ..blobs.refs import add_blob_ref, check_blob_id, remove_blob_ref
from ..engine.base import Engine, Transaction, Watch
from ..keys import decode_int, pack, strinc
from .errors import LeaseLost, MessageNotFound
from .layout import (
    ATTEMPT,
    DELAYED,
    DELIVERED,
    DONE,
    DONE_TIME,
    DUE,
    FAILED,
    FINAL,
    HELD,
    MAX_ADDRESS,
    MAX_HOLDER,
    MAX_QUEUE_ID,
    MAX_RECIPIENTS,
    MAX_REPLY,
    MESSAGE,
    MESSAGES,
    PENDING,
    RECIPIENT,
    STATES,
    WAKE,
    AttemptOutcome,
    Envelope,
    MessageRecord,
    QueuedMessage,
    RecipientResult,
    RecipientState,
    count_key,
)
from .schedule import RetrySettings, is_expired, needs_delay_notice
from .schedule import next_due_at as scheduled_due_at

_NOTIFY = frozenset({"NEVER", "SUCCESS", "FAILURE", "DELAY"})
_RET = frozenset({"", "FULL", "HDRS"})
MAX_ENVID = 100  # RFC 3461 section 4.4
_SCAN_BATCH = 100
DEFAULT_SETTINGS = RetrySettings()


# --- checks ------------------------------------------------------------------------
def _check_queue_id(queue_id: str) -> None:
    if not queue_id or len(queue_id) > MAX_QUEUE_ID:
        raise ValueError(f"a queue id of 1..{MAX_QUEUE_ID} characters is required")


def _check_holder(holder: str) -> None:
    if not holder or len(holder) > MAX_HOLDER:
        raise ValueError(f"a lease holder of 1..{MAX_HOLDER} characters is required")


def _check_envelope(envelope: Envelope) -> None:
    check_blob_id(envelope.blob_id)
    if len(envelope.sender) > MAX_ADDRESS:
        raise ValueError("the sender address is too long")
    if not 1 <= len(envelope.recipients) <= MAX_RECIPIENTS:
        raise ValueError(f"1..{MAX_RECIPIENTS} recipients are required")
    if envelope.size < 0:
        raise ValueError("the message size cannot be negative")
    if envelope.ret not in _RET:
        raise ValueError(f"RET must be FULL or HDRS, not {envelope.ret!r}")
    if len(envelope.envid) > MAX_ENVID:
        raise ValueError(f"ENVID is limited to {MAX_ENVID} characters")
    for r in envelope.recipients:
        if not r.address or len(r.address) > MAX_ADDRESS or len(r.orcpt) > MAX_ADDRESS:
            raise ValueError(f"a recipient address of 1..{MAX_ADDRESS} characters is required")
        if not set(r.notify) <= _NOTIFY or ("NEVER" in r.notify and len(r.notify) > 1):
            raise ValueError(f"NOTIFY is NEVER or some of SUCCESS, FAILURE, DELAY: {r.notify}")


# --- enqueue -------------------------------------------------------------------------
async def enqueue_message(tr: Transaction, queue_id: str, envelope: Envelope) -> bool:
    """Queue a message for delivery; False (and nothing changes) if this queue id
    is queued or was finished already.  Takes a reference to the message's blob
    (raises ``BlobBeingDeleted`` while the blob GC is deleting it: put it again)."""
    _check_queue_id(queue_id)
    _check_envelope(envelope)
    key = MESSAGE.pack((queue_id,))
    if await tr.get(key) is not None or await tr.get(DONE.pack((queue_id,))) is not None:
        return False
    await add_blob_ref(tr, envelope.blob_id, envelope.size, ref_id=_ref_id(queue_id))
    due = float(envelope.due_at)
    record = MessageRecord(
        envelope.sender, envelope.envid, envelope.ret, envelope.blob_id, envelope.size,
        float(envelope.created_at), due, 0, len(envelope.recipients), "", 0.0,
    )
    tr.set(key, record.encode())
    for index, r in enumerate(envelope.recipients):
        state = RecipientState(index, r.address, r.notify, r.orcpt, PENDING, "", 0, False)
        tr.set(RECIPIENT.pack((queue_id, index)), state.encode())
    tr.set(DUE.pack((due, queue_id)), b"")
    tr.add(count_key(MESSAGES), 1)
    tr.add(count_key(PENDING), len(envelope.recipients))
    tr.add(WAKE, 1)
    return True


def _ref_id(queue_id: str) -> str:
    return f"queue/{queue_id}"


# --- leases --------------------------------------------------------------------------
async def lease_due(
    tr: Transaction, now: float, holder: str, lease_seconds: float, limit: int
) -> list[QueuedMessage]:
    """Lease up to ``limit`` messages due at ``now`` (never leased, or whose lease
    expired) to ``holder`` for ``lease_seconds``; oldest due first.

    ``holder`` names this one call (unique, made before the retry loop): a re-run
    returns what the holder leased and leases nothing more."""
    _check_holder(holder)
    if lease_seconds <= 0 or limit <= 0:
        raise ValueError("lease_seconds and limit must be positive")
    held = await tr.get_range(*HELD.range((holder,)))
    if held:
        again = [await get_message(tr, str(HELD.unpack(kv.key)[1])) for kv in held]
        return [m for m in again if m is not None and m.holder == holder]
    now = float(now)
    begin = DUE.range()[0]
    rows = await tr.get_range(begin, strinc(DUE.pack((now,))), limit=limit, snapshot=True)
    out: list[QueuedMessage] = []
    expires = now + float(lease_seconds)
    for kv in rows:
        due, queue_id = DUE.unpack(kv.key)
        queue_id = str(queue_id)
        raw = await tr.get(MESSAGE.pack((queue_id,)))  # the compare of compare-and-set
        if raw is None:  # a stale entry (cannot happen; heal it)
            tr.clear(kv.key)
            continue
        record = MessageRecord.decode(raw)
        if record.due_at != float(due) or (record.holder and record.lease_expires > now):
            continue  # moved or leased since the snapshot read
        if record.holder:  # an expired lease: its holder lost it
            tr.clear(HELD.pack((record.holder, queue_id)))
        tr.clear(kv.key)
        tr.set(DUE.pack((expires, queue_id)), b"")
        tr.set(HELD.pack((holder, queue_id)), b"")
        record = replace(record, due_at=expires, holder=holder, lease_expires=expires)
        tr.set(MESSAGE.pack((queue_id,)), record.encode())
        out.append(_message(queue_id, record, await _recipients(tr, queue_id)))
    return sorted(out, key=lambda m: m.queue_id)


async def renew_lease(
    tr: Transaction, queue_id: str, holder: str, now: float, lease_seconds: float
) -> bool:
    """Extend ``holder``'s lease on a message it is still delivering to ``now +
    lease_seconds`` (its due entry moves with it); False if the lease is no longer
    the holder's (recorded, deleted, or expired and taken by another).  Running it
    again sets the same lease."""
    _check_queue_id(queue_id)
    _check_holder(holder)
    if lease_seconds <= 0:
        raise ValueError("lease_seconds must be positive")
    raw = await tr.get(MESSAGE.pack((queue_id,)))
    if raw is None:
        return False
    record = MessageRecord.decode(raw)
    if record.holder != holder:
        return False
    expires = float(now) + float(lease_seconds)
    tr.clear(DUE.pack((record.due_at, queue_id)))
    tr.set(DUE.pack((expires, queue_id)), b"")
    tr.set(MESSAGE.pack((queue_id,)),
           replace(record, due_at=expires, lease_expires=expires).encode())
    return True


# --- attempts ------------------------------------------------------------------------
async def record_attempt(
    tr: Transaction,
    queue_id: str,
    holder: str,
    results: Mapping[int, RecipientResult],
    next_due_at: float | None = None,
    *,
    now: float,
    settings: RetrySettings = DEFAULT_SETTINGS,
) -> AttemptOutcome:
    """Record what a delivery attempt did for some recipients (keyed by index) and
    give the lease up.  Recipients left without a final state are tried again at
    ``next_due_at`` (default: the retry schedule), or fail once the message has
    been queued ``settings.give_up_after``; when none is left the message leaves
    the queue and its blob reference is dropped.

    Raises :class:`LeaseLost` if ``holder`` no longer holds the message.  A repeat
    (after ``commit_unknown_result``) returns the first outcome and changes nothing."""
    _check_queue_id(queue_id)
    _check_holder(holder)
    marker = ATTEMPT.pack((queue_id, holder))
    raw_marker = await tr.get(marker)
    if raw_marker is not None:
        return AttemptOutcome.decode(raw_marker)
    raw = await tr.get(MESSAGE.pack((queue_id,)))
    if raw is None:
        raise LeaseLost(f"queued message {queue_id} is gone")
    record = MessageRecord.decode(raw)
    if record.holder != holder:
        raise LeaseLost(f"the lease on queued message {queue_id} was lost")
    recipients = await _recipients(tr, queue_id)
    for index, given in results.items():
        if not 0 <= index < len(recipients):
            raise ValueError(f"no recipient {index} in queued message {queue_id}")
        if given.state not in (DELIVERED, FAILED, DELAYED):
            raise ValueError(f"an attempt ends delivered, failed or delayed: {given.state!r}")
    now = float(now)
    expired = is_expired(settings, record.created_at, now)
    late = needs_delay_notice(settings, record.created_at, now)
    delivered: list[int] = []
    failed: list[int] = []
    delay_notice: list[int] = []
    updated: list[RecipientState] = []
    for r in recipients:
        new = r
        result = results.get(r.index)
        if r.state not in FINAL and result is not None:
            new = replace(r, state=result.state, reply=result.reply[:MAX_REPLY],
                                attempts=r.attempts + 1)
        if new.state not in FINAL and expired:
            new = replace(new, state=FAILED,
                                reply=new.reply or "gave up: not delivered in time")
        if new.state == DELAYED and late and not new.delay_notified:
            new = replace(new, delay_notified=True)
            delay_notice.append(r.index)
        if new.state != r.state:
            if new.state == DELIVERED:
                delivered.append(r.index)
            elif new.state == FAILED:
                failed.append(r.index)
            tr.add(count_key(r.state), -1)
            tr.add(count_key(new.state), 1)
        if new != r:
            tr.set(RECIPIENT.pack((queue_id, r.index)), new.encode())
        updated.append(new)
    tr.clear(DUE.pack((record.due_at, queue_id)))
    tr.clear(HELD.pack((holder, queue_id)))
    if all(r.state in FINAL for r in updated):
        await _remove(tr, queue_id, record, updated, now)
        outcome = AttemptOutcome(True, None, tuple(delivered), tuple(failed), ())
    else:
        attempts = record.attempts + 1
        due = scheduled_due_at(settings, attempts, record.created_at, now)
        if next_due_at is not None:
            due = float(next_due_at)
        assert due is not None  # not expired: a recipient is left
        tr.set(DUE.pack((due, queue_id)), b"")
        record = replace(record, due_at=due, attempts=attempts, holder="", lease_expires=0.0)
        tr.set(MESSAGE.pack((queue_id,)), record.encode())
        outcome = AttemptOutcome(False, due, tuple(delivered), tuple(failed),
                                 tuple(delay_notice))
    tr.set(marker, outcome.encode())
    return outcome


# --- reads ---------------------------------------------------------------------------
async def get_message(tr: Transaction, queue_id: str) -> QueuedMessage | None:
    """The queued message, or None (never queued, finished or deleted)."""
    _check_queue_id(queue_id)
    raw = await tr.get(MESSAGE.pack((queue_id,)))
    if raw is None:
        return None
    return _message(queue_id, MessageRecord.decode(raw), await _recipients(tr, queue_id))


async def list_messages(
    tr: Transaction, *, state: str | None = None, limit: int = 100, cursor: str = ""
) -> list[QueuedMessage]:
    """Up to ``limit`` queued messages after queue id ``cursor`` (the last one of the
    previous page), in queue id order; ``state`` PENDING or DELAYED filters them."""
    if state not in (None, PENDING, DELAYED):
        raise ValueError(f"a queued message is pending or delayed, not {state!r}")
    if limit <= 0:
        raise ValueError("limit must be positive")
    out: list[QueuedMessage] = []
    begin = MESSAGE.pack((cursor,)) + b"\x00" if cursor else MESSAGE.range()[0]
    end = MESSAGE.range()[1]
    while len(out) < limit:
        rows = await tr.get_range(begin, end, limit=_SCAN_BATCH)
        for kv in rows:
            queue_id = str(MESSAGE.unpack(kv.key)[0])
            m = _message(queue_id, MessageRecord.decode(kv.value),
                         await _recipients(tr, queue_id))
            if state is None or m.state == state:
                out.append(m)
                if len(out) == limit:
                    break
        if len(rows) < _SCAN_BATCH:
            break
        begin = rows[-1].key + b"\x00"
    return out


async def count_queue(tr: Transaction) -> dict[str, int]:
    """Messages in the queue and their recipients by state (atomic counters)."""
    names = (MESSAGES, *STATES)
    return {name: decode_int(await tr.get(count_key(name), snapshot=True)) for name in names}


async def watch_queue(engine: Engine) -> Watch:
    """A watch that fires at the next enqueue or retry (idle delivery workers)."""
    return await engine.watch(WAKE)


# --- management ----------------------------------------------------------------------
async def retry_now(tr: Transaction, queue_id: str, now: float) -> bool:
    """Make the message due at ``now``; False while a worker holds it (it is being
    tried already).  Raises :class:`MessageNotFound`."""
    _check_queue_id(queue_id)
    raw = await tr.get(MESSAGE.pack((queue_id,)))
    if raw is None:
        raise MessageNotFound(f"no queued message {queue_id}")
    record = MessageRecord.decode(raw)
    now = float(now)
    if record.holder and record.lease_expires > now:
        return False
    if record.holder:
        tr.clear(HELD.pack((record.holder, queue_id)))
    tr.clear(DUE.pack((record.due_at, queue_id)))
    tr.set(DUE.pack((now, queue_id)), b"")
    tr.set(MESSAGE.pack((queue_id,)),
           replace(record, due_at=now, holder="", lease_expires=0.0).encode())
    tr.add(WAKE, 1)
    return True


async def delete_message(tr: Transaction, queue_id: str, now: float) -> bool:
    """Take the message out of the queue undelivered and drop its blob reference;
    False if it is not queued.  A worker holding it then gets :class:`LeaseLost`."""
    _check_queue_id(queue_id)
    raw = await tr.get(MESSAGE.pack((queue_id,)))
    if raw is None:
        return False
    record = MessageRecord.decode(raw)
    if record.holder:
        tr.clear(HELD.pack((record.holder, queue_id)))
    tr.clear(DUE.pack((record.due_at, queue_id)))
    await _remove(tr, queue_id, record, await _recipients(tr, queue_id), float(now))
    return True


async def expire_tombstones(tr: Transaction, before: float, *, limit: int = 500) -> int:
    """Forget up to ``limit`` messages finished before ``before`` (their queue ids
    may then be queued again, and their attempt markers go); how many."""
    rows = await tr.get_range(DONE_TIME.range()[0], DONE_TIME.pack((float(before),)),
                              limit=limit)
    for kv in rows:
        _, queue_id = DONE_TIME.unpack(kv.key)
        tr.clear(kv.key)
        tr.clear(DONE.pack((queue_id,)))
        tr.clear_range(*ATTEMPT.range((queue_id,)))
    return len(rows)


# --- helpers -------------------------------------------------------------------------
async def _recipients(tr: Transaction, queue_id: str) -> list[RecipientState]:
    rows = await tr.get_range(*RECIPIENT.range((queue_id,)))
    return [RecipientState.decode(int(RECIPIENT.unpack(kv.key)[1]), kv.value) for kv in rows]


async def _remove(tr: Transaction, queue_id: str, record: MessageRecord,
                  recipients: Iterable[RecipientState], now: float) -> None:
    """Everything of a message but its due entry and lease index, which the caller
    clears; leaves a tombstone so the queue id is not queued again."""
    tr.clear(MESSAGE.pack((queue_id,)))
    tr.clear_range(*RECIPIENT.range((queue_id,)))
    tr.clear_range(*ATTEMPT.range((queue_id,)))
    for r in recipients:
        tr.add(count_key(r.state), -1)
    tr.add(count_key(MESSAGES), -1)
    await remove_blob_ref(tr, record.blob_id, ref_id=_ref_id(queue_id), now=now)
    tr.set(DONE.pack((queue_id,)), pack((now,)))
    tr.set(DONE_TIME.pack((now, queue_id)), b"")


def _message(queue_id: str, record: MessageRecord,
             recipients: list[RecipientState]) -> QueuedMessage:
    return QueuedMessage(
        queue_id, record.sender, record.envid, record.ret, record.blob_id, record.size,
        record.created_at, record.due_at, record.attempts, record.holder,
        record.lease_expires, tuple(recipients),
    )


