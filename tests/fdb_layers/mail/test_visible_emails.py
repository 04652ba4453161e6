"""iter_visible_emails (every email JMAP shows, RFC 8621 section 4.1.1), on every engine:
each email once whatever its mailboxes, none whose every membership has $deleted, and the
same set whatever the page size."""

from __future__ import annotations

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mail import Transaction, accounts, iter_visible_emails
from fdb_layers.mail.keywords import DELETED
from fdb_layers.mail.mailboxes import create_mailbox_path
from fdb_layers.mail.messages import append_email, copy_messages, store_keywords

from .fixtures import ACCOUNT, new_email


async def _ids(engine: Engine, page: int) -> list[str]:
    async def run(tr: Transaction) -> list[str]:
        return [e.id async for e in iter_visible_emails(tr, ACCOUNT, page=page)]
    return await transact(engine, run)


async def test_each_visible_email_once_at_any_page_size(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, create_mailbox_path, ACCOUNT, "archive", mailbox_id="archive")
    made = [await transact(engine, append_email, ACCOUNT, "inbox", new_email(n),
                           delivery_id=f"d{n}") for n in range(1, 8)]
    # 1 and 2 are in both mailboxes; 3 is \Deleted in its only mailbox; 4 is \Deleted in
    # the inbox but also in the archive, so it stays visible
    await transact(engine, copy_messages, ACCOUNT, "inbox",
                   [made[0].uid, made[1].uid, made[3].uid], "archive")
    await transact(engine, store_keywords, ACCOUNT, "inbox", [made[2].uid, made[3].uid],
                   add=[DELETED])
    expected = {m.email_id for i, m in enumerate(made) if i != 2}
    for page in (1, 2, 3, 1024):
        ids = await _ids(engine, page)
        assert len(ids) == len(set(ids)), page
        assert set(ids) == expected, page


async def test_an_empty_account_has_none(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    assert await _ids(engine, 2) == []
