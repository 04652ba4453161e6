"""Push subscription records (fdb_layers/push.py), on every engine (faults included)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.push import (
    MAX_PER_OWNER,
    PushSubscription,
    TooManySubscriptions,
    create_subscription,
    delete_subscription,
    expire_done,
    get_pushed,
    get_subscription,
    get_version,
    list_all_subscriptions,
    list_subscriptions,
    set_pushed,
    update_subscription,
    verified,
    watch_subscriptions,
)


def _sub(sub_id: str, owner: str = "acc") -> PushSubscription:
    return PushSubscription(sub_id, owner, owner + "-name", "phone",
                            "https://push.example/x", "code-" + sub_id, expires=1e10,
                            types=("Email",))


async def test_subscriptions_belong_to_their_owner(engine: Engine) -> None:
    one, other = _sub("p1"), _sub("p2", owner="bob")
    v0 = await transact(engine, get_version)
    await transact(engine, create_subscription, one)
    await transact(engine, create_subscription, other)
    assert await transact(engine, get_version) > v0
    assert await transact(engine, list_subscriptions, "acc") == [one]
    assert await transact(engine, get_subscription, "acc", "p2") is None
    assert await transact(engine, get_subscription, "bob", "p2") == other
    assert {s.id for s in await transact(engine, list_all_subscriptions, limit=10)} == \
        {"p1", "p2"}

    assert verified(one, "wrong") == one
    checked = verified(one, "code-p1")
    assert checked.verified
    assert await transact(engine, update_subscription, checked)
    assert await transact(engine, get_subscription, "acc", "p1") == checked
    assert not await transact(engine, update_subscription, replace(checked, id="nope"))

    await transact(engine, set_pushed, "acc", "p1", "token")
    assert await transact(engine, get_pushed, "acc", "p1") == "token"
    await transact(engine, set_pushed, "acc", "gone", "token")  # no record: nothing kept
    assert await transact(engine, get_pushed, "acc", "gone") is None

    assert await transact(engine, delete_subscription, "acc", "p1", "op1", 100.0)
    assert await transact(engine, delete_subscription, "acc", "p1", "op1", 100.0)  # a retry
    assert not await transact(engine, delete_subscription, "acc", "p1", "op2", 100.0)
    assert await transact(engine, get_pushed, "acc", "p1") is None
    assert await transact(engine, list_subscriptions, "acc") == []
    await transact(engine, expire_done, 50.0)  # kept: a retry still finds it
    assert await transact(engine, delete_subscription, "acc", "p1", "op1", 100.0)
    await transact(engine, expire_done, 200.0)
    assert not await transact(engine, delete_subscription, "acc", "p1", "op1", 300.0)


async def test_an_owner_has_a_bounded_number(engine: Engine) -> None:
    for i in range(MAX_PER_OWNER):
        await transact(engine, create_subscription, _sub(f"p{i}"))
    with pytest.raises(TooManySubscriptions):
        await transact(engine, create_subscription, _sub("one-more"))
    await transact(engine, create_subscription, _sub("p0"))  # a retry of one stored
    await transact(engine, create_subscription, _sub("q", owner="other"))


async def test_a_write_fires_the_watch(engine: Engine) -> None:
    watch = await watch_subscriptions(engine)
    try:
        waiter = asyncio.ensure_future(watch.wait())
        await transact(engine, create_subscription, _sub("p1"))
        await asyncio.wait_for(waiter, 20)
    finally:
        watch.cancel()
