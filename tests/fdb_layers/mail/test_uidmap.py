"""The compact UID map (fdb_layers.mail.uidmap) always equals the per-message index: after
appends, copies, moves, expunges in the middle and at the ends, chunk splits, and under
concurrent appends and expunges; on every engine (with fault injection: writes retried and
repeated)."""

from __future__ import annotations

import asyncio

import pytest

from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.mail import accounts, mailboxes, uidmap
from fdb_layers.mail.layout import account_keys
from fdb_layers.mail.messages import (
    append_email,
    copy_messages,
    expunge_messages,
    move_messages,
    store_keywords,
)
from fdb_layers.mail.queries import list_uids

from .fixtures import ACCOUNT, new_email


def _runs(uids: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for u in uids:
        if out and out[-1][1] + 1 == u:
            out[-1] = (out[-1][0], u)
        else:
            out.append((u, u))
    return out


async def _raw_runs(tr: Transaction, mailbox_id: str) -> list[tuple[int, int]]:
    """The map as stored (no fallback to the index)."""
    keys = account_keys(ACCOUNT)
    storage = await mailboxes.storage_of(tr, keys, mailbox_id)
    return await uidmap.read_uid_runs(tr, keys, storage)


async def _check(engine: Engine, mailbox_id: str) -> list[int]:
    uids = await transact(engine, list_uids, ACCOUNT, mailbox_id)
    assert await transact(engine, _raw_runs, mailbox_id) == _runs(uids)
    st = await transact(engine, mailboxes.get_status, ACCOUNT, mailbox_id)
    assert await transact(engine, uidmap.list_uid_runs, ACCOUNT, mailbox_id,
                          expected=st.messages) == _runs(uids)
    return uids


async def _append(engine: Engine, box: str, n: int) -> None:
    await transact(engine, append_email, ACCOUNT, box, new_email(n), delivery_id=f"d{n}")


async def _expunge(engine: Engine, box: str, uids: list[int], op: str) -> None:
    await transact(engine, expunge_messages, ACCOUNT, box, uids=uids, only_deleted=False,
                   op_id=op)


async def test_map_follows_appends_expunges_copies_and_moves(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uidmap, "RUNS_PER_CHUNK", 3)   # many chunks, and splits
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for n in range(1, 31):
        await _append(engine, "inbox", n)
    assert await _check(engine, "inbox") == list(range(1, 31))
    assert await transact(engine, _raw_runs, "inbox") == [(1, 30)]
    await _expunge(engine, "inbox", [u for u in range(2, 30, 3)], "x1")   # 10 holes
    await _expunge(engine, "inbox", [1, 30], "x2")                        # both ends
    uids = await _check(engine, "inbox")
    assert len(uids) == 18
    await transact(engine, copy_messages, ACCOUNT, "inbox", uids[:5], "archive")
    await transact(engine, move_messages, ACCOUNT, "inbox", uids[5:9], "archive", op_id="m1")
    await _check(engine, "inbox")
    assert await _check(engine, "archive") == list(range(1, 10))
    for n in range(31, 36):
        await _append(engine, "inbox", n)
    await _expunge(engine, "inbox", await transact(engine, list_uids, ACCOUNT, "inbox"), "x3")
    assert await _check(engine, "inbox") == []
    assert await transact(engine, _raw_runs, "inbox") == []


async def test_map_under_concurrent_appends_and_expunges(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for n in range(1, 21):
        await _append(engine, "inbox", n)
    await asyncio.gather(
        *(_append(engine, "inbox", n) for n in range(21, 31)),
        *(_expunge(engine, "inbox", [u], f"c{u}") for u in range(3, 20, 4)),
    )
    uids = await _check(engine, "inbox")
    assert len(uids) == 25


async def test_a_mailbox_without_the_map_reads_the_index(engine: Engine) -> None:
    """A mailbox written before the map existed: the counter does not match the map, so
    the runs come from the index."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for n in range(1, 6):
        await _append(engine, "inbox", n)

    async def forget(tr: Transaction) -> None:
        keys = account_keys(ACCOUNT)
        storage = await mailboxes.storage_of(tr, keys, "inbox")
        tr.clear_range(*keys.uid_runs.range((storage,)))

    await transact(engine, forget)
    assert await transact(engine, uidmap.list_uid_runs, ACCOUNT, "inbox", expected=5) == [(1, 5)]


async def test_keywords_in_use_follow_appends_stores_copies_and_expunges(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, append_email, ACCOUNT, "inbox", new_email(1, keywords=("$seen",)),
                   delivery_id="k1")
    await _append(engine, "inbox", 2)

    async def in_use(box: str) -> list[str]:
        return sorted(await transact(engine, uidmap.list_keywords_in_use, ACCOUNT, box))

    assert await in_use("inbox") == ["$seen"]
    await transact(engine, store_keywords, ACCOUNT, "inbox", [1, 2], add=["work"])
    assert await in_use("inbox") == ["$seen", "work"]
    await transact(engine, copy_messages, ACCOUNT, "inbox", [2], "archive")
    assert await in_use("archive") == ["work"]
    await transact(engine, store_keywords, ACCOUNT, "inbox", [1], remove=["$seen", "work"])
    assert await in_use("inbox") == ["work"]
    assert await in_use("archive") == ["work"]     # keywords are per email: 2 kept "work"
    await _expunge(engine, "inbox", [2], "k2")
    assert await in_use("inbox") == []
    assert await in_use("archive") == ["work"]
