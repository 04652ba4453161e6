"""Committing index entries, one account at a time, several per transaction.

Every write to an account reads the account's modseq counter, so two
transactions on one account always conflict: run concurrently they would
only retry.  The writer keeps one transaction per account in flight on this
node (other nodes are kept apart by the store's conflict checks) and puts the
entries that queued up meanwhile into the next transaction together, so a busy
account takes many deliveries per commit instead of one.

A refusal of one entry (over quota, mailbox gone) is that entry's result and
does not stop the others: the layer raises those before writing anything.  Any
other failure of a shared transaction makes the writer commit its entries one
by one, so that a bad entry fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fdb_layers.engine.base import Engine, StoreError, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.mail_errors import MailError

MAX_ENTRIES = 64  # per transaction
MAX_BYTES = 512 * 1024  # of entry payload (summaries) per transaction, well under 1 MB

Entry = Callable[[Transaction], Awaitable[object]]


@dataclass
class _Pending:
    run: Entry
    size: int
    future: asyncio.Future[object] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class AccountWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queues: dict[str, list[_Pending]] = {}

    async def commit(self, account_id: str, run: Entry, size: int = 0) -> object:
        """Run ``run(tr)`` in a committed transaction of the account; its result.

        ``run`` must be a layer body (idempotent, no side effects) that raises
        :class:`MailError` before writing anything when it refuses."""
        pending = _Pending(run, size)
        queue = self._queues.get(account_id)
        if queue is not None:  # a transaction of this account is in flight
            queue.append(pending)
            return await pending.future
        self._queues[account_id] = queue = [pending]
        try:
            while queue:
                batch = _take(queue)
                await self._commit_batch(batch)
        finally:
            del self._queues[account_id]
            for left in queue:  # only if this task was cancelled
                if not left.future.done():
                    left.future.set_exception(StoreError("delivery writer cancelled"))
        return await pending.future

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        async def body(tr: Transaction) -> list[object]:
            out: list[object] = []
            for p in batch:
                try:
                    out.append(await p.run(tr))
                except MailError as e:
                    out.append(e)
            return out

        try:
            results = await transact(self.engine, body)
        except Exception as e:
            if len(batch) == 1:
                batch[0].future.set_exception(e)
                return
            for p in batch:
                await self._commit_batch([p])
            return
        for p, r in zip(batch, results, strict=True):
            if isinstance(r, BaseException):
                p.future.set_exception(r)
            else:
                p.future.set_result(r)


def _take(queue: list[_Pending]) -> list[_Pending]:
    batch: list[_Pending] = []
    size = 0
    while queue and len(batch) < MAX_ENTRIES:
        if batch and size + queue[0].size > MAX_BYTES:
            break
        p = queue.pop(0)
        batch.append(p)
        size += p.size
    return batch
