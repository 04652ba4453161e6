"""What the next hop offers decides: SIZE (RFC 1870), SMTPUTF8 (RFC 6531) and a
verified certificate when ``tls_verify`` is on."""

from __future__ import annotations

from pathlib import Path

import pytest

from fdb_layers.queue import DELAYED
from server.outbound.outbox import Outbox
from tests.server.outbound.conftest import Clock, Site, make_worker, submit
from tests.server.outbound.sinks import Sink
from tests.support.dns import Dns, a_records
from tests.support.mailbox import inbox_messages

MESSAGE = b"From: alice@example.com\r\nSubject: hi\r\n\r\n" + b"x" * 500 + b"\r\n"


@pytest.fixture(autouse=True)
def zone(dns_server: Dns) -> None:
    dns_server.set({("remote.test", "MX"): ["10 mx1.remote.test."],
                    **a_records(["mx1.remote.test"])})


async def sink(tmp_path: Path, **kw: int | bool) -> Sink:
    s = Sink(tmp_path, **kw)  # type: ignore[arg-type]
    await s.start()
    return s


async def test_a_message_over_the_hosts_size_bounces(site: Site, dns_server: Dns,
                                                     tmp_path: Path) -> None:
    mx = await sink(tmp_path, size=100)
    try:
        worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
        await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
        await worker.run_once()
        assert mx.received == []
        await worker.run_once()              # the DSN queued in the same commit
        [bounce] = await inbox_messages(site.engine, site.blobs, "alice")
        assert b"Status: 5.3.4" in bounce
    finally:
        await mx.close()


async def test_a_utf8_address_to_a_host_without_smtputf8_bounces(
        site: Site, dns_server: Dns, tmp_path: Path) -> None:
    mx = await sink(tmp_path, smtputf8=False)
    try:
        worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
        await Outbox(site.engine, site.blobs).enqueue("q-utf8", "alice@example.com",
                                                      ["jürgen@remote.test"], MESSAGE)
        await worker.run_once()
        assert mx.received == []
        await worker.run_once()              # the DSN queued in the same commit
        [bounce] = await inbox_messages(site.engine, site.blobs, "alice")
        assert b"Status: 5.6.7" in bounce
    finally:
        await mx.close()


async def test_tls_verify_defers_on_an_unverifiable_certificate(
        site: Site, dns_server: Dns, mx: Sink) -> None:
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port},
                         tls_verify=True)
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert mx.received == []
    [queued] = await site.queued()
    assert queued.state == DELAYED and queued.recipients[0].reply.startswith("451 4.4.2")
