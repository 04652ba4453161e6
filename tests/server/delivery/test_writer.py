"""The writer's batches: entries of several accounts share a transaction, and an
entry that fails after a partial write is rolled back with its transaction
(never half committed), while the others of its batch still commit."""

from __future__ import annotations

import asyncio
import functools

import pytest

from fdb_layers.blobs import refs as blobrefs

from fdb_layers.mail import accounts, mailboxes, quota
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.faults import FaultyEngine
from fdb_layers.engine.run import TRANSACTIONS, transact
from fdb_layers.mail.errors import MailboxNotFound
from fdb_layers.mail.queries import list_messages
from fdb_layers.mail.messages import append_email
from server.delivery.writer import AccountWriter
from tests.fdb_layers.mail.fixtures import blob_id, new_email



def entry(account: str, n: int, *, also_in: tuple[str, ...] = ()) -> functools.partial[object]:
    return functools.partial(append_email, account_id=account, mailbox_id="inbox",
                             email=new_email(n), delivery_id=f"d{n}", also_in=also_in)


async def test_request_failing_on_its_second_mailbox_is_rolled_back(engine: Engine) -> None:
    for account in ("a", "b", "c", "d"):
        await transact(engine, accounts.ensure_account, account)
    writer = AccountWriter(engine, in_flight=1)
    committed = TRANSACTIONS.labels(engine.name, "committed")
    before = committed._value.get()
    hold: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    first = asyncio.create_task(writer.commit("a", entry("a", 1), ready=hold))
    await asyncio.sleep(0.02)  # a's transaction is in flight, waiting for ``hold``
    # these three queue up and go into one transaction; c's second mailbox is gone
    b = asyncio.create_task(writer.commit("b", entry("b", 2)))
    c = asyncio.create_task(writer.commit("c", entry("c", 3, also_in=("nope",))))
    d = asyncio.create_task(writer.commit("d", entry("d", 4)))
    await asyncio.sleep(0.02)
    hold.set_result(None)
    await first
    assert (await b).created and (await d).created  # type: ignore[attr-defined]
    with pytest.raises(MailboxNotFound):
        await c
    transactions = committed._value.get() - before
    # nothing of c: no message in its inbox, no usage, no blob reference
    assert await transact(engine, list_messages, "c", "inbox") == []
    status = await transact(engine, mailboxes.get_status, "c", "inbox")
    assert (status.messages, status.size, status.uidnext) == (0, 0, 1)
    usage = await transact(engine, quota.get_usage, "c")
    assert (usage.bytes, usage.messages) == (0, 0)

    async def refs(tr: Transaction) -> int:
        return await blobrefs.get_blob_refcount(tr, blob_id(3))

    assert await transact(engine, refs) == 0
    for account in ("a", "b", "d"):
        assert len(await transact(engine, list_messages, account, "inbox")) == 1
    if not isinstance(engine, FaultyEngine):  # (faults make the writer split batches)
        assert transactions == 2  # a's, then b and d together


async def test_an_entry_that_raises_fails_alone(engine: Engine) -> None:
    writer = AccountWriter(engine, in_flight=1)
    hold: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def broken(tr: Transaction) -> object:
        await append_email(tr, "x", "inbox", new_email(5), delivery_id="d5")
        raise RuntimeError("a bug after a write")

    await transact(engine, accounts.ensure_account, "x")
    await transact(engine, accounts.ensure_account, "y")
    first = asyncio.create_task(writer.commit("y", entry("y", 6), ready=hold))
    await asyncio.sleep(0.02)
    bad = asyncio.create_task(writer.commit("x", broken))
    good = asyncio.create_task(writer.commit("y", entry("y", 7)))
    await asyncio.sleep(0.02)
    hold.set_result(None)
    await first
    with pytest.raises(RuntimeError):
        await bad
    await good
    assert await transact(engine, list_messages, "x", "inbox") == []
    assert len(await transact(engine, list_messages, "y", "inbox")) == 2
