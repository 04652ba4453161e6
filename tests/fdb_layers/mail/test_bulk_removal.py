"""Removing many messages at once (EXPUNGE, emptying a deleted mailbox): each batch is
one transaction whose reads are made for the whole batch, and a run stopped between two
batches (a node killed) leaves every index, counter, blob reference, thread and the
change log consistent, each message either there or gone.

The batches are forced small (``limit``, ``batch``) so that one test crosses several
transactions; the checker reads the account's keys directly (the layer below the API)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from fdb_layers.blobs import refs as blobrefs
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.keys import decode_int
from fdb_layers.mail import accounts, changes, cleanup, mailboxes, uidmap
from fdb_layers.mail.changes import EMAIL, THREAD
from fdb_layers.mail.layout import (
    MODSEQ,
    S_HIGHEST_MODSEQ,
    S_MESSAGES,
    S_SIZE,
    S_UNSEEN,
    USAGE_BYTES,
    USAGE_MESSAGES,
    EmailRecord,
    MembershipRecord,
    account_keys,
    unpack_str,
)
from fdb_layers.mail.messages import (
    append_email,
    copy_messages,
    expunge_messages,
    store_keywords,
)
from fdb_layers.mail.queries import list_uids, list_vanished

from .fixtures import ACCOUNT, blob_id, new_email

KEYS = account_keys(ACCOUNT)


async def _rows(tr: Transaction, space: object, *prefix: object) -> list[tuple[tuple, bytes]]:
    rows = await tr.get_range(*space.range(prefix))  # type: ignore[attr-defined]
    return [(space.unpack(r.key), r.value) for r in rows]  # type: ignore[attr-defined]


async def _check(tr: Transaction) -> dict[int, set[int]]:
    """Assert that the account's indexes and counters agree; its UIDs per storage."""
    emails = {str(k[0]): EmailRecord.decode(v) for k, v in await _rows(tr, KEYS.email)}
    storages = [int(k[0]) for space in (KEYS.storage, KEYS.cleanup)   # attached, detached
                for k, _ in await _rows(tr, space)]
    top = decode_int(await tr.get(KEYS.count_key(MODSEQ)))
    out: dict[int, set[int]] = {}
    members_seen: set[tuple[str, int, int]] = set()
    for s in storages:
        live = {int(k[1]): MembershipRecord.decode(v) for k, v in await _rows(tr, KEYS.uid, s)}
        out[s] = set(live)

        async def counter(name: str, s: int = s) -> int:
            return decode_int(await tr.get(KEYS.storage_key(s, name)))

        assert await counter(S_MESSAGES) == len(live)
        assert await counter(S_SIZE) == sum(emails[m.email_id].size for m in live.values())
        assert await counter(S_UNSEEN) == sum("$seen" not in m.keywords for m in live.values())
        counts = Counter(k for m in live.values() for k in m.keywords)
        stored = {str(k[1]): decode_int(v) for k, v in await _rows(tr, KEYS.keyword_count, s)}
        assert {k: n for k, n in stored.items() if n} == dict(counts)
        runs = await uidmap.read_uid_runs(tr, KEYS, s)
        assert [u for a, b in runs for u in range(a, b + 1)] == sorted(live)
        assert {(int(k[1]), int(k[2])) for k, _ in await _rows(tr, KEYS.uid_modseq, s)} == {
            (m.modseq, u) for u, m in live.items()}
        assert {int(k[1]) for k, _ in await _rows(tr, KEYS.deleted, s)} == {
            u for u, m in live.items() if "$deleted" in m.keywords}
        assert {int(k[1]) for k, _ in await _rows(tr, KEYS.saved, s)} == set(live)
        assert {(int(k[1]), str(k[2])) for k, _ in await _rows(tr, KEYS.received, s)} == {
            (emails[m.email_id].received_us, m.email_id) for m in live.values()}
        vanished = await _rows(tr, KEYS.vanished, s)
        assert not {int(k[2]) for k, _ in vanished} & set(live)
        highest = await counter(S_HIGHEST_MODSEQ)
        assert all(int(k[1]) <= highest <= top for k, _ in vanished)
        for u, m in live.items():
            assert m.modseq <= highest
            assert (s, u, m.modseq) in emails[m.email_id].members
            members_seen.add((m.email_id, s, u))
    for email_id, rec in emails.items():
        assert {(email_id, s, u) for s, u, _ in rec.members} <= members_seen
        assert rec.members, email_id
    assert decode_int(await tr.get(KEYS.count_key(USAGE_MESSAGES))) == len(emails)
    assert decode_int(await tr.get(KEYS.count_key(USAGE_BYTES))) == sum(
        r.size for r in emails.values())
    for blob in {r.blob_id for r in emails.values()}:
        users = sorted(e for e, r in emails.items() if r.blob_id == blob)
        assert await blobrefs.get_blob_refcount(tr, blob) == len(users)
        assert [x.rsplit("/", 1)[1] for x in await blobrefs.list_blob_refs(tr, blob)] == users
    entries = {(str(k[0]), int(k[1]), str(k[2])): v
               for k, v in await _rows(tr, KEYS.thread_email)}
    assert set(entries) == {(r.thread_id, r.received_us, e) for e, r in emails.items()}
    threads = {str(k[0]) for k, _ in await _rows(tr, KEYS.thread)}
    assert threads == {t for t, _, _ in entries}
    for k, v in await _rows(tr, KEYS.message_id):
        assert len(k) == 2 and str(k[1]) in emails and unpack_str(v) in threads
    return out


async def _blob_count(tr: Transaction, n: int) -> int:
    return await blobrefs.get_blob_refcount(tr, blob_id(n))


async def _fill(engine: Engine, box: str = "inbox") -> list[str]:
    """12 messages in ``box``: threads of three, every other one \\Seen, #11 with #0's
    blob, #2 and #5 copied to Archive; all \\Deleted but #7."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    ids = []
    for i in range(12):
        root = i - i % 3
        email = new_email(i, subject="topic", message_id=f"<m{i}@x>",
                          references=(f"<m{root}@x>",) if i != root else (),
                          keywords=("$seen", "$flagged") if i % 2 else ())
        if i == 11:
            email = replace(email, blob_id=blob_id(0))
        got = await transact(engine, append_email, ACCOUNT, box, email, delivery_id=f"d{i}")
        ids.append(got.email_id)
    await transact(engine, copy_messages, ACCOUNT, box, [3, 6], "archive")
    await transact(engine, store_keywords, ACCOUNT, box,
                   [u for u in range(1, 13) if u != 8], add=["$deleted"])
    return ids


async def test_expunge_stopped_between_batches_is_consistent(engine: Engine) -> None:
    ids = await _fill(engine)
    start = await transact(engine, changes.get_state, ACCOUNT)
    inbox = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    storage = inbox.uidvalidity
    before = (await transact(engine, _check))[storage]
    assert before == set(range(1, 13))
    # batch by batch, each its own transaction; stopping after any of them (a node
    # killed) must leave a consistent account
    after, gone = 0, []
    for _ in range(2):
        res = await transact(engine, expunge_messages, ACCOUNT, "inbox", limit=4,
                             after_uid=after, op_id="x")
        assert res.resume_after is not None and len(res.uids) <= 4
        gone += res.uids
        after = res.resume_after
        live = (await transact(engine, _check))[storage]
        assert live == before - set(gone)   # each message either there or gone
        assert await transact(engine, list_vanished, ACCOUNT, "inbox",
                              inbox.highestmodseq) == sorted(gone)
    while after is not None:
        res = await transact(engine, expunge_messages, ACCOUNT, "inbox", limit=4,
                             after_uid=after, op_id="x")
        gone += res.uids
        after = res.resume_after
    assert sorted(gone) == [u for u in range(1, 13) if u != 8]
    assert (await transact(engine, _check))[storage] == {8}
    status = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    assert (status.messages, status.unseen, status.size) == (1, 0, 1000)
    assert status.highestmodseq > inbox.highestmodseq
    # #3 and #6 live on in Archive, #8 in INBOX, the rest are destroyed with their blob
    # references (#0's blob was #11's too: both gone, none left)
    email_changes = await transact(engine, changes.get_changes, ACCOUNT, EMAIL, start)
    kept = {ids[2], ids[5], ids[7]}
    assert set(email_changes.destroyed) == set(ids) - kept
    assert set(email_changes.updated) == {ids[2], ids[5]}
    assert await transact(engine, _blob_count, 0) == 0
    assert await transact(engine, _blob_count, 2) == 1
    thread_changes = await transact(engine, changes.get_changes, ACCOUNT, THREAD, start)
    # threads (0,1,2) and (3,4,5) keep one email in Archive, (6,7,8) keeps #8 in INBOX
    assert set(thread_changes.destroyed) == {f"T{ids[9]}"}
    assert set(thread_changes.updated) == {f"T{ids[0]}", f"T{ids[3]}", f"T{ids[6]}"}


async def test_cleanup_of_a_deleted_mailbox_stopped_between_batches(engine: Engine) -> None:
    ids = await _fill(engine, "trash")
    start = await transact(engine, changes.get_state, ACCOUNT)
    await transact(engine, mailboxes.delete_mailbox, ACCOUNT, "trash")
    pending = await transact(engine, cleanup.list_pending, account_id=ACCOUNT)
    assert len(pending) == 1
    storage = pending[0][1]
    assert not await transact(engine, cleanup.clean_storage, ACCOUNT, storage, batch=5)
    assert (await transact(engine, _check))[storage] == set(range(6, 13))
    while not await transact(engine, cleanup.clean_storage, ACCOUNT, storage, batch=5):
        await transact(engine, _check)
    live = await transact(engine, _check)
    assert storage not in live
    assert await transact(engine, _blob_count, 0) == 0
    assert await transact(engine, _blob_count, 2) == 1   # #2 in Archive
    assert len(await transact(engine, list_uids, ACCOUNT, "archive")) == 2
    email_changes = await transact(engine, changes.get_changes, ACCOUNT, EMAIL, start)
    assert set(email_changes.destroyed) == set(ids) - {ids[2], ids[5]}
    assert set(email_changes.updated) == {ids[2], ids[5]}


async def test_expunge_of_scattered_uids_splits_the_uid_map(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every other UID out in one batch: one chunk of runs becomes many runs, cut into
    chunks of at most RUNS_PER_CHUNK (forced to 4 here)."""
    monkeypatch.setattr(uidmap, "RUNS_PER_CHUNK", 4)
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for i in range(30):
        await transact(engine, append_email, ACCOUNT, "inbox", new_email(i), delivery_id=f"d{i}")
    odd = list(range(1, 31, 2))
    res = await transact(engine, expunge_messages, ACCOUNT, "inbox", uids=odd,
                         only_deleted=False, op_id="odd")
    assert res.uids == tuple(odd)
    storage = (await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")).uidvalidity

    async def chunks(tr: Transaction) -> list[tuple[int, int]]:
        return [(int(k[1]), len(uidmap._decode(v)))
                for k, v in await _rows(tr, KEYS.uid_runs, storage)]

    got = await transact(engine, chunks)
    assert len(got) > 1 and all(n <= 4 for _, n in got)
    assert (await transact(engine, _check))[storage] == set(range(2, 31, 2))
    # later appends and expunges keep using the cut map
    await transact(engine, append_email, ACCOUNT, "inbox", new_email(30), delivery_id="d30")
    await transact(engine, expunge_messages, ACCOUNT, "inbox", uids=range(10, 21),
                   only_deleted=False, op_id="mid")
    assert (await transact(engine, _check))[storage] == {2, 4, 6, 8, 22, 24, 26, 28, 30, 31}
    # two UIDs far apart (read by point reads, not a range) and one that is gone
    res = await transact(engine, expunge_messages, ACCOUNT, "inbox", uids=[2, 3, 31],
                         only_deleted=False, op_id="far")
    assert res.uids == (2, 31)
    assert (await transact(engine, _check))[storage] == {4, 6, 8, 22, 24, 26, 28, 30}
