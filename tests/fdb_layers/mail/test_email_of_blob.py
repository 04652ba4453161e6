"""find_email_of_blob (which email of an account is a blob) and the refs layer's
list_blob_refs under it, on every engine: one account never finds another's blob."""

from __future__ import annotations

from fdb_layers.blobs.refs import list_blob_refs
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mail import accounts
from fdb_layers.mail.messages import append_email, destroy_email
from fdb_layers.mail.queries import find_email_of_blob

from .fixtures import ACCOUNT, blob_id, new_email

OTHER = "other-account"


async def test_an_account_finds_only_its_own_emails_blobs(engine: Engine) -> None:
    for account in (ACCOUNT, OTHER):
        await transact(engine, accounts.ensure_account, account)
    mine = await transact(engine, append_email, ACCOUNT, "inbox", new_email(1),
                          delivery_id="d1")
    theirs = await transact(engine, append_email, OTHER, "inbox", new_email(2),
                            delivery_id="d2")
    found = await transact(engine, find_email_of_blob, ACCOUNT, blob_id(1))
    assert found is not None and found.id == mine.email_id
    assert await transact(engine, find_email_of_blob, ACCOUNT, blob_id(2)) is None
    found = await transact(engine, find_email_of_blob, OTHER, blob_id(2))
    assert found is not None and found.id == theirs.email_id
    for bad in ("", "x" * 64, blob_id(1).upper(), blob_id(3)):
        assert await transact(engine, find_email_of_blob, ACCOUNT, bad) is None
    refs = await transact(engine, list_blob_refs, blob_id(1))
    assert refs == [f"mail/{ACCOUNT}/{mine.email_id}"]
    assert await transact(engine, list_blob_refs, blob_id(1), f"mail/{OTHER}/") == []
    await transact(engine, destroy_email, ACCOUNT, mine.email_id, op_id="x1")
    assert await transact(engine, find_email_of_blob, ACCOUNT, blob_id(1)) is None


async def test_a_prefix_is_not_a_neighbour(engine: Engine) -> None:
    """Account "a" must not see the references of account "ab"."""
    for account in ("a", "ab"):
        await transact(engine, accounts.ensure_account, account)
    await transact(engine, append_email, "ab", "inbox", new_email(5), delivery_id="d5")
    assert await transact(engine, find_email_of_blob, "a", blob_id(5)) is None
    assert await transact(engine, find_email_of_blob, "ab", blob_id(5)) is not None
