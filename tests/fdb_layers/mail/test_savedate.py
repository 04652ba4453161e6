"""Save dates (RFC 8514 section 3: the moment a message was saved in its current mailbox):
set by every way into a mailbox (append, copy, move, Email/set mailboxIds), gone with the
message, none (None) for messages stored before layout 1.3.  Contract tests on every engine,
under fault injection; writes run twice."""

from __future__ import annotations

import time

from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.mail import accounts
from fdb_layers.mail.cleanup import run_cleanup
from fdb_layers.mail.layout import account_keys
from fdb_layers.mail.mailboxes import delete_mailbox, storage_of
from fdb_layers.mail.messages import (
    append_email,
    copy_messages,
    expunge_messages,
    move_messages,
    set_email_mailboxes,
)
from fdb_layers.mail.queries import get_save_dates, list_save_dates

from .fixtures import ACCOUNT, new_email, twice


async def _saved(engine: Engine, box: str, uids: list[int]) -> dict[int, float | None]:
    return await transact(engine, get_save_dates, ACCOUNT, box, uids)


async def test_append_copy_and_move_each_set_the_date_of_their_mailbox(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    before = time.time()
    got = await twice(engine, append_email, ACCOUNT, "inbox", new_email(1, received_at=1e9),
                      delivery_id="d1")
    await twice(engine, append_email, ACCOUNT, "inbox", new_email(2), delivery_id="d2")
    after_append = time.time()
    inbox = await _saved(engine, "inbox", [1, 2, 3])
    # the save date is when it was saved, not the (client-given) internal date
    assert all(before <= d <= after_append for d in (inbox[1], inbox[2]) if d is not None)
    assert inbox[1] is not None and inbox[2] is not None and inbox[3] is None

    assert await twice(engine, copy_messages, ACCOUNT, "inbox", [1], "archive") == [(1, 1)]
    archive = await _saved(engine, "archive", [1])
    assert archive[1] is not None and after_append <= archive[1] <= time.time()
    # the source keeps its own save date
    assert await _saved(engine, "inbox", [1]) == {1: inbox[1]}

    assert await twice(engine, move_messages, ACCOUNT, "inbox", [2], "trash",
                       op_id="m1") == [(2, 1)]
    trash = await _saved(engine, "trash", [1])
    assert trash[1] is not None and trash[1] >= after_append
    assert await _saved(engine, "inbox", [2]) == {2: None}   # gone with the message
    assert await transact(engine, list_save_dates, ACCOUNT, "inbox") == {1: inbox[1]}

    # JMAP Email/set mailboxIds adds it to a mailbox: saved there now
    await twice(engine, set_email_mailboxes, ACCOUNT, got.email_id, ["inbox", "junk"])
    junk = await transact(engine, list_save_dates, ACCOUNT, "junk")
    assert list(junk) == [1] and junk[1] >= after_append


async def test_expunge_and_mailbox_cleanup_remove_save_dates(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for n in range(3):
        await transact(engine, append_email, ACCOUNT, "archive", new_email(n),
                       delivery_id=f"d{n}")
    await twice(engine, expunge_messages, ACCOUNT, "archive", uids=[2], only_deleted=False,
                op_id="x1")
    assert sorted(await transact(engine, list_save_dates, ACCOUNT, "archive")) == [1, 3]
    storage = await transact(engine, lambda tr: storage_of(tr, account_keys(ACCOUNT),
                                                           "archive"))
    await transact(engine, delete_mailbox, ACCOUNT, "archive", op_id="del1")
    await run_cleanup(engine, account_id=ACCOUNT)

    async def left(tr: Transaction) -> int:
        keys = account_keys(ACCOUNT)
        return len(await tr.get_range(*keys.saved.range((storage,))))

    assert await transact(engine, left) == 0


async def test_messages_stored_before_save_dates_read_as_none(engine: Engine) -> None:
    """Layout 1.2 stores kept no save date: such a message reads back with None (IMAP
    FETCH SAVEDATE NIL, RFC 8514 section 4) and the rest of it reads as before."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for n in range(2):
        await transact(engine, append_email, ACCOUNT, "inbox", new_email(n),
                       delivery_id=f"d{n}")

    async def forget(tr: Transaction) -> None:   # as a 1.2 store has it
        keys = account_keys(ACCOUNT)
        tr.clear(keys.saved.pack((await storage_of(tr, keys, "inbox"), 1)))

    await transact(engine, forget)
    dates = await _saved(engine, "inbox", [1, 2])
    assert dates[1] is None and dates[2] is not None
    assert list(await transact(engine, list_save_dates, ACCOUNT, "inbox")) == [2]
    # and it still moves: saved in its new mailbox from then on
    await transact(engine, move_messages, ACCOUNT, "inbox", [1], "trash", op_id="m")
    assert (await _saved(engine, "trash", [1]))[1] is not None
