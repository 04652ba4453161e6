"""The per-account change log: modseqs, JMAP states and /changes.

Every layer call that changes an account takes one new *modseq* from the
account's counter (read and written inside the transaction, so concurrent
writers conflict and modseqs are strictly increasing per account).  The same
number is the IMAP MODSEQ of what the call touched (RFC 7162) and the JMAP state
(RFC 8620 section 5.2): a change made through one protocol is seen through the
other.  The log holds ``[kind, modseq, index] -> (id, op)`` per object kind
(Email, Mailbox, Thread).  A state string is ``"<modseq>"`` (everything up to
that modseq seen) or ``"<modseq>.<index>"`` (cut inside one modseq's entries,
when maxChanges stopped there).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.base import Transaction
from ..keys import decode_int, encode_int, unpack
from .errors import CannotCalculateChanges
from .layout import BARRIER, MODSEQ, AccountKeys, account_keys, pack

EMAIL = "Email"
MAILBOX = "Mailbox"
THREAD = "Thread"
KINDS = (EMAIL, MAILBOX, THREAD)

CREATED = "c"
UPDATED = "u"
DESTROYED = "d"
COUNTS = "n"  # Mailbox only: just the counts changed (JMAP updatedProperties)

MAILBOX_COUNT_PROPERTIES = ("totalEmails", "unreadEmails", "totalThreads", "unreadThreads")


class ChangeSet:
    """The changes of one layer call: takes the call's modseq on first use and
    numbers its log entries."""

    __slots__ = ("_tr", "_keys", "_modseq", "_index", "_recorded", "_noted")

    def __init__(self, tr: Transaction, keys: AccountKeys) -> None:
        self._tr = tr
        self._keys = keys
        self._modseq: int | None = None
        self._index = 0
        self._recorded: set[tuple[str, str, str]] = set()
        self._noted: set[int] = set()

    @property
    def allocated(self) -> int | None:
        """The modseq taken by this call, or None if it changed nothing."""
        return self._modseq

    async def modseq(self) -> int:
        if self._modseq is None:
            key = self._keys.count_key(MODSEQ)
            self._modseq = decode_int(await self._tr.get(key)) + 1
            self._tr.set(key, encode_int(self._modseq))
        return self._modseq

    def first_note(self, storage: int) -> bool:
        """True the first time a storage's counts change in this call."""
        if storage in self._noted:
            return False
        self._noted.add(storage)
        return True

    async def record(self, kind: str, object_id: str, op: str) -> None:
        """Log one change (a repeat of the same change in this call is dropped)."""
        if (kind, object_id, op) in self._recorded:
            return
        self._recorded.add((kind, object_id, op))
        modseq = await self.modseq()
        self._tr.set(self._keys.log.pack((kind, modseq, self._index)), pack((object_id, op)))
        self._index += 1


async def get_modseq(tr: Transaction, account_id: str) -> int:
    """The account's highest modseq (0 for an account that never changed)."""
    return decode_int(await tr.get(account_keys(account_id).count_key(MODSEQ)))


async def get_state(tr: Transaction, account_id: str) -> str:
    """The JMAP state string of the account (the same for every kind)."""
    return str(await get_modseq(tr, account_id))


def set_barrier(tr: Transaction, keys: AccountKeys, modseq: int) -> None:
    """Changes from a state before ``modseq`` can no longer be calculated (used
    when one operation changes more objects than the log can record)."""
    tr.max(keys.count_key(BARRIER), modseq)


async def get_change_floor(tr: Transaction, account_id: str) -> int:
    """The oldest modseq that changes (JMAP /changes, QRESYNC VANISHED) can be
    calculated from; older states get CannotCalculateChanges."""
    return decode_int(await tr.get(account_keys(account_id).count_key(BARRIER), snapshot=True))


async def compact_changes(tr: Transaction, account_id: str, before_modseq: int) -> int:
    """Forget the change log and the expunge tombstones older than
    ``before_modseq`` (a few clear_range operations, whatever their size); the
    new floor.  Clients with older states then resynchronise (JMAP
    cannotCalculateChanges; IMAP QRESYNC without VANISHED (EARLIER))."""
    keys = account_keys(account_id)
    before = min(before_modseq, decode_int(await tr.get(keys.count_key(MODSEQ))) + 1)
    if before <= 1:
        return await get_change_floor(tr, account_id)
    for kind in KINDS:
        tr.clear_range(keys.log.range((kind,))[0], keys.log.pack((kind, before)))
    for row in await tr.get_range(*keys.storage.range()):
        storage = int(keys.storage.unpack(row.key)[0])
        tr.clear_range(keys.vanished.range((storage,))[0], keys.vanished.pack((storage, before)))
    set_barrier(tr, keys, before - 1)
    return max(before - 1, await get_change_floor(tr, account_id))


@dataclass(frozen=True, slots=True)
class Changes:
    old_state: str
    new_state: str
    has_more_changes: bool
    created: tuple[str, ...]
    updated: tuple[str, ...]
    destroyed: tuple[str, ...]
    counts_only: bool  # Mailbox: every update changed only the counts


def _parse_state(state: str) -> tuple[int, int | None]:
    try:
        if "." in state:
            m, i = state.split(".", 1)
            return int(m), int(i)
        return int(state), None
    except ValueError:
        raise CannotCalculateChanges(f"unknown state {state!r}") from None


async def get_changes(
    tr: Transaction,
    account_id: str,
    kind: str,
    since_state: str,
    *,
    max_changes: int | None = None,
) -> Changes:
    """Objects of ``kind`` created, updated and destroyed since ``since_state``
    (RFC 8620 section 5.2): an object created and destroyed in the window is
    left out; created-then-updated is reported as created."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    if max_changes is not None and max_changes <= 0:
        raise ValueError("max_changes must be positive")
    keys = account_keys(account_id)
    since_modseq, since_index = _parse_state(since_state)
    current = decode_int(await tr.get(keys.count_key(MODSEQ)))
    barrier = decode_int(await tr.get(keys.count_key(BARRIER), snapshot=True))
    if since_modseq < 0 or since_modseq > current or since_modseq < barrier:
        raise CannotCalculateChanges(f"cannot calculate changes from state {since_state!r}")
    if since_index is None:
        begin = keys.log.pack((kind, since_modseq + 1))
    else:
        begin = keys.log.pack((kind, since_modseq, since_index + 1))
    end = keys.log.range((kind,))[1]
    limit = 0 if max_changes is None else max_changes + 1
    rows = await tr.get_range(begin, end, limit=limit)
    has_more = max_changes is not None and len(rows) > max_changes
    if has_more:
        rows = rows[:max_changes]

    first: dict[str, str] = {}
    last: dict[str, str] = {}
    only_counts: dict[str, bool] = {}
    for row in rows:
        object_id, op = unpack(row.value)
        oid, o = str(object_id), str(op)
        first.setdefault(oid, o)
        last[oid] = o
        only_counts[oid] = only_counts.get(oid, True) and o == COUNTS
    created: list[str] = []
    updated: list[str] = []
    destroyed: list[str] = []
    for oid, f in first.items():
        lo = last[oid]
        if f == CREATED:
            if lo != DESTROYED:
                created.append(oid)
        elif lo == DESTROYED:
            destroyed.append(oid)
        else:
            updated.append(oid)
    counts_only = bool(updated) and all(only_counts[oid] for oid in updated)

    if has_more:
        _, modseq, index = keys.log.unpack(rows[-1].key)
        new_state = f"{int(modseq)}.{int(index)}"
    else:
        new_state = str(current)
    return Changes(
        old_state=since_state,
        new_state=new_state,
        has_more_changes=has_more,
        created=tuple(created),
        updated=tuple(updated),
        destroyed=tuple(destroyed),
        counts_only=counts_only,
    )
