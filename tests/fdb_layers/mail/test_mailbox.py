"""Mailboxes: accounts, hierarchy, names, roles, rename, delete, status.

Contract tests: each runs on sqlite and on sqlite under fault injection, and
every write is run twice (the second run must change nothing)."""

from __future__ import annotations

import pytest

from fdb_layers.mail import accounts, mailboxes
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mail.errors import (
    InvalidMailboxName,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotDeletable,
    MailboxNotEmpty,
    MailboxNotFound,
    MailboxNotSelectable,
)
from fdb_layers.mail.queries import list_messages
from fdb_layers.mail.messages import append_email

from .fixtures import ACCOUNT, new_email, twice



async def paths(engine: Engine) -> dict[str, str]:
    return {m.path: m.id for m in await transact(engine, mailboxes.list_mailboxes, ACCOUNT)}


async def test_ensure_account_creates_roles_once(engine: Engine) -> None:
    await twice(engine, accounts.ensure_account, ACCOUNT)  # True, or False after a lost reply
    assert await transact(engine, accounts.ensure_account, ACCOUNT) is False
    boxes = await transact(engine, mailboxes.list_mailboxes, ACCOUNT)
    assert {m.role for m in boxes} == set(mailboxes.ROLES)
    assert {m.path for m in boxes} == {"INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive"}
    assert len({m.uidvalidity for m in boxes}) == 6
    assert await transact(engine, mailboxes.find_role, ACCOUNT, "inbox") == "inbox"
    status = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    assert (status.messages, status.unseen, status.size, status.uidnext) == (0, 0, 0, 1)


async def test_uidvalidity_seed(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT, uidvalidity_seed=1_700_000_000)
    inbox = await transact(engine, mailboxes.get_mailbox, ACCOUNT, "inbox")
    assert inbox.uidvalidity == 1_700_000_000


async def test_create_path_makes_superiors_and_is_idempotent(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    made = await twice(engine, mailboxes.create_mailbox_path, ACCOUNT, "a/b/c", mailbox_id="c")
    assert made.path == "a/b/c" and made.id == "c"
    p = await paths(engine)
    assert {"a", "a/b", "a/b/c"} <= p.keys()
    with pytest.raises(MailboxExists):
        await transact(engine, mailboxes.create_mailbox_path, ACCOUNT, "a/b", mailbox_id="x")
    with pytest.raises(MailboxExists):
        await transact(engine, mailboxes.create_mailbox_path, ACCOUNT, "inbox", mailbox_id="y")
    found = await transact(engine, mailboxes.find_mailbox, ACCOUNT, "a/b/c")
    assert found.id == "c" and found.parent_id == p["a/b"]
    assert (await transact(engine, mailboxes.find_mailbox, ACCOUNT, "iNbOx")).id == "inbox"


@pytest.mark.parametrize("name", ["", "a/b", "bad\x01", "x" * 256])
async def test_invalid_names(engine: Engine, name: str) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    with pytest.raises(InvalidMailboxName):
        await transact(engine, mailboxes.create_mailbox, ACCOUNT, name, mailbox_id="n")


async def test_create_under_parent_and_utf8(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await twice(engine, mailboxes.create_mailbox, ACCOUNT, "Projets", mailbox_id="p")
    child = await twice(
        engine, mailboxes.create_mailbox, ACCOUNT, "Été 🌞", mailbox_id="e", parent_id="p"
    )
    assert child.path == "Projets/Été 🌞"
    with pytest.raises(MailboxExists):
        await transact(engine, mailboxes.create_mailbox, ACCOUNT, "Été 🌞", mailbox_id="e2",
                       parent_id="p")
    with pytest.raises(MailboxNotFound):
        await transact(engine, mailboxes.create_mailbox, ACCOUNT, "x", mailbox_id="x",
                       parent_id="nope")


async def test_rename_moves_children_without_touching_messages(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.create_mailbox_path, ACCOUNT, "a/b", mailbox_id="b")
    await transact(engine, append_email, ACCOUNT, "b", new_email(1), delivery_id="d1")
    before = await transact(engine, mailboxes.get_status, ACCOUNT, "b")
    a = (await paths(engine))["a"]
    await twice(engine, mailboxes.rename_mailbox, ACCOUNT, a, name="z", parent_id="archive")
    assert {"Archive/z", "Archive/z/b"} <= (await paths(engine)).keys()
    assert await transact(engine, mailboxes.get_status, ACCOUNT, "b") == before
    with pytest.raises(InvalidMailboxName):  # below itself
        await transact(engine, mailboxes.rename_mailbox, ACCOUNT, a, name="z", parent_id="b")
    moved = await twice(engine, mailboxes.rename_mailbox_path, ACCOUNT, "Archive/z/b", "q/r/s",
                        new_mailbox_id="unused", source_id="b")
    assert moved.id == "b" and moved.path == "q/r/s"
    assert await transact(engine, mailboxes.get_status, ACCOUNT, "b") == before


async def test_rename_inbox_moves_its_messages(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for n in range(3):
        await transact(engine, append_email, ACCOUNT, "inbox", new_email(n), delivery_id=f"d{n}")
    old = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    moved = await twice(engine, mailboxes.rename_mailbox_path, ACCOUNT, "INBOX", "Old/Inbox",
                        new_mailbox_id="oldinbox")
    assert moved.path == "Old/Inbox" and moved.uidvalidity == old.uidvalidity
    status = await transact(engine, mailboxes.get_status, ACCOUNT, "oldinbox")
    assert status.messages == 3 and status.uidnext == old.uidnext
    inbox = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    assert inbox.messages == 0 and inbox.uidvalidity != old.uidvalidity
    assert await transact(engine, list_messages, ACCOUNT, "inbox") == []
    assert len(await transact(engine, list_messages, ACCOUNT, "oldinbox")) == 3


async def test_delete_rules(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    with pytest.raises(MailboxNotDeletable):
        await transact(engine, mailboxes.delete_mailbox, ACCOUNT, "inbox")
    await transact(engine, mailboxes.create_mailbox_path, ACCOUNT, "p/c", mailbox_id="c")
    p = (await paths(engine))["p"]
    await transact(engine, append_email, ACCOUNT, p, new_email(1), delivery_id="d1")
    with pytest.raises(MailboxHasChildren):  # JMAP: mailboxHasChild
        await transact(engine, mailboxes.delete_mailbox, ACCOUNT, p)
    with pytest.raises(MailboxNotEmpty):
        await transact(engine, mailboxes.delete_mailbox, ACCOUNT, p, keep_if_children=True,
                       allow_nonempty=False, op_id="del0")
    # IMAP (RFC 9051 section 6.3.5): emptied, kept as \Noselect
    await twice(engine, mailboxes.delete_mailbox, ACCOUNT, p, keep_if_children=True, op_id="del1")
    box = await transact(engine, mailboxes.get_mailbox, ACCOUNT, p)
    assert not box.selectable
    with pytest.raises(MailboxNotSelectable):
        await transact(engine, mailboxes.get_status, ACCOUNT, p)
    with pytest.raises(MailboxHasChildren):  # a new DELETE of the \Noselect mailbox
        await transact(engine, mailboxes.delete_mailbox, ACCOUNT, p, keep_if_children=True,
                       op_id="del2")
    await twice(engine, mailboxes.delete_mailbox, ACCOUNT, "c")
    assert "p/c" not in await paths(engine)
    with pytest.raises(MailboxNotFound):
        await transact(engine, mailboxes.get_mailbox, ACCOUNT, "c")
    await twice(engine, mailboxes.delete_mailbox, ACCOUNT, p)
    assert "p" not in await paths(engine)
    # the name is free again, with a new UIDVALIDITY; the old id stays retired
    again = await transact(engine, mailboxes.create_mailbox_path, ACCOUNT, "p/c", mailbox_id="c2")
    assert again.uidvalidity > box.uidvalidity
    with pytest.raises(MailboxExists):
        await transact(engine, mailboxes.create_mailbox, ACCOUNT, "n", mailbox_id="c")


async def test_role_mailbox_recreated(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.delete_mailbox, ACCOUNT, "junk")
    assert await transact(engine, mailboxes.find_role, ACCOUNT, "junk") is None
    new_id = await twice(engine, accounts.ensure_role_mailbox, ACCOUNT, "junk")
    box = await transact(engine, mailboxes.get_mailbox, ACCOUNT, new_id)
    assert box.role == "junk" and box.path == "Junk" and new_id != "junk"


async def test_subscriptions(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.create_mailbox, ACCOUNT, "x", mailbox_id="x")
    assert not (await transact(engine, mailboxes.get_mailbox, ACCOUNT, "x")).subscribed
    await twice(engine, mailboxes.set_subscribed, ACCOUNT, "x", True)
    assert (await transact(engine, mailboxes.get_mailbox, ACCOUNT, "x")).subscribed
