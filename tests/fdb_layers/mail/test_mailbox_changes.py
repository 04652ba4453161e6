"""The change log: modseqs, JMAP states, /changes with maxChanges, and the
cleaner that empties deleted mailboxes in resumable batches."""

from __future__ import annotations

import pytest

from fdb_layers.mail import accounts, changes, cleanup, mailboxes, quota
from fdb_layers.mail.changes import EMAIL, MAILBOX, THREAD, get_changes, get_state
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.mail.errors import CannotCalculateChanges, EmailExists
from fdb_layers.mail.queries import get_email, list_messages, list_vanished
from fdb_layers.mail.messages import (
    MAX_BATCH,
    append_email,
    copy_messages,
    destroy_email,
    expire_deliveries,
    expunge_messages,
    store_keywords,
)

from .fixtures import ACCOUNT, dump, new_email



async def append(engine: Engine, n: int, box: str = "inbox") -> str:
    got = await transact(engine, append_email, ACCOUNT, box, new_email(n), delivery_id=f"d{n}")
    return got.email_id


async def all_changes(engine: Engine, kind: str, state: str, page: int) -> tuple[
    set[str], set[str], set[str], str
]:
    created: set[str] = set()
    updated: set[str] = set()
    destroyed: set[str] = set()
    while True:
        c = await transact(engine, get_changes, ACCOUNT, kind, state, max_changes=page)
        assert len(c.created) + len(c.updated) + len(c.destroyed) <= page
        for i in c.created:
            created.add(i)
        for i in c.updated:
            if i not in created:
                updated.add(i)
        for i in c.destroyed:
            if i in created:
                created.discard(i)
            else:
                updated.discard(i)
                destroyed.add(i)
        state = c.new_state
        if not c.has_more_changes:
            return created, updated, destroyed, state


async def test_states_and_changes(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    s0 = await transact(engine, get_state, ACCOUNT)
    ids = [await append(engine, n) for n in range(5)]
    s1 = await transact(engine, get_state, ACCOUNT)
    assert int(s1) > int(s0)
    c = await transact(engine, get_changes, ACCOUNT, EMAIL, s0)
    assert set(c.created) == set(ids) and not c.updated and not c.destroyed
    assert c.new_state == s1 and not c.has_more_changes
    m = await transact(engine, get_changes, ACCOUNT, MAILBOX, s0)
    assert m.updated == ("inbox",) and m.counts_only
    await transact(engine, store_keywords, ACCOUNT, "inbox", [1], add=["$seen"])
    await transact(engine, destroy_email, ACCOUNT, ids[2], op_id=None)
    await transact(engine, mailboxes.create_mailbox, ACCOUNT, "x", mailbox_id="x")
    c = await transact(engine, get_changes, ACCOUNT, EMAIL, s1)
    assert (c.created, c.updated, c.destroyed) == ((), (ids[0],), (ids[2],))
    m = await transact(engine, get_changes, ACCOUNT, MAILBOX, s1)
    assert m.created == ("x",) and m.updated == ("inbox",) and m.counts_only
    t = await transact(engine, get_changes, ACCOUNT, THREAD, s1)
    assert t.destroyed == ("T" + ids[2],)
    # paging with maxChanges gives the same result as one call
    created, updated, destroyed, state = await all_changes(engine, EMAIL, s0, page=2)
    assert created == set(ids) - {ids[2]} and not updated and not destroyed
    assert state == await transact(engine, get_state, ACCOUNT)
    nothing = await transact(engine, get_changes, ACCOUNT, EMAIL, state)
    assert (nothing.created, nothing.updated, nothing.destroyed) == ((), (), ())


@pytest.mark.parametrize("state", ["x", "99999", "-1", "3.x"])
async def test_bad_states(engine: Engine, state: str) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    with pytest.raises(CannotCalculateChanges):
        await transact(engine, get_changes, ACCOUNT, EMAIL, state)


async def test_inbox_rename_is_a_barrier(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await append(engine, 1)
    s = await transact(engine, get_state, ACCOUNT)
    await transact(engine, mailboxes.rename_mailbox_path, ACCOUNT, "INBOX", "Old",
                   new_mailbox_id="old")
    with pytest.raises(CannotCalculateChanges):
        await transact(engine, get_changes, ACCOUNT, EMAIL, s)
    after = await transact(engine, get_state, ACCOUNT)
    await transact(engine, get_changes, ACCOUNT, EMAIL, after)


async def test_modseq_strictly_increases(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    seen = [await transact(engine, changes.get_modseq, ACCOUNT)]
    for n in range(4):
        await append(engine, n)
        seen.append(await transact(engine, changes.get_modseq, ACCOUNT))
    assert seen == sorted(set(seen))


async def test_delete_large_mailbox_in_batches(engine: Engine) -> None:
    """A deleted mailbox is detached at once and emptied by many small
    transactions; an email also in another mailbox survives."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.create_mailbox, ACCOUNT, "big", mailbox_id="big")
    ids = [await append(engine, n, "big") for n in range(23)]
    await transact(engine, copy_messages, ACCOUNT, "big", [1], "archive")
    s = await transact(engine, get_state, ACCOUNT)
    await transact(engine, mailboxes.delete_mailbox, ACCOUNT, "big")
    pending = await transact(engine, cleanup.list_pending)
    assert len(pending) == 1
    batches: list[int] = []
    done = await cleanup.run_cleanup(engine, batch=5, on_batch=lambda a, s: batches.append(s))
    assert done == 1 and len(batches) >= 2  # 4 without faults: a re-run body goes on
    assert await transact(engine, cleanup.list_pending) == []
    assert await transact(engine, get_email, ACCOUNT, ids[1]) is None
    survivor = await transact(engine, get_email, ACCOUNT, ids[0])
    assert survivor is not None and survivor.mailboxes == {"archive": 1}
    usage = await transact(engine, quota.get_usage, ACCOUNT)
    assert (usage.messages, usage.bytes) == (1, 1000)
    c = await transact(engine, get_changes, ACCOUNT, EMAIL, s)
    assert set(c.destroyed) == set(ids[1:]) and c.updated == (ids[0],)
    # nothing of the old storage is left
    storage_prefixes = [k for k in await dump(engine) if b"big" in k]
    assert all(b"mbox" in k for k in storage_prefixes)  # only the retired record
    # running the cleaner again does nothing
    assert await cleanup.run_cleanup(engine, batch=5) == 0


async def test_expunge_large_mailbox_in_batches(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for n in range(25):
        await append(engine, n)
    for first in range(1, 26, 10):
        await transact(engine, store_keywords, ACCOUNT, "inbox",
                       list(range(first, min(first + 10, 26))), add=["$deleted"])
    after, calls = 0, 0
    while True:
        res = await transact(engine, expunge_messages, ACCOUNT, "inbox", limit=4,
                             after_uid=after, op_id=None)
        calls += 1
        if res.resume_after is None:
            break
        after = res.resume_after
    assert calls >= 5
    assert await transact(engine, list_messages, ACCOUNT, "inbox") == []
    status = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    assert (status.messages, status.unseen, status.size, status.uidnext) == (0, 0, 0, 26)


async def test_compaction_sets_a_floor(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for n in range(4):
        await append(engine, n)
    await transact(engine, store_keywords, ACCOUNT, "inbox", [1, 2], add=["$deleted"])
    await transact(engine, expunge_messages, ACCOUNT, "inbox", op_id=None)
    old = await transact(engine, get_state, ACCOUNT)
    await transact(engine, store_keywords, ACCOUNT, "inbox", [3], add=["$deleted"])
    await transact(engine, expunge_messages, ACCOUNT, "inbox", op_id=None)
    cut = int(old) + 1
    floor = await transact(engine, changes.compact_changes, ACCOUNT, cut)
    assert floor == int(old) == await transact(engine, changes.get_change_floor, ACCOUNT)
    with pytest.raises(CannotCalculateChanges):
        await transact(engine, get_changes, ACCOUNT, EMAIL, str(int(old) - 1))
    with pytest.raises(CannotCalculateChanges):
        await transact(engine, list_vanished, ACCOUNT, "inbox", 0)
    c = await transact(engine, get_changes, ACCOUNT, EMAIL, old)
    assert len(c.destroyed) == 1
    assert await transact(engine, list_vanished, ACCOUNT, "inbox", int(old)) == [3]
    # compacting again with an older cut changes nothing
    assert await transact(engine, changes.compact_changes, ACCOUNT, 2) == floor


async def test_expired_delivery_marker_still_no_duplicate(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    e = new_email(1, received_at=1000.0)
    await transact(engine, append_email, ACCOUNT, "inbox", e, delivery_id="d")
    assert await transact(engine, expire_deliveries, ACCOUNT, 999.0) == 0
    await transact(engine, expire_deliveries, ACCOUNT, 1001.0)
    assert await transact(engine, expire_deliveries, ACCOUNT, 1001.0) == 0
    with pytest.raises(EmailExists):
        await transact(engine, append_email, ACCOUNT, "inbox", e, delivery_id="d")
    assert len(await transact(engine, list_messages, ACCOUNT, "inbox")) == 1


async def test_delivery_marker_of_old_mail_expires_by_delivery_time(engine: Engine) -> None:
    """An APPEND or import of old mail (received_at long ago) keeps its marker
    for the retention counted from the delivery, so a retry stays a no-op."""
    import dataclasses

    await transact(engine, accounts.ensure_account, ACCOUNT)
    e = dataclasses.replace(new_email(1, received_at=1000.0), delivered_at=50_000.0)
    first = await transact(engine, append_email, ACCOUNT, "inbox", e, delivery_id="old")
    assert await transact(engine, expire_deliveries, ACCOUNT, 40_000.0) == 0
    again = await transact(engine, append_email, ACCOUNT, "inbox", e, delivery_id="old")
    assert again.email_id == first.email_id and not again.created
    assert await transact(engine, expire_deliveries, ACCOUNT, 50_001.0) == 1


async def _fill(tr: Transaction, box: str, first: int, count: int) -> None:
    for n in range(first, first + count):
        await append_email(tr, ACCOUNT, box, new_email(n), delivery_id=f"f{n}")


def _diff(before: dict[bytes, bytes], after: dict[bytes, bytes]) -> tuple[int, int]:
    """(keys changed, bytes written) between two dumps."""
    changed = [k for k in before.keys() | after.keys() if before.get(k) != after.get(k)]
    return len(changed), sum(len(k) + len(after.get(k, b"")) for k in changed)


async def test_big_mailbox_operations_stay_small(engine: Engine) -> None:
    """Rename and delete touch a constant number of keys whatever the mailbox
    holds; a STORE on MAX_BATCH messages writes well under 1 MB."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.create_mailbox, ACCOUNT, "big", mailbox_id="big")
    for first in range(0, MAX_BATCH, 250):
        await transact(engine, _fill, "big", first, 250)
    before = await dump(engine)
    await transact(engine, mailboxes.rename_mailbox, ACCOUNT, "big", name="huge",
                   parent_id="archive")
    keys, _ = _diff(before, await dump(engine))
    assert keys <= 6
    before = await dump(engine)
    res = await transact(engine, store_keywords, ACCOUNT, "big", list(range(1, MAX_BATCH + 1)),
                         add=["$seen"])
    assert len(res.messages) == MAX_BATCH
    keys, written = _diff(before, await dump(engine))
    assert written < 1_000_000, written
    before = await dump(engine)
    await transact(engine, mailboxes.delete_mailbox, ACCOUNT, "big")
    keys, _ = _diff(before, await dump(engine))
    assert keys <= 10
