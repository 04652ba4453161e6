"""Delivery workers against real parts: a DNS server on loopback answers MX and A
records of remote.test; aiosmtpd sinks on 127.0.0.1 are its mail hosts."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY, generate_latest

from fdb_layers.queue import DELAYED
from tests.server.outbound.conftest import Clock, Site, free_closed_port, make_worker, submit
from tests.server.outbound.sinks import Sink
from tests.support.dns import Dns, a_records
from tests.support.mailbox import inbox_messages
from tests.support.metrics import assert_promtool_accepts

MESSAGE = (b"From: alice@example.com\r\nTo: carol@remote.test\r\nSubject: hi\r\n"
           b"Message-ID: <1@example.com>\r\n\r\nhello\r\n.starts with a dot\r\n")


def remote_zone(dns_server: Dns, *mx_hosts: str) -> None:
    dns_server.set({("remote.test", "MX"): [f"{10 * (i + 1)} {h}." for i, h in
                                            enumerate(mx_hosts)],
                    **a_records(mx_hosts)})


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_delivery_to_the_mx(site: Site, dns_server: Dns, mx: Sink) -> None:
    delivered = sample("fdbmail_outbound_deliveries_total", result="delivered")
    attempts = sample("fdbmail_outbound_attempt_duration_seconds_count")
    remote_zone(dns_server, "mx1.remote.test")
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    await submit(site, "alice@example.com", ["carol@remote.test", "dan@remote.test"], MESSAGE)
    assert await worker.run_once() == 1
    [got] = mx.received
    assert got.sender == "alice@example.com"
    assert got.recipients == ["carol@remote.test", "dan@remote.test"]
    assert got.content.endswith(MESSAGE) and got.tls      # dot-stuffing undone by the sink
    assert await site.queued() == []
    assert await worker.run_once() == 0 and len(mx.received) == 1
    assert sample("fdbmail_outbound_deliveries_total", result="delivered") == delivered + 2
    assert sample("fdbmail_outbound_attempt_duration_seconds_count") == attempts + 1
    assert sample("fdbmail_outbound_queue_messages") == 0
    assert sample("fdbmail_outbound_queue_recipients", state="pending") == 0
    assert_promtool_accepts(generate_latest().decode())


async def test_fallback_to_the_second_mx(site: Site, dns_server: Dns, mx: Sink) -> None:
    remote_zone(dns_server, "mx1.remote.test", "mx2.remote.test")
    worker = make_worker(site, dns_server, Clock(),
                         {"mx1.remote.test": free_closed_port(), "mx2.remote.test": mx.port})
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert [r.recipients for r in mx.received] == [["carol@remote.test"]]
    assert await site.queued() == []


async def test_deferred_then_delivered_on_retry(site: Site, dns_server: Dns,
                                                mx: Sink) -> None:
    remote_zone(dns_server, "mx1.remote.test")
    clock = Clock()
    worker = make_worker(site, dns_server, clock, {"mx1.remote.test": mx.port})
    mx.handler.rcpt_replies["carol@remote.test"] = ["451 4.2.0 greylisted, try later"]
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert mx.received == []
    [queued] = await site.queued()
    assert queued.state == DELAYED and queued.recipients[0].reply.startswith("451 4.2.0")
    assert await worker.run_once() == 0          # not due before its retry interval
    clock.offset = 61.0
    assert await worker.run_once() == 1
    assert [r.recipients for r in mx.received] == [["carol@remote.test"]]
    assert await site.queued() == []


async def test_refused_recipient_bounces_to_the_local_sender(
        site: Site, dns_server: Dns, mx: Sink) -> None:
    remote_zone(dns_server, "mx1.remote.test")
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    mx.handler.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 no such user"]
    await submit(site, "alice@example.com", ["nobody@remote.test", "carol@remote.test"],
                 MESSAGE)
    await worker.run_once()
    assert [r.recipients for r in mx.received] == [["carol@remote.test"]]
    [queued_dsn] = await site.queued()       # queued in the commit of the outcome
    assert queued_dsn.sender == "" and \
        [r.address for r in queued_dsn.recipients] == ["alice@example.com"]
    await worker.run_once()                  # delivered through the delivery pipeline
    [bounce] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"report-type=delivery-status" in bounce
    assert b"Content-Type: message/delivery-status" in bounce
    assert b"Final-Recipient: rfc822; nobody@remote.test" in bounce
    assert b"Action: failed" in bounce and b"Status: 5.1.1" in bounce
    assert b"Diagnostic-Code: smtp; 550 5.1.1 no such user" in bounce
    assert b"Content-Type: text/rfc822-headers" in bounce and b"Subject: hi" in bounce
    assert b"carol@remote.test" not in bounce.split(b"message/delivery-status")[1].split(
        b"text/rfc822-headers")[0]
    assert await site.queued() == []


async def test_null_mx_bounces(site: Site, dns_server: Dns) -> None:
    dns_server.set({("remote.test", "MX"): ["0 ."]})
    worker = make_worker(site, dns_server, Clock())
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    await worker.run_once()                  # the DSN queued in the same commit
    [bounce] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"Status: 5.1.10" in bounce and b"null MX" in bounce
    assert await site.queued() == []


async def test_relay_host_with_auth(site: Site, dns_server: Dns, tmp_path: Path) -> None:
    relay = Sink(tmp_path, users={"outbound": "s3cret"})
    await relay.start()
    try:
        worker = make_worker(site, dns_server, Clock(), relay=f"127.0.0.1:{relay.port}",
                             relay_username="outbound", relay_password="s3cret")
        await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
        await worker.run_once()
        [got] = relay.received
        assert got.authenticated == "outbound" and got.tls
        assert got.recipients == ["carol@remote.test"]   # remote.test has no MX: none asked
    finally:
        await relay.close()


async def test_relay_refuses_bad_credentials_and_the_message_waits(
        site: Site, dns_server: Dns, tmp_path: Path) -> None:
    relay = Sink(tmp_path, users={"outbound": "s3cret"})
    await relay.start()
    try:
        worker = make_worker(site, dns_server, Clock(), relay=f"127.0.0.1:{relay.port}",
                             relay_username="outbound", relay_password="wrong")
        await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
        await worker.run_once()
        assert relay.received == []
        [queued] = await site.queued()
        assert queued.state == DELAYED and "AUTH" in queued.recipients[0].reply
    finally:
        await relay.close()


async def test_directory_outage_defers_instead_of_routing_out(site: Site, dns_server: Dns,
                                                              mx: Sink) -> None:
    """Queued mail whose domain the directory cannot place while it is down waits (a
    temporary failure) and never leaves through the relay host: here the bounce to a
    local sender, with every outgoing message relayed to a sink that must not get it."""
    clock = Clock()
    worker = make_worker(site, dns_server, clock, relay=f"127.0.0.1:{mx.port}")
    mx.handler.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 no such user"]
    await submit(site, "alice@example.com", ["nobody@remote.test"], MESSAGE)
    await worker.run_once()                  # refused: a DSN to alice@example.com queued
    site.directory.fail = True
    await worker.run_once()
    assert mx.received == []                 # the local sender's bounce did not leave
    [queued_dsn] = await site.queued()
    assert queued_dsn.state == DELAYED
    assert queued_dsn.recipients[0].reply == "451 4.4.3 directory unavailable"
    site.directory.fail = False
    clock.offset = 61.0
    assert await worker.run_once() == 1      # delivered locally once the directory answers
    [bounce] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"Status: 5.1.1" in bounce
    assert mx.received == [] and await site.queued() == []
