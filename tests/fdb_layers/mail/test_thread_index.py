"""The Message-ID index under destruction (issue 10 item 10): an email's entries go
with it, and a reply to a destroyed message joins a surviving thread that shares its
references instead of starting a new one."""

from __future__ import annotations

from fdb_layers.mail import accounts
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.mail.layout import account_keys, pack
from fdb_layers.mail.messages import append_email, destroy_email

from .fixtures import ACCOUNT, new_email


SUBJECT = "Plans"


async def deliver(engine: Engine, n: int, refs: tuple[str, ...] = ()) -> str:
    got = await transact(engine, append_email, ACCOUNT, "inbox",
                         new_email(n, subject=SUBJECT if not refs else "Re: " + SUBJECT,
                                   references=refs), delivery_id=f"d{n}")
    return got.thread_id


async def index(engine: Engine) -> list[tuple[str, ...]]:
    keys = account_keys(ACCOUNT)

    async def read(tr: Transaction) -> list[tuple[str, ...]]:
        rows = await tr.get_range(*keys.message_id.range())
        return [tuple(str(x) for x in keys.message_id.unpack(r.key)) for r in rows]

    return await transact(engine, read)


async def email_id(engine: Engine, n: int) -> str:
    return new_email(n).email_id


async def test_entries_go_with_the_email(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await deliver(engine, 1)
    await deliver(engine, 2, ("<m1@example.org>",))
    assert len(await index(engine)) == 3  # m1 by 1 and 2, m2 by 2
    await transact(engine, destroy_email, ACCOUNT, await email_id(engine, 2), op_id="x")
    assert await index(engine) == [("m1@example.org", await email_id(engine, 1))]
    await transact(engine, destroy_email, ACCOUNT, await email_id(engine, 1), op_id="y")
    assert await index(engine) == []


async def test_a_reply_to_a_destroyed_message_joins_the_surviving_thread(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    t1 = await deliver(engine, 1)
    await transact(engine, destroy_email, ACCOUNT, await email_id(engine, 1), op_id="x")
    # the first reply after the destruction starts a thread (nothing of it survives)...
    t3 = await deliver(engine, 3, ("<m1@example.org>",))
    assert t3 != t1
    # ...and the next reply to the same message joins it, not a third thread
    assert await deliver(engine, 4, ("<m1@example.org>",)) == t3


async def test_a_reply_finds_a_sibling_when_the_parent_is_gone(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    t1 = await deliver(engine, 1)
    assert await deliver(engine, 2, ("<m1@example.org>",)) == t1
    await transact(engine, destroy_email, ACCOUNT, await email_id(engine, 1), op_id="x")
    assert await deliver(engine, 3, ("<m1@example.org>",)) == t1  # 2 is still in t1


async def test_a_stale_entry_of_layout_1_0_is_replaced(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    keys = account_keys(ACCOUNT)

    async def legacy(tr: Transaction) -> None:  # [mid] -> a thread that is gone
        tr.set(keys.message_id.pack(("m1@example.org",)), pack(("Tgone",)))

    await transact(engine, legacy)
    t3 = await deliver(engine, 3, ("<m1@example.org>",))
    assert await deliver(engine, 4, ("<m1@example.org>",)) == t3
    assert ("m1@example.org",) not in await index(engine)
