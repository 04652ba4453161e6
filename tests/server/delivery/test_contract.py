"""The delivery contract: typed requests, typed results per account, the two seams
(Sieve for incoming mail only, encryption for every source), bodies from blobs."""

from __future__ import annotations

import asyncio
import errno
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from fdb_layers.mail import mailboxes
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mail.queries import get_email, list_messages
from server.blobs.base import BlobRef
from server.blobs.fs import FsBlobStore
from server.delivery import (
    Delivery,
    DeliveryRequest,
    DeliveryResult,
    Discarded,
    MessageTooLarge,
    NoSuchBlob,
    Placement,
    Recipient,
    Refused,
    Source,
    Stored,
    Target,
    TemporaryFailure,
    Unavailable,
)
from server.delivery.errors import MailboxNotFound
from server.mime import MessageSummary



RAW = b"From: a@example.org\r\nSubject: hi\r\nMessage-ID: <1@example.org>\r\n\r\nhello\r\n"


@pytest.fixture
async def delivery(engine: Engine, tmp_path: Path) -> Delivery:
    blobs = await FsBlobStore.create(tmp_path / "blobs", fsync=False)
    return Delivery(engine, blobs, clock=lambda: 1_800_000_000.0)


def request(source: Source = Source.APPEND, body: bytes | BlobRef = RAW, *accounts: str,
            key: str = "k1", **kw: object) -> DeliveryRequest:
    recipients = tuple(Recipient(a) for a in accounts or ("a",))
    return DeliveryRequest(source, body, recipients, key, **kw)  # type: ignore[arg-type]


async def test_stored_reports_every_mailbox(delivery: Delivery, engine: Engine) -> None:
    [first] = await delivery.deliver(request(Source.SMTP, key="k0"))  # creates the account
    await transact(engine, mailboxes.create_mailbox_path, "a", "work", mailbox_id="work")
    [got] = await delivery.deliver(request(mailbox_ids=("inbox", "work", "inbox")))
    assert isinstance(first, Stored) and isinstance(got, Stored)
    inbox = await transact(engine, mailboxes.get_status, "a", "inbox")
    work = await transact(engine, mailboxes.get_status, "a", "work")
    modseq = inbox.highestmodseq
    assert got.mailboxes == (Placement("inbox", inbox.uidvalidity, 2, modseq),
                             Placement("work", work.uidvalidity, 1, modseq))
    assert got.blob_id == hashlib.sha256(RAW).hexdigest()
    email = await transact(engine, get_email, "a", got.email_id)
    assert email is not None and email.thread_id == got.thread_id
    # a retry of the same idempotency id: nothing stored, the same values
    assert await delivery.deliver(request(mailbox_ids=("inbox", "work"))) == [got]


async def test_request_failing_on_its_second_mailbox_stores_nothing(
    delivery: Delivery, engine: Engine
) -> None:
    await delivery.deliver(request(Source.SMTP, key="k0"))
    before = await transact(engine, mailboxes.get_status, "a", "inbox")
    others = [delivery.deliver(request(Source.SMTP, RAW + str(i).encode(), f"u{i}", key=f"o{i}"))
              for i in range(5)]
    bad, *rest = await asyncio.gather(
        delivery.deliver(request(mailbox_ids=("inbox", "gone"))), *others)
    assert [type(r) for [r] in rest] == [Stored] * 5
    [refused] = bad
    assert isinstance(refused, Refused) and isinstance(refused.error, MailboxNotFound)
    assert not refused.temporary
    after = await transact(engine, mailboxes.get_status, "a", "inbox")
    assert after == before
    assert len(await transact(engine, list_messages, "a", "inbox")) == 1


class RecordingSieve:
    def __init__(self, target: Target | None = None) -> None:
        self.seen: list[tuple[str, Source]] = []
        self.target = target

    async def filter(self, account_id: str, request: DeliveryRequest, summary: MessageSummary,
                     raw: bytes, target: Target) -> Target:
        self.seen.append((account_id, request.source))
        return self.target or target


class TaggingEncryption:
    """Stands in for encryption: a different body for the accounts that ask."""

    def __init__(self, accounts: set[str]) -> None:
        self.accounts = accounts
        self.calls: list[str] = []

    async def encrypt(self, account_id: str, raw: bytes, summary: MessageSummary
                      ) -> tuple[bytes, MessageSummary]:
        self.calls.append(account_id)
        return (b"X-Sealed: yes\r\n" + raw if account_id in self.accounts else raw), summary


async def test_sieve_runs_for_incoming_mail_only(engine: Engine, tmp_path: Path) -> None:
    blobs = await FsBlobStore.create(tmp_path / "b", fsync=False)
    sieve = RecordingSieve()
    delivery = Delivery(engine, blobs, sieve=sieve)
    for i, source in enumerate(Source):
        [r] = await delivery.deliver(request(source, key=f"k{i}"))
        assert isinstance(r, Stored)
    assert [s for _, s in sieve.seen] == [Source.SMTP, Source.LMTP]


async def test_sieve_may_discard_or_file(engine: Engine, tmp_path: Path) -> None:
    blobs = await FsBlobStore.create(tmp_path / "b", fsync=False)
    delivery = Delivery(engine, blobs, sieve=RecordingSieve(Target(discard=True)))
    assert await delivery.deliver(request(Source.LMTP, RAW, "a", "b")) == [
        Discarded("a"), Discarded("b")]
    delivery.sieve = RecordingSieve(Target(role="junk", keywords=("$junk",)))
    [r] = await delivery.deliver(request(Source.SMTP, key="k2"))
    assert isinstance(r, Stored)
    junk = await transact(engine, list_messages, "a", "junk")
    assert [m.keywords for m in junk] == [("$junk",)]


async def test_encryption_runs_for_every_source_per_account(
    engine: Engine, tmp_path: Path
) -> None:
    blobs = await FsBlobStore.create(tmp_path / "b", fsync=False)
    encryption = TaggingEncryption({"b"})
    delivery = Delivery(engine, blobs, encryption=encryption)
    a, b = await delivery.deliver(request(Source.MIGRATION, RAW, "a", "b"))
    assert isinstance(a, Stored) and isinstance(b, Stored)
    assert encryption.calls == ["a", "b"]
    assert await blobs.get(a.blob_id) == RAW
    assert await blobs.get(b.blob_id) == b"X-Sealed: yes\r\n" + RAW


async def test_body_from_a_blob(delivery: Delivery) -> None:
    ref = await delivery.blobs.put(RAW)
    [r] = await delivery.deliver(request(Source.IMPORT, ref))
    assert isinstance(r, Stored) and r.blob_id == ref.id
    missing = BlobRef("0" * 64, 3)
    [r] = await delivery.deliver(request(Source.IMPORT, missing, key="k2"))
    assert isinstance(r, Refused) and isinstance(r.error, NoSuchBlob)


async def test_too_large(delivery: Delivery) -> None:
    delivery.max_size = len(RAW) - 1
    out = await delivery.deliver(request(Source.SMTP, RAW, "a", "b"))
    assert all(isinstance(r, Refused) and isinstance(r.error, MessageTooLarge) for r in out)


class FullBlobs(FsBlobStore):
    async def put(self, data: bytes) -> BlobRef:
        raise OSError(errno.ENOSPC, "No space left on device")


async def test_full_disk_is_a_temporary_failure_of_its_kind(
    engine: Engine, tmp_path: Path
) -> None:
    blobs = await FullBlobs.create(tmp_path / "b", fsync=False)
    [r] = await Delivery(engine, blobs).deliver(request(Source.SMTP))
    assert isinstance(r, Refused) and r.temporary
    assert isinstance(r.error, TemporaryFailure) and r.error.kind is Unavailable.STORAGE_FULL


def test_requests_are_checked() -> None:
    good = request()
    with pytest.raises(ValueError):
        replace(good, recipients=())
    with pytest.raises(ValueError):
        replace(good, idempotency_id="")
    with pytest.raises(ValueError):
        replace(good, recipients=(Recipient("a"), Recipient("b")), mailbox_ids=("m",))
    with pytest.raises(ValueError):
        replace(good, keywords=["$seen"])  # type: ignore[arg-type]
    results: list[DeliveryResult] = [Stored("a", "M", "T", "b", ()), Discarded("a")]
    assert all(r.account_id == "a" for r in results)
