"""Appending one email to several mailboxes at once (JMAP Email/import mailboxIds),
and the per-mailbox UIDVALIDITY, UID and modseq an append reports (IMAP APPENDUID):
the same on a repeat of the delivery id as on its first run."""

from __future__ import annotations

import pytest

from fdb_layers.mail import accounts, mailboxes
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mail.errors import MailboxNotFound
from fdb_layers.mail.layout import DeliveryRecord
from fdb_layers.mail.queries import get_email
from fdb_layers.mail.messages import Placement, append_email, deliver_email

from .fixtures import ACCOUNT, dump, new_email, twice



async def test_append_to_several_mailboxes(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.create_mailbox_path, ACCOUNT, "work", mailbox_id="work")
    await transact(engine, append_email, ACCOUNT, "work", new_email(0), delivery_id="d0")
    got = await twice(engine, append_email, ACCOUNT, "inbox", new_email(1), delivery_id="d1",
                      also_in=["work", "inbox", "work"])  # repeats are one mailbox each
    inbox = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    work = await transact(engine, mailboxes.get_status, ACCOUNT, "work")
    assert got.placements == (
        Placement("inbox", inbox.uidvalidity, 1, got.modseq),
        Placement("work", work.uidvalidity, 2, got.modseq),
    )
    assert (inbox.messages, work.messages) == (1, 2)
    assert inbox.highestmodseq == work.highestmodseq == got.modseq
    email = await transact(engine, get_email, ACCOUNT, got.email_id)
    assert email is not None and email.mailboxes == {"inbox": 1, "work": 2}
    # a retry (e.g. after commit_unknown_result) returns the first run's values
    again = await transact(engine, append_email, ACCOUNT, "inbox", new_email(1),
                           delivery_id="d1", also_in=["work"])
    assert not again.created and again.placements == got.placements
    same, _ = await transact(engine, deliver_email, ACCOUNT, new_email(1), delivery_id="d1",
                             mailbox_id="inbox", also_in=["work"])
    assert same.placements == got.placements and same.thread_id == got.thread_id


async def test_missing_second_mailbox_writes_nothing(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    before = await dump(engine)
    with pytest.raises(MailboxNotFound):
        await transact(engine, append_email, ACCOUNT, "inbox", new_email(1), delivery_id="d1",
                       also_in=["nope"])
    assert await dump(engine) == before


def test_delivery_record_of_one_mailbox_reads_back() -> None:
    # records written before deliveries to several mailboxes existed have six fields
    from fdb_layers.mail.layout import pack

    old = pack(("M1", "inbox", 7, 3, 9, "T1"))
    assert DeliveryRecord.decode(old) == DeliveryRecord("M1", "inbox", 7, 3, 9, "T1")
    assert DeliveryRecord.decode(old).encode() == old
    rec = DeliveryRecord("M1", "inbox", 7, 3, 9, "T1", (("work", 8, 4), ("x", 9, 1)))
    assert DeliveryRecord.decode(rec.encode()) == rec
