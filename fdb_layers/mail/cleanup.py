"""Emptying detached storages in resumable batches.

Deleting a mailbox (or making it \\Noselect, or renaming INBOX) only detaches
its storage: one small transaction, whatever the mailbox's size.  The storage
is then listed as pending, per account and across accounts; this module
removes its messages ``batch`` at a time, each batch its own transaction, and
each batch safe to run again or to stop after (it reads what is left).  An
email whose last membership goes is destroyed with its blob reference.  The
last batch clears the storage's indexes, counters and tombstones.
"""

from __future__ import annotations

from collections.abc import Callable

from .changes import ChangeSet
from .emails import remove_memberships
from ..engine.base import Engine, Transaction
from ..engine.run import transact
from .layout import PENDING_CLEANUP, MembershipRecord, account_keys

DEFAULT_BATCH = 500


async def list_pending(
    tr: Transaction, *, account_id: str | None = None, limit: int = 100
) -> list[tuple[str, int]]:
    """(account id, storage) pairs waiting to be emptied."""
    if account_id is None:
        begin, end = PENDING_CLEANUP.range()
    else:
        begin, end = PENDING_CLEANUP.range((account_id,))
    rows = await tr.get_range(begin, end, limit=limit)
    out: list[tuple[str, int]] = []
    for r in rows:
        account, storage = PENDING_CLEANUP.unpack(r.key)
        out.append((str(account), int(storage)))
    return out


async def clean_storage(
    tr: Transaction, account_id: str, storage: int, *, batch: int = DEFAULT_BATCH
) -> bool:
    """Remove up to ``batch`` messages of a detached storage; True once it is empty
    and forgotten.  Refuses (returns True, doing nothing) for a storage that is
    not pending, so a stale or repeated call cannot touch a live mailbox."""
    keys = account_keys(account_id)
    if await tr.get(keys.cleanup.pack((storage,))) is None:
        return True
    rows = await tr.get_range(*keys.uid.range((storage,)), limit=batch)
    victims = [(int(keys.uid.unpack(r.key)[1]), MembershipRecord.decode(r.value)) for r in rows]
    await remove_memberships(tr, keys, ChangeSet(tr, keys), storage, victims, tombstone=False)
    if len(rows) == batch:
        return False
    for space in (keys.uid, keys.uid_runs, keys.keyword_count, keys.uid_modseq, keys.vanished,
                  keys.deleted, keys.saved, keys.received):
        tr.clear_range(*space.range((storage,)))
    tr.clear_range(*keys.storage_counter.range((storage,)))
    tr.clear(keys.cleanup.pack((storage,)))
    tr.clear(PENDING_CLEANUP.pack((account_id, storage)))
    return True


async def run_cleanup(
    engine: Engine,
    *,
    account_id: str | None = None,
    batch: int = DEFAULT_BATCH,
    on_batch: Callable[[str, int], None] | None = None,
) -> int:
    """Empty every pending storage (of one account, or all); the number of
    storages emptied.  Each batch commits on its own; stopping at any point
    loses nothing, and the next run carries on."""
    done = 0
    while True:
        pending = await transact(engine, list_pending, account_id=account_id)
        if not pending:
            return done
        for account, storage in pending:
            while not await transact(engine, clean_storage, account, storage, batch=batch):
                if on_batch is not None:
                    on_batch(account, storage)
            done += 1
