"""Committing index entries: several per transaction, one transaction per account at a time.

Every write to an account reads the account's modseq counter, so two
transactions on one account always conflict: run concurrently they would only
retry.  The writer therefore never has two transactions of one account in
flight on this node (other nodes are kept apart by the store's conflict
checks).  Entries of *different* accounts never conflict with each other, so
the writer puts whatever queued up meanwhile, of any accounts, into the next
transaction: under load a transaction carries many deliveries, and the fixed
cost of a transaction (its read snapshot, its commit, the store's conflict
check) is paid once for all of them.  At most :data:`IN_FLIGHT` transactions
run at once, so that one can be built while another is being made durable.

A transaction holds entries of at most :data:`MAX_ACCOUNTS` accounts: on
FoundationDB, with several nodes writing to the same accounts, a transaction
that touches many accounts conflicts more often, and a conflict re-runs all of
its entries.

An entry may come with an awaitable it depends on (the put of its blob): the
transaction runs the entry's reads and writes meanwhile and commits only once
that is done, so the index work overlaps the blob store's write and the index
still never refers to a blob that is not durable.  If it fails, the entry fails
with that error and the transaction is committed without it.

An entry is all or nothing, by construction: a transaction in which any entry
raised is never committed.  The failing entry fails with its error (a refusal
such as over quota or no such mailbox, or any other exception but the store's
own), and the transaction is run again without it -- so whatever that entry
wrote before it failed (an email in its first mailbox, when its second one is
gone) goes with the aborted transaction, and the other entries still share a
commit.  A refusal is rare (each costs the entries before it one more run, at
most :data:`MAX_ENTRIES` runs for a batch of refusals); the layer may raise it
at any point of an entry's writes.  A failure of the transaction itself (a
non-retryable store error at commit) makes the writer commit its entries one by
one, so that a bad entry fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from fdb_layers.mail import Engine, PartFailed, Transaction, run_part, transact

MAX_ENTRIES = 32  # per transaction
MAX_ACCOUNTS = 16  # per transaction
MAX_BYTES = 512 * 1024  # of entry payload (summaries) per transaction, well under 1 MB
IN_FLIGHT = 2  # transactions committing at once

Entry = Callable[[Transaction], Awaitable[object]]


@dataclass(eq=False)
class _Pending:
    account_id: str
    run: Entry
    size: int
    ready: asyncio.Future[object] | None = None
    future: asyncio.Future[object] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class AccountWriter:
    def __init__(self, engine: Engine, *, in_flight: int = IN_FLIGHT) -> None:
        self.engine = engine
        self.in_flight = max(1, in_flight)
        self._queue: list[_Pending] = []
        self._busy: set[str] = set()  # accounts with a transaction in flight
        self._tasks: set[asyncio.Task[None]] = set()

    async def commit(
        self,
        account_id: str,
        run: Entry,
        size: int = 0,
        *,
        ready: asyncio.Future[object] | None = None,
    ) -> object:
        """Run ``run(tr)`` in a committed transaction; its result.

        ``run`` must be a layer body of ``account_id`` (idempotent, no side
        effects).  If it raises (anything but the store's errors, which are the
        transaction's: :func:`~fdb_layers.mail.run_part`), this entry fails with
        that error and none of its writes is committed.  The transaction commits
        only after ``ready`` (if given) is done; if it fails, so does this entry,
        with its error.  A caller cancelled before its entry was taken withdraws
        it."""
        pending = _Pending(account_id, run, size, ready)
        self._queue.append(pending)
        self._start()
        try:
            return await asyncio.shield(pending.future)
        except asyncio.CancelledError:
            if pending in self._queue:
                self._queue.remove(pending)
            raise

    def _start(self) -> None:
        while len(self._tasks) < self.in_flight:
            batch = self._take()
            if not batch:
                return
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)

    def _take(self) -> list[_Pending]:
        """The next transaction's entries, in queue order; their accounts become busy."""
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        accounts: set[str] = set()
        waiting: set[str] = set()  # an entry stays queued: later ones of its account too
        size = 0
        for p in self._queue:
            a = p.account_id
            if (
                a not in self._busy
                and a not in waiting
                and len(batch) < MAX_ENTRIES
                and (a in accounts or len(accounts) < MAX_ACCOUNTS)
                and (not batch or size + p.size <= MAX_BYTES)
            ):
                batch.append(p)
                accounts.add(a)
                size += p.size
            else:
                rest.append(p)
                waiting.add(a)
        self._queue = rest
        self._busy |= accounts
        return batch

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            await self._commit_batch(batch)
        finally:
            for p in batch:  # only if cancelled (the loop is closing)
                if not p.future.done():
                    p.future.cancel()
            self._busy -= {p.account_id for p in batch}
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)
            self._start()

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        async def body(tr: Transaction) -> list[object]:
            out: list[object] = []
            for p in batch:
                try:
                    # the store's errors pass: the transaction's, retried or the batch's
                    out.append(await run_part(tr, p.run))
                except PartFailed as e:
                    # p may have written part of its work: this transaction must
                    # not commit (transact commits only a body that returns)
                    raise _Failed(p, e.error) from e.error
            waits = [p.ready for p in batch if p.ready is not None]
            if waits:
                await asyncio.wait(waits)
                failed = [p for p in batch if p.ready is not None
                          and (p.ready.cancelled() or p.ready.exception() is not None)]
                if failed:
                    raise _NotReady(failed)
            return out

        try:
            results = await transact(self.engine, body)
        except _Failed as e:
            e.entry.future.set_exception(e.error)
            rest = [p for p in batch if p is not e.entry]
            if rest:
                await self._commit_batch(rest)
            return
        except _NotReady as e:
            for p in e.entries:
                assert p.ready is not None
                if p.ready.cancelled():
                    p.future.cancel()
                else:
                    p.future.set_exception(p.ready.exception() or RuntimeError("not ready"))
            rest = [p for p in batch if p not in e.entries]
            if rest:
                await self._commit_batch(rest)
            return
        except Exception as e:
            if len(batch) == 1:
                batch[0].future.set_exception(e)
                return
            for p in batch:
                await self._commit_batch([p])
            return
        for p, r in zip(batch, results, strict=True):
            p.future.set_result(r)


class _NotReady(Exception):
    """Entries whose awaitable failed: the transaction must go without them."""

    def __init__(self, entries: Sequence[_Pending]) -> None:
        super().__init__(f"{len(entries)} entries not ready")
        self.entries = list(entries)


class _Failed(Exception):
    """One entry raised: the transaction goes without it (and without its writes)."""

    def __init__(self, entry: _Pending, error: Exception) -> None:
        super().__init__(f"entry of {entry.account_id} failed: {error!r}")
        self.entry = entry
        self.error = error
