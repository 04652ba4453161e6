"""The delivery pipeline: parse, put the blob once, one idempotent transaction
per recipient; on sqlite and on sqlite under fault injection."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from fdb_layers import blobrefs, mailbox
from fdb_layers.accounts import watch_account
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import TRANSACTIONS, transact
from fdb_layers.message_queries import get_email, get_summary, list_messages
from fdb_layers.messages import expire_deliveries
from fdb_layers.threads import list_thread
from server.blobs.base import BlobCapabilities, BlobRef
from server.blobs.fs import FsBlobStore
from fdb_layers.mail_errors import QuotaExceeded
from server.delivery import (
    Delivery,
    DeliveryRequest,
    DeliveryResult,
    Discarded,
    Recipient,
    Refused,
    Source,
    Stored,
    pipeline,
)
from server.mime import MessageSummary
from tests.fdb_layers.mail_fixtures import dump, engine

__all__ = ["engine"]

RAW = (
    b"From: Bob <bob@example.org>\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: Lunch\r\n"
    b"Message-ID: <lunch@example.org>\r\n"
    b"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
    b"\r\n"
    b"Shall we?\r\n"
)
REPLY = (
    b"From: Alice <alice@example.org>\r\n"
    b"Subject: Re: Lunch\r\n"
    b"Message-ID: <reply@example.org>\r\n"
    b"In-Reply-To: <lunch@example.org>\r\n"
    b"References: <lunch@example.org>\r\n"
    b"\r\n"
    b"Yes.\r\n"
)



async def deliver(
    delivery: Delivery,
    raw: bytes,
    accounts: list[str],
    *,
    delivery_id: str,
    mailbox_role: str = "inbox",
    mailbox_id: str | None = None,
    keywords: Sequence[str] = (),
    received_at: float | None = None,
    quotas: dict[str, int] | None = None,
) -> list[DeliveryResult]:
    """The pipeline as SMTP calls it (these tests predate DeliveryRequest)."""
    quotas = quotas or {}
    return await delivery.deliver(DeliveryRequest(
        Source.SMTP, raw, tuple(Recipient(a, quotas.get(a, 0)) for a in accounts), delivery_id,
        mailbox_ids=(mailbox_id,) if mailbox_id else (), role=mailbox_role,
        keywords=tuple(keywords), received_at=received_at))


def ok(result: DeliveryResult) -> bool:
    return isinstance(result, Stored | Discarded)


def permanent(result: DeliveryResult) -> bool:
    return isinstance(result, Refused) and not result.temporary


def eid(result: DeliveryResult) -> str:
    return result.email_id if isinstance(result, Stored) else ""


@pytest.fixture
async def delivery(engine: Engine, tmp_path: Path) -> Delivery:
    blobs = await FsBlobStore.create(tmp_path / "blobs", fsync=False)
    return Delivery(engine, blobs, clock=lambda: 1_800_000_000.0)


async def refcount(engine: Engine, blob_id: str) -> int:
    async def count(tr: Transaction) -> int:
        return await blobrefs.get_blob_refcount(tr, blob_id)

    return await transact(engine, count)


async def test_deliver_to_several_accounts(delivery: Delivery, engine: Engine) -> None:
    woken: list[str] = []
    delivery.add_listener(woken.append)
    out = await deliver(delivery, RAW, ["a", "b", "a"], delivery_id="q1")
    assert [o.account_id for o in out] == ["a", "b", "a"]
    assert all(ok(o) and eid(o) for o in out)
    assert sorted(woken) == ["a", "b"]  # once per account (concurrently)
    email = await transact(engine, get_email, "a", eid(out[0]))
    assert email is not None and email.mailboxes == {"inbox": 1}
    assert email.size == len(RAW) and email.received_at == 1_800_000_000.0
    assert await refcount(engine, email.blob_id) == 2  # one per account
    assert await delivery.blobs.get(email.blob_id) == RAW
    summary = await transact(engine, get_summary, "b", eid(out[1]))
    assert summary is not None
    assert MessageSummary.from_bytes(summary).envelope.decoded_subject == "Lunch"


async def test_repeat_is_a_no_op(delivery: Delivery, engine: Engine) -> None:
    first = await deliver(delivery, RAW, ["a", "b"], delivery_id="q1")
    before = await dump(engine)
    again = await deliver(delivery, RAW, ["a", "b"], delivery_id="q1")
    assert again == first
    assert await dump(engine) == before


async def test_threading_from_headers(delivery: Delivery, engine: Engine) -> None:
    [a] = await deliver(delivery, RAW, ["a"], delivery_id="q1", received_at=1.0)
    [b] = await deliver(delivery, REPLY, ["a"], delivery_id="q2", received_at=2.0)
    ea = await transact(engine, get_email, "a", eid(a))
    eb = await transact(engine, get_email, "a", eid(b))
    assert ea is not None and eb is not None and ea.thread_id == eb.thread_id
    assert await transact(engine, list_thread, "a", ea.thread_id) == [eid(a), eid(b)]


async def test_quota_fails_one_recipient_only(delivery: Delivery, engine: Engine) -> None:
    out = await deliver(delivery, RAW, ["a", "b"], delivery_id="q1", quotas={"a": 10})
    assert not ok(out[0]) and permanent(out[0])
    assert isinstance(out[0], Refused) and isinstance(out[0].error, QuotaExceeded)
    assert ok(out[1])
    assert await transact(engine, list_messages, "a", "inbox") == []  # (the account exists)


async def test_target_role_mailbox_and_keywords(delivery: Delivery, engine: Engine) -> None:
    [o] = await deliver(delivery, RAW, ["a"], delivery_id="q1", mailbox_role="junk",
                                 keywords=["$Junk", "$seen"])
    assert ok(o)
    msgs = await transact(engine, list_messages, "a", "junk")
    assert len(msgs) == 1 and msgs[0].keywords == ("$junk", "$seen")
    status = await transact(engine, mailbox.get_status, "a", "junk")
    assert status.unseen == 0


async def test_missing_mailbox_is_permanent(delivery: Delivery) -> None:
    [o] = await deliver(delivery, RAW, ["a"], delivery_id="q1", mailbox_id="nope")
    assert not ok(o) and permanent(o)


class BrokenBlobs(FsBlobStore):
    async def put(self, data: bytes) -> BlobRef:
        raise OSError("disk on fire")


async def test_blob_failure_is_temporary(engine: Engine, tmp_path: Path) -> None:
    blobs = await BrokenBlobs.create(tmp_path / "b")
    out = await deliver(Delivery(engine, blobs), RAW, ["a", "b"], delivery_id="q1")
    assert [(ok(o), permanent(o)) for o in out] == [(False, False), (False, False)]


async def test_repeat_after_marker_expiry(delivery: Delivery, engine: Engine) -> None:
    [first] = await deliver(delivery, RAW, ["a"], delivery_id="q1", received_at=1000.0)
    await transact(engine, expire_deliveries, "a", 2000.0)
    [again] = await deliver(delivery, RAW, ["a"], delivery_id="q1", received_at=1000.0)
    assert ok(again) and eid(again) == eid(first)
    assert len(await transact(engine, list_messages, "a", "inbox")) == 1


async def test_concurrent_deliveries_share_transactions(delivery: Delivery, engine: Engine) -> None:
    committed = TRANSACTIONS.labels(engine.name, "committed")
    before = committed._value.get()
    raws = [RAW.replace(b"Shall we?", f"Shall we? {i}".encode()) for i in range(40)]
    quotas = {"a": 10 * len(RAW) + 50}  # room for ten
    outs = await asyncio.gather(*(
        deliver(delivery, raw, ["a"], delivery_id=f"c{i}", quotas=quotas)
        for i, raw in enumerate(raws)
    ))
    stored = [o for [o] in outs if ok(o)]
    refused = [o for [o] in outs if not ok(o)]
    assert len(stored) == 10 and all(permanent(o) for o in refused)
    msgs = await transact(engine, list_messages, "a", "inbox")
    assert [m.uid for m in msgs] == list(range(1, 11))
    assert committed._value.get() - before < 40  # entries were grouped


async def test_delivery_fires_the_account_watch(delivery: Delivery, engine: Engine) -> None:
    await deliver(delivery, RAW, ["a"], delivery_id="q0")
    watch = await watch_account(engine, "a")
    await deliver(delivery, REPLY, ["a"], delivery_id="q1")
    await asyncio.wait_for(watch.wait(), 5)


async def test_quota_zero_is_unlimited(delivery: Delivery, engine: Engine) -> None:
    # the directory's Principal.quota == 0 means unlimited
    out = await deliver(delivery, RAW, ["a", "b"], delivery_id="q1", quotas={"a": 0})
    assert [ok(o) for o in out] == [True, True]
    assert len(await transact(engine, list_messages, "a", "inbox")) == 1


async def test_many_accounts_share_transactions(delivery: Delivery, engine: Engine) -> None:
    committed = TRANSACTIONS.labels(engine.name, "committed")
    before = committed._value.get()
    raws = [RAW.replace(b"Shall we?", f"Shall we? {i}".encode()) for i in range(40)]
    outs = await asyncio.gather(*(
        deliver(delivery, raw, [f"u{i % 20}"], delivery_id=f"c{i}")
        for i, raw in enumerate(raws)
    ))
    assert all(ok(o) for [o] in outs)
    assert committed._value.get() - before < 40  # entries of different accounts were grouped
    for n in range(20):
        msgs = await transact(engine, list_messages, f"u{n}", "inbox")
        assert [m.uid for m in msgs] == [1, 2]


async def test_remembered_role_mailbox_is_checked(delivery: Delivery, engine: Engine) -> None:
    [o] = await deliver(delivery, RAW, ["a"], delivery_id="q1", mailbox_role="junk")
    assert ok(o)
    await transact(engine, mailbox.delete_mailbox, "a", "junk")  # the remembered one
    [o] = await deliver(delivery, REPLY, ["a"], delivery_id="q2", mailbox_role="junk")
    assert ok(o)
    junk = await transact(engine, mailbox.find_role, "a", "junk")
    assert junk is not None and junk != "junk"  # re-created, not the deleted one
    email = await transact(engine, get_email, "a", eid(o))
    assert email is not None and email.mailboxes == {junk: 1}


async def test_remembered_inbox_after_rename(delivery: Delivery, engine: Engine) -> None:
    [first] = await deliver(delivery, RAW, ["a"], delivery_id="q1")
    # renaming INBOX moves its messages away and gives INBOX a new UIDVALIDITY
    await transact(engine, mailbox.rename_mailbox_path, "a", "INBOX", "Old", new_mailbox_id="old")
    [o] = await deliver(delivery, REPLY, ["a"], delivery_id="q2")
    assert ok(o)
    inbox = await transact(engine, list_messages, "a", "inbox")
    assert [m.email_id for m in inbox] == [eid(o)]
    status = await transact(engine, mailbox.get_status, "a", "inbox")
    assert status.messages == 1
    old = await transact(engine, list_messages, "a", "old")
    assert [m.email_id for m in old] == [eid(first)]


class CountingBlobs(FsBlobStore):
    puts = 0
    checks = 0

    async def put(self, data: bytes) -> BlobRef:
        self.puts += 1
        return await super().put(data)

    async def exists(self, blob_id: str) -> bool:
        self.checks += 1
        return await super().exists(blob_id)


async def test_blob_being_deleted_waits_and_puts_again(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "BLOB_RETRY_SECONDS", 0.02)
    blobs = await CountingBlobs.create(tmp_path / "b", fsync=False)
    blob_id = hashlib.sha256(RAW).hexdigest()
    # a collector has claimed this (orphan) blob and is deleting it right now
    assert await transact(engine, blobrefs._claim, blob_id, "gc", 1.0, 2.0, 1e9, True, None)

    async def collector_finishes() -> None:
        await asyncio.sleep(0.03)
        await transact(engine, blobrefs._finish, blob_id, "gc", True, 3.0)

    finishing = asyncio.create_task(collector_finishes())
    [o] = await deliver(Delivery(engine, blobs), RAW, ["a"], delivery_id="q1")
    await finishing
    assert ok(o)
    assert blobs.puts >= 2  # put again after the collector let go
    assert await blobs.get(blob_id) == RAW
    assert await refcount(engine, blob_id) == 1


async def test_blob_being_deleted_too_long_is_temporary(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "BLOB_RETRY_SECONDS", 0.001)
    blobs = await CountingBlobs.create(tmp_path / "b", fsync=False)
    blob_id = hashlib.sha256(RAW).hexdigest()
    assert await transact(engine, blobrefs._claim, blob_id, "gc", 1.0, 2.0, 1e9, True, None)
    [o] = await deliver(Delivery(engine, blobs), RAW, ["a"], delivery_id="q1")
    assert not ok(o) and not permanent(o)
    assert blobs.puts == 1 + pipeline.BLOB_RETRIES
    assert await refcount(engine, blob_id) == 0  # nothing was committed


class RacyS3Blobs(CountingBlobs):
    """A store without an atomic delete-if-older, whose collector deletes the blob
    between our put and our index commit (the S3 window of fdb_layers.blobrefs)."""

    backend = "s3"
    capabilities = BlobCapabilities(atomic_delete_if_older=False)

    async def put(self, data: bytes) -> BlobRef:
        ref = await super().put(data)
        if self.puts == 1:
            await self.delete(ref.id)  # the collector's DELETE lands after our put
        return ref


async def test_blob_deleted_before_the_commit_is_put_again(
    engine: Engine, tmp_path: Path
) -> None:
    blobs = await RacyS3Blobs.create(tmp_path / "b", fsync=False)
    o, p = await deliver(Delivery(engine, blobs), RAW, ["a", "b"], delivery_id="q1")
    assert ok(o) and ok(p)
    assert blobs.checks == 1 and blobs.puts == 2  # one check for both recipients
    email = await transact(engine, get_email, "a", eid(o))
    assert email is not None and await blobs.get(email.blob_id) == RAW


async def test_fs_blobs_are_not_checked_after_the_commit(
    engine: Engine, tmp_path: Path
) -> None:
    blobs = await CountingBlobs.create(tmp_path / "b", fsync=False)
    [o] = await deliver(Delivery(engine, blobs), RAW, ["a"], delivery_id="q1")
    assert ok(o) and blobs.checks == 0 and blobs.puts == 1


class GatedBlobs(FsBlobStore):
    """Puts wait for the gate; bytes containing b"fail" fail to store."""

    gate: asyncio.Event
    waiting: int = 0
    arrived: asyncio.Event

    def close_gate(self) -> None:
        self.gate = asyncio.Event()
        self.arrived = asyncio.Event()

    async def wait_for_puts(self, count: int) -> None:
        """Until ``count`` puts wait at the gate."""
        while self.waiting < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)

    async def put(self, data: bytes) -> BlobRef:
        self.waiting += 1
        self.arrived.set()
        await self.gate.wait()
        if b"fail" in data:
            raise OSError("disk on fire")
        return await super().put(data)


async def test_index_commits_only_after_the_blob_put(engine: Engine, tmp_path: Path) -> None:
    blobs = await GatedBlobs.create(tmp_path / "b", fsync=False)
    blobs.close_gate()
    bad = RAW.replace(b"Shall we?", b"Shall we fail?")
    delivery = Delivery(engine, blobs)
    good_task = asyncio.create_task(deliver(delivery, RAW, ["a"], delivery_id="q1"))
    bad_task = asyncio.create_task(deliver(delivery, bad, ["b"], delivery_id="q2"))
    await blobs.wait_for_puts(2)  # both messages parsed, their puts wait at the gate
    assert await dump(engine) == {}
    blobs.gate.set()
    [good], [failed] = await asyncio.gather(good_task, bad_task)
    assert ok(good) and not ok(failed) and not permanent(failed)
    assert len(await transact(engine, list_messages, "a", "inbox")) == 1
    blob_id = hashlib.sha256(bad).hexdigest()
    assert await refcount(engine, blob_id) == 0  # nothing refers to the blob never stored


async def test_failed_put_leaves_its_batch(engine: Engine, tmp_path: Path) -> None:
    blobs = await GatedBlobs.create(tmp_path / "b", fsync=False)
    blobs.close_gate()
    delivery = Delivery(engine, blobs)
    delivery._writer.in_flight = 1  # the later entries queue up and share one transaction
    raws = [RAW.replace(b"Shall we?", word) for word in (b"first", b"fail", b"second")]
    tasks = [asyncio.create_task(deliver(delivery, raw, [account], delivery_id=f"q{i}"))
             for i, (raw, account) in enumerate(zip(raws, ["c", "b", "a"], strict=True))]
    await blobs.wait_for_puts(3)
    blobs.gate.set()
    [first], [failed], [second] = await asyncio.gather(*tasks)
    assert ok(first) and ok(second) and not ok(failed) and not permanent(failed)
    for account in ("c", "a"):
        assert len(await transact(engine, list_messages, account, "inbox")) == 1
    assert await refcount(engine, hashlib.sha256(raws[1]).hexdigest()) == 0
