"""Identity records and their change log (fdb_layers/identities.py), on every engine
(faults included)."""

from __future__ import annotations

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.identities import (
    Identity,
    destroy_identity,
    get_identity,
    get_identity_changes,
    get_identity_state,
    list_identities,
    set_identity,
)


async def test_identities_and_their_changes(engine: Engine) -> None:
    assert await transact(engine, get_identity_state, "acc") == 0
    one = Identity("i1", "a@example.com", "A", reply_to=(("Team", "t@example.com"),),
                   text_signature="sig")
    stored = await transact(engine, set_identity, "acc", one)
    assert stored.email == "a@example.com" and stored.reply_to == (("Team", "t@example.com"),)
    s1 = await transact(engine, get_identity_state, "acc")
    await transact(engine, set_identity, "acc", Identity("d1", "b@example.com"), existed=True)
    s2 = await transact(engine, get_identity_state, "acc")
    assert await transact(engine, get_identity, "acc", "i1") == Identity(
        "i1", "a@example.com", "A", (("Team", "t@example.com"),), None, "sig", "",
        stored.created, 0, "")
    assert await transact(engine, list_identities, "other") == []

    changes = await transact(engine, get_identity_changes, "acc", 0)
    assert changes is not None
    assert changes.created == ("i1",) and changes.updated == ("d1",)  # d1 existed before
    first = await transact(engine, get_identity_changes, "acc", 0, 1)
    assert first is not None and first.has_more and first.created == ("i1",)
    assert 0 < first.new_state < s2

    assert await transact(engine, destroy_identity, "acc", "i1", op_id="op1")
    assert not await transact(engine, destroy_identity, "acc", "i1", op_id="op2")
    assert [i.id for i in await transact(engine, list_identities, "acc")] == ["d1"]
    later = await transact(engine, get_identity_changes, "acc", s1)
    assert later is not None and later.destroyed == ("i1",) and later.updated == ("d1",)
    since_start = await transact(engine, get_identity_changes, "acc", 0)
    assert since_start is not None and since_start.destroyed == ()  # made and gone since
    assert since_start.created == ()
    assert await transact(engine, get_identity_changes, "acc", 10**6) is None
