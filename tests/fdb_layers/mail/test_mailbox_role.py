"""set_role (JMAP Mailbox/set update of ``role``, RFC 8621 section 2): a role moves between
mailboxes but is held by one at most; the inbox role stays with INBOX.  Every engine;
writes run twice."""

from __future__ import annotations

import pytest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mail import accounts, changes, mailboxes
from fdb_layers.mail.errors import RoleExists

from .fixtures import ACCOUNT, twice


async def test_role_moves_and_stays_unique(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    box = await twice(engine, mailboxes.create_mailbox, ACCOUNT, "Old", mailbox_id="o1")
    archive = await transact(engine, mailboxes.find_role, ACCOUNT, "archive")
    assert archive is not None
    with pytest.raises(RoleExists):
        await transact(engine, mailboxes.set_role, ACCOUNT, box.id, "archive")
    before = await transact(engine, changes.get_state, ACCOUNT)
    await twice(engine, mailboxes.set_role, ACCOUNT, archive, None)
    assert await transact(engine, mailboxes.find_role, ACCOUNT, "archive") is None
    moved = await twice(engine, mailboxes.set_role, ACCOUNT, box.id, "archive")
    assert moved.role == "archive"
    assert await transact(engine, mailboxes.find_role, ACCOUNT, "archive") == box.id
    assert (await transact(engine, mailboxes.get_mailbox, ACCOUNT, archive)).role is None
    found = await transact(engine, changes.get_changes, ACCOUNT, changes.MAILBOX, before)
    assert {archive, box.id} <= set(found.updated)


async def test_inbox_role_stays_and_unknown_roles_are_refused(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    box = await transact(engine, mailboxes.create_mailbox, ACCOUNT, "X", mailbox_id="x1")
    for mailbox_id, role in (("inbox", None), ("inbox", "trash"), (box.id, "inbox"),
                             (box.id, "nonsense")):
        with pytest.raises(ValueError):
            await transact(engine, mailboxes.set_role, ACCOUNT, mailbox_id, role)
    assert await transact(engine, mailboxes.find_role, ACCOUNT, "inbox") == "inbox"


async def test_the_important_role_is_optional(engine: Engine) -> None:
    """RFC 8457's \\Important (JMAP "important"): no account gets a mailbox made with it,
    a mailbox may be given it (at creation or later), one mailbox at most."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    assert await transact(engine, mailboxes.find_role, ACCOUNT, "important") is None
    box = await twice(engine, mailboxes.create_mailbox, ACCOUNT, "Key", mailbox_id="k1",
                      role="important")
    assert box.role == "important"
    other = await transact(engine, mailboxes.create_mailbox, ACCOUNT, "Other",
                           mailbox_id="k2")
    with pytest.raises(RoleExists):
        await transact(engine, mailboxes.set_role, ACCOUNT, other.id, "important")
    await twice(engine, mailboxes.set_role, ACCOUNT, box.id, None)
    moved = await twice(engine, mailboxes.set_role, ACCOUNT, other.id, "important")
    assert moved.role == "important"
