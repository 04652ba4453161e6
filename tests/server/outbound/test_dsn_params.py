"""DSN parameters (RFC 3461) and binary messages (RFC 3030) on their way through the
queue: given at submission (smtplib), kept with the queued message, honoured by the
notices, and passed on to a next hop that offers DSN (another fdbmail SMTP server on
loopback); an aiosmtpd sink stands for a hop without DSN, CHUNKING or BINARYMIME."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from server.config import load_config
from server.net import tls
from server.outbound.outbox import Outbox
from server.smtp import SmtpService, start_smtp
from tests.server.outbound.conftest import Clock, Site, make_worker
from tests.server.outbound.sinks import Sink
from tests.server.smtp.conftest import FakeDelivery, FakeDirectory
from tests.support.dns import Dns, a_records
from tests.support.mailbox import inbox_messages

MESSAGE = b"From: alice@example.com\r\nTo: carol@remote.test\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture(autouse=True)
def zone(dns_server: Dns) -> None:
    dns_server.set({("remote.test", "MX"): ["10 mx1.remote.test."],
                    ("far.test", "MX"): ["10 mx2.far.test."],
                    **a_records(["mx1.remote.test", "mx2.far.test"])})


@pytest.fixture
async def far(tmp_path: Path, site: Site) -> AsyncIterator[tuple[SmtpService, FakeDelivery]]:
    """Another fdbmail MX (for far.test) that offers DSN, CHUNKING and BINARYMIME; its
    own notices go into the site's queue (it shares the site's outbox)."""
    cert, key = tls.ensure_self_signed(tmp_path / "far-tls", "far.test")
    directory = FakeDirectory()
    directory.domains = {"far.test"}
    directory.add("dana", "dana@far.test")
    delivery = FakeDelivery()
    config = load_config(None, env={}).with_overrides({
        "server": {"data_dir": str(tmp_path / "far")},
        "tls": {"certificate": str(cert), "key": str(key)},
        "smtp": {"mx_listen": "127.0.0.1:0", "submission_listen": "",
                 "submissions_listen": "", "hostname": "far.test"}})
    service = await start_smtp(config, directory, delivery,
                               outbox=Outbox(site.engine, site.blobs))
    try:
        yield service, delivery
    finally:
        await service.close()


def submit(site: Site, recipients: Sequence[str], message: bytes, mail_options: list[str],
           rcpt_options: list[str]) -> dict[str, tuple[int, bytes]]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", site.smtp.ports["submission"], timeout=30) as s:
        s.starttls(context=ctx)
        s.login("alice", "secret")
        assert s.has_extn("dsn")
        return s.sendmail("alice@example.com", list(recipients), message,
                          mail_options, rcpt_options)


async def test_dsn_parameters_are_queued_and_a_relayed_notice_sent(
        site: Site, dns_server: Dns, mx: Sink) -> None:
    """RFC 3461 sections 4.1-4.4 (NOTIFY, ORCPT, RET, ENVID kept; xtext decoded) and
    5.2.2: delivered to a hop without DSN, NOTIFY=SUCCESS gets a "relayed" notice."""
    await asyncio.to_thread(submit, site, ["carol@remote.test"], MESSAGE,
                            ["RET=HDRS", "ENVID=env+2Bone"],
                            ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;c+40rol@remote.test"])
    [queued] = await site.queued()
    assert (queued.envid, queued.ret) == ("env+one", "HDRS")
    [r] = queued.recipients
    assert r.notify == ("SUCCESS", "FAILURE") and r.orcpt == "rfc822;c@rol@remote.test"
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    await worker.run_once()
    [got] = mx.received
    assert got.recipients == ["carol@remote.test"]
    await worker.run_once()             # the notice, to the local sender
    [notice] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"Action: relayed" in notice and b"Status: 2.0.0" in notice
    assert b"Original-Envelope-Id: env+one" in notice
    assert b"Original-Recipient: rfc822;c@rol@remote.test" in notice
    assert b"Content-Type: text/rfc822-headers" in notice       # RET=HDRS
    assert await site.queued() == []


async def test_notify_never_and_default(site: Site, dns_server: Dns, mx: Sink) -> None:
    """RFC 3461 section 4.1: NOTIFY=NEVER gets no bounce; without NOTIFY a failure is
    reported and a success is not."""
    mx.handler.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 no such user"]
    await asyncio.to_thread(submit, site, ["nobody@remote.test"], MESSAGE, [],
                            ["NOTIFY=NEVER"])
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    await worker.run_once()
    assert await site.queued() == []
    await asyncio.to_thread(submit, site, ["carol@remote.test"], MESSAGE + b"2", [], [])
    await worker.run_once()
    assert len(mx.received) == 1 and await site.queued() == []
    assert await inbox_messages(site.engine, site.blobs, "alice") == []


async def test_malformed_dsn_parameters_are_refused(site: Site) -> None:
    """RFC 3461 section 4: bad values get 501, unknown RCPT parameters 555; nothing is
    queued."""
    def run() -> list[int]:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", site.smtp.ports["submission"], timeout=30) as s:
            s.starttls(context=ctx)
            s.login("alice", "secret")
            codes = [s.mail("alice@example.com", ["RET=ALL"])[0],
                     s.mail("alice@example.com", ["ENVID=" + "x" * 101])[0],
                     s.mail("alice@example.com", ["ENVID=a+zz"])[0],
                     s.mail("alice@example.com", ["RET=FULL", "ENVID=ok"])[0]]
            codes += [s.rcpt("carol@remote.test", ["NOTIFY=NEVER,SUCCESS"])[0],
                      s.rcpt("carol@remote.test", ["NOTIFY=SOMETIMES"])[0],
                      s.rcpt("carol@remote.test", ["ORCPT=carol@remote.test"])[0],
                      s.rcpt("carol@remote.test", ["ORCPT=rfc822;a+zz"])[0],
                      s.rcpt("carol@remote.test", ["XFOO=1"])[0]]
            return codes
    codes = await asyncio.to_thread(run)
    assert codes == [501, 501, 501, 250, 501, 501, 501, 501, 555]
    assert await site.queued() == []


async def test_dsn_passed_on_and_binary_sent_by_bdat(
        site: Site, dns_server: Dns, far: tuple[SmtpService, FakeDelivery]) -> None:
    """RFC 3461 section 5.2.1: a hop that offers DSN gets NOTIFY, ORCPT, RET and ENVID
    (xtext encoded again) and reports itself (no "relayed" notice from us); RFC 3030
    section 3: a binary message goes by BDAT with BODY=BINARYMIME."""
    service, delivery = far
    worker = make_worker(site, dns_server, Clock(), {"mx2.far.test": service.ports["mx"]})
    await asyncio.to_thread(submit, site, ["dana@far.test"], MESSAGE,
                            ["RET=FULL", "ENVID=e+3D1"],
                            ["NOTIFY=SUCCESS", "ORCPT=rfc822;d+2Bx@far.test"])
    await worker.run_once()
    [stored] = delivery.stored["dana"]
    assert stored.endswith(MESSAGE)
    await worker.run_once()     # far.test's "delivered" notice, queued to alice
    [notice] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"Action: delivered" in notice and b"Reporting-MTA: dns; far.test" in notice
    assert b"Original-Envelope-Id: e=1" in notice
    assert b"Original-Recipient: rfc822;d+x@far.test" in notice
    assert b"Content-Type: message/rfc822" in notice            # RET=FULL
    binary = b"Subject: bin\r\n\r\n\x00\x01bare\nLF\rCR\xff"
    await Outbox(site.engine, site.blobs).enqueue("q-bin", "alice@example.com",
                                                  ["dana@far.test"], binary)
    await worker.run_once()
    assert delivery.stored["dana"][1].endswith(binary)
    assert await site.queued() == []


async def test_binary_to_a_hop_without_binarymime_bounces(
        site: Site, dns_server: Dns, mx: Sink) -> None:
    """RFC 3030 section 3: no downgrade here: a hop without BINARYMIME gets nothing
    and the sender a bounce (5.6.3)."""
    binary = b"Subject: bin\r\n\r\n\x00\x01bare\nLF\r\n"
    await Outbox(site.engine, site.blobs).enqueue("q-bin", "alice@example.com",
                                                  ["carol@remote.test"], binary)
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    await worker.run_once()
    await worker.run_once()
    assert mx.received == []
    [bounce] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"Action: failed" in bounce and b"Status: 5.6.3" in bounce
