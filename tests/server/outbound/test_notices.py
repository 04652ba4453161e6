"""DSNs (RFC 3464) and leases: delay notices once, bounces after expiry, no DSN to
``<>``, a remote sender's bounce goes through the queue, and a worker that dies
holding a lease leaves the message to another worker (delivered once)."""

from __future__ import annotations

import pytest

from fdb_layers.engine.run import transact
from fdb_layers.queue import LeaseLost, lease_due, record_attempt
from server.outbound.outbox import Outbox
from tests.server.outbound.conftest import Clock, Site, make_worker, submit
from tests.server.outbound.sinks import Sink
from tests.support.dns import Dns, a_records
from tests.support.mailbox import inbox_messages

MESSAGE = b"From: alice@example.com\r\nTo: carol@remote.test\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture(autouse=True)
def zone(dns_server: Dns) -> None:
    dns_server.set({("remote.test", "MX"): ["10 mx1.remote.test."],
                    ("other.test", "MX"): ["10 mx1.remote.test."],
                    **a_records(["mx1.remote.test"])})


async def test_delay_notice_once_then_bounce_on_expiry(site: Site, dns_server: Dns,
                                                       mx: Sink) -> None:
    clock = Clock()
    worker = make_worker(site, dns_server, clock, {"mx1.remote.test": mx.port},
                         delay_warning=100.0, give_up_after=1000.0)
    mx.handler.rcpt_replies["carol@remote.test"] = ["451 4.2.0 try later"] * 10
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert await inbox_messages(site.engine, site.blobs, "alice") == []    # not late yet
    clock.offset = 200.0
    await worker.run_once()
    await worker.run_once()                  # the DSN queued in the same commit
    [delay] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"Action: delayed" in delay and b"Status: 4.2.0" in delay
    assert b"Subject: Delivery Status Notification (Delay)" in delay
    clock.offset = 400.0
    await worker.run_once()
    await worker.run_once()
    assert len(await inbox_messages(site.engine, site.blobs, "alice")) == 1    # once
    clock.offset = 1001.0
    await worker.run_once()
    await worker.run_once()                  # the DSN queued in the same commit
    [_, bounce] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"Action: failed" in bounce and b"Status: 5.2.0" in bounce
    assert await site.queued() == []
    assert mx.received == []


async def test_no_bounce_to_the_null_sender(site: Site, dns_server: Dns,
                                            mx: Sink) -> None:
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    mx.handler.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 no such user"]
    await Outbox(site.engine, site.blobs).enqueue("q-null", "", ["nobody@remote.test"],
                                                  MESSAGE)
    assert await worker.run_once() == 1
    assert await site.queued() == []        # failed, and nothing queued for <>
    assert await inbox_messages(site.engine, site.blobs, "alice") == []


async def test_a_remote_senders_bounce_goes_through_the_queue(
        site: Site, dns_server: Dns, mx: Sink) -> None:
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    mx.handler.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 no such user"]
    await Outbox(site.engine, site.blobs).enqueue("q-fwd", "zoe@other.test",
                                                  ["nobody@remote.test"], MESSAGE)
    await worker.run_once()
    [bounce] = await site.queued()
    assert bounce.sender == "" and [r.address for r in bounce.recipients] == ["zoe@other.test"]
    await worker.run_once()
    [got] = mx.received
    assert got.sender == "" and got.recipients == ["zoe@other.test"]
    assert b"Final-Recipient: rfc822; nobody@remote.test" in got.content


async def test_notify_never_sends_no_bounce(site: Site, dns_server: Dns,
                                            mx: Sink) -> None:
    from fdb_layers.queue import Envelope, Recipient, enqueue_message

    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    mx.handler.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 no such user"]
    ref = await site.blobs.put(MESSAGE)
    env = Envelope("alice@example.com", (Recipient("nobody@remote.test", ("NEVER",)),),
                   ref.id, ref.size, 0.0, 0.0)
    await transact(site.engine, enqueue_message, "q-never", env)
    await worker.run_once()
    assert await site.queued() == []
    assert await inbox_messages(site.engine, site.blobs, "alice") == []


async def test_a_dead_workers_lease_expires_and_another_delivers_once(
        site: Site, dns_server: Dns, mx: Sink) -> None:
    clock = Clock()
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    # worker "a" leases the message and dies before sending (kill -9: nothing recorded)
    [held] = await transact(site.engine, lease_due, clock(), "a/1", 600.0, 10)
    other = make_worker(site, dns_server, clock, {"mx1.remote.test": mx.port},
                        lease_seconds=600.0)
    assert await other.run_once() == 0          # leased: not due
    clock.offset = 601.0
    assert await other.run_once() == 1
    assert [r.recipients for r in mx.received] == [["carol@remote.test"]]
    with pytest.raises(LeaseLost):              # the dead worker's late record is refused
        await transact(site.engine, record_attempt, held.queue_id, "a/1", {},
                       now=clock())
    assert await site.queued() == [] and len(mx.received) == 1


async def test_queued_mail_routed_local_unknown_and_remote(
        site: Site, dns_server: Dns, mx: Sink) -> None:
    """A queued message with a local recipient, an unknown one in a local domain and a
    remote one (server.delivery.routing): the local one is stored with Return-Path
    (RFC 5321 section 4.4), the remote one sent to its MX, the unknown one bounced to
    the sender (RFC 3464) with the reply SMTP gives at RCPT, 550 5.1.1."""
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    await Outbox(site.engine, site.blobs).enqueue(
        "q-mixed", "zoe@other.test",
        ["alice@example.com", "nobody@example.com", "carol@remote.test"], MESSAGE)
    assert await worker.run_once() == 1
    [stored] = await inbox_messages(site.engine, site.blobs, "alice")
    assert stored.startswith(b"Return-Path: <zoe@other.test>\r\n") and \
        stored.endswith(MESSAGE)
    assert await inbox_messages(site.engine, site.blobs, "bob") == []
    [sent] = mx.received
    assert sent.recipients == ["carol@remote.test"]
    [bounce] = await site.queued()
    assert [r.address for r in bounce.recipients] == ["zoe@other.test"]
    await worker.run_once()
    [_, got] = mx.received
    assert got.sender == "" and got.recipients == ["zoe@other.test"]
    assert b"Final-Recipient: rfc822; nobody@example.com" in got.content
    assert b"550 5.1.1" in got.content
    assert got.content.count(b"Final-Recipient:") == 1     # the delivered ones: no DSN
