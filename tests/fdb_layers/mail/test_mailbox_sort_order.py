"""A mailbox's sort order (JMAP sortOrder, RFC 8621 section 2; layout 1.7): given at
creation or set later, kept in the mailbox record, logged as a mailbox update, in
[0, 2^31); a record of layout 1.6 (no sort order) reads as 0.  Every engine; writes
run twice."""

from __future__ import annotations

import pytest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.keys import unpack
from fdb_layers.mail import accounts, changes, mailboxes
from fdb_layers.mail.layout import MailboxRecord, pack

from .fixtures import ACCOUNT, twice


def test_a_record_without_a_sort_order_reads_as_zero() -> None:
    old = pack(("p", "Name", "", 7, True, False))  # as layout 1.6 wrote it
    assert MailboxRecord.decode(old).sort_order == 0
    assert MailboxRecord.decode(old).encode() == old
    new = MailboxRecord("p", "Name", "", 7, True, False, 12)
    assert MailboxRecord.decode(new.encode()) == new
    assert len(unpack(new.encode())) == 7


async def test_sort_order_is_kept_set_and_logged(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    box = await twice(engine, mailboxes.create_mailbox, ACCOUNT, "Ten", mailbox_id="t1",
                      sort_order=10)
    assert box.sort_order == 10
    plain = await transact(engine, mailboxes.create_mailbox, ACCOUNT, "Zero",
                           mailbox_id="z1")
    assert plain.sort_order == 0
    before = await transact(engine, changes.get_state, ACCOUNT)
    await twice(engine, mailboxes.set_sort_order, ACCOUNT, box.id, 3)
    assert (await transact(engine, mailboxes.get_mailbox, ACCOUNT, box.id)).sort_order == 3
    found = await transact(engine, changes.get_changes, ACCOUNT, changes.MAILBOX, before)
    assert set(found.updated) == {box.id}
    listed = {b.id: b.sort_order for b in
              await transact(engine, mailboxes.list_mailboxes, ACCOUNT)}
    assert listed[box.id] == 3 and listed[plain.id] == 0
    for bad in (-1, 2**31):
        with pytest.raises(ValueError):
            await transact(engine, mailboxes.set_sort_order, ACCOUNT, box.id, bad)
        with pytest.raises(ValueError):
            await transact(engine, mailboxes.create_mailbox, ACCOUNT, "Bad",
                           mailbox_id="b1", sort_order=bad)
