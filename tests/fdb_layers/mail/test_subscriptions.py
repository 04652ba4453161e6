"""Subscriptions by name (RFC 3501 section 6.3.6, RFC 9051 sections 6.3.7 and 6.3.8):
a name stays subscribed after its mailbox is deleted or renamed away, can be subscribed
before it exists, and a mailbox created at a subscribed name is subscribed.  A mailbox's
own subscription stays its JMAP ``isSubscribed`` (a Mailbox change).

Each test runs on every engine (tests/conftest.py), writes run twice."""

from __future__ import annotations

import pytest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mail import accounts, changes, mailboxes, subscriptions
from fdb_layers.mail.errors import InvalidMailboxName, TooManySubscriptions

from .fixtures import ACCOUNT, twice


async def subscribed(engine: Engine) -> tuple[set[str], set[str]]:
    """(paths of subscribed mailboxes, subscribed names without a mailbox)."""
    boxes = await transact(engine, mailboxes.list_mailboxes, ACCOUNT)
    orphans = await transact(engine, mailboxes.list_orphan_subscriptions, ACCOUNT)
    return {b.path for b in boxes if b.subscribed}, set(orphans)


async def make(engine: Engine, path: str, mailbox_id: str) -> mailboxes.Mailbox:
    return await twice(engine, mailboxes.create_mailbox_path, ACCOUNT, path,
                       mailbox_id=mailbox_id)


async def test_deleted_mailbox_name_stays_subscribed(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    box = await make(engine, "News", "n1")
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "News", True)
    await twice(engine, mailboxes.delete_mailbox, ACCOUNT, box.id)
    boxes, orphans = await subscribed(engine)
    assert "News" not in boxes and orphans == {"News"}
    # re-created: the mailbox carries the subscription again, the kept name goes
    again = await make(engine, "News", "n2")
    assert again.subscribed
    boxes, orphans = await subscribed(engine)
    assert "News" in boxes and orphans == set()


async def test_unsubscribed_mailbox_leaves_nothing_behind(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    box = await make(engine, "Plain", "p1")
    assert not box.subscribed
    await twice(engine, mailboxes.delete_mailbox, ACCOUNT, box.id)
    assert (await subscribed(engine))[1] == set()
    assert not (await make(engine, "Plain", "p2")).subscribed


async def test_subscribe_before_the_mailbox_exists(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "Later/Box/", True)
    assert (await subscribed(engine))[1] == {"Later/Box"}
    box = await make(engine, "Later/Box", "l1")
    assert box.subscribed
    parent = await transact(engine, mailboxes.find_mailbox, ACCOUNT, "Later")
    assert not parent.subscribed  # only the subscribed name, not its superior
    assert (await subscribed(engine))[1] == set()


async def test_unsubscribe_a_kept_name(engine: Engine) -> None:
    """Each change of a name without a mailbox moves the account's modseq (what wakes
    an IMAP NOTIFY watcher, RFC 5465 section 5.5); doing nothing moves nothing."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    start = await transact(engine, changes.get_modseq, ACCOUNT)
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "Gone", True)
    subscribed_at = await transact(engine, changes.get_modseq, ACCOUNT)
    assert subscribed_at > start
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "Gone", False)
    assert (await subscribed(engine))[1] == set()
    unsubscribed_at = await transact(engine, changes.get_modseq, ACCOUNT)
    assert unsubscribed_at > subscribed_at
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "Never", False)  # nothing to do
    assert (await subscribed(engine))[1] == set()
    assert await transact(engine, changes.get_modseq, ACCOUNT) == unsubscribed_at
    with pytest.raises(InvalidMailboxName):
        await transact(engine, mailboxes.subscribe_name, ACCOUNT, "a//b", True)


async def test_subscribe_existing_mailbox_is_a_mailbox_change(engine: Engine) -> None:
    """JMAP isSubscribed reads the same truth, and Mailbox/changes reports it."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    box = await make(engine, "Lists", "s1")
    before = await transact(engine, changes.get_state, ACCOUNT)
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "Lists", True)
    assert (await transact(engine, mailboxes.get_mailbox, ACCOUNT, box.id)).subscribed
    found = await transact(engine, changes.get_changes, ACCOUNT, changes.MAILBOX, before)
    assert box.id in found.updated
    assert (await subscribed(engine))[1] == set()


async def test_rename_keeps_old_names_subscribed(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await make(engine, "Old/Child", "c1")
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "Old", True)
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "Old/Child", True)
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "New/Child", True)
    old = await transact(engine, mailboxes.find_mailbox, ACCOUNT, "Old")
    await twice(engine, mailboxes.rename_mailbox_path, ACCOUNT, "Old", "New",
                new_mailbox_id="x1", source_id=old.id)
    boxes, orphans = await subscribed(engine)
    assert {"New", "New/Child"} <= boxes
    assert orphans == {"Old", "Old/Child"}


async def test_rename_onto_a_subscribed_name(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    box = await make(engine, "Draft2", "d1")
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "Target", True)
    await twice(engine, mailboxes.rename_mailbox, ACCOUNT, box.id, name="Target",
                parent_id=None)
    boxes, orphans = await subscribed(engine)
    assert "Target" in boxes and orphans == set()


async def test_rename_inbox_onto_a_subscribed_name(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "Saved", True)
    await twice(engine, mailboxes.subscribe_name, ACCOUNT, "INBOX", False)
    await twice(engine, mailboxes.rename_mailbox_path, ACCOUNT, "INBOX", "Saved",
                new_mailbox_id="sv")
    boxes, orphans = await subscribed(engine)
    assert "Saved" in boxes and "INBOX" not in boxes and orphans == set()


async def test_names_without_mailbox_are_bounded(engine: Engine, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    monkeypatch.setattr(subscriptions, "MAX_NAMES", 2)
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.subscribe_name, ACCOUNT, "a", True)
    await transact(engine, mailboxes.subscribe_name, ACCOUNT, "b", True)
    await transact(engine, mailboxes.subscribe_name, ACCOUNT, "b", True)  # already: fine
    with pytest.raises(TooManySubscriptions):
        await transact(engine, mailboxes.subscribe_name, ACCOUNT, "c", True)
    await transact(engine, mailboxes.subscribe_name, ACCOUNT, "INBOX", True)  # exists: fine
    assert (await subscribed(engine))[1] == {"a", "b"}
