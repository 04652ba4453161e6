"""Delivery to a host that offers PIPELINING (RFC 2920): MAIL, every RCPT and DATA go in one
group, the replies are read in order, the content follows 354 only when a recipient was
accepted.  An aiosmtpd sink that advertises PIPELINING and records what each read of
its connection held."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.server.outbound.conftest import Clock, Site, make_worker, submit
from tests.server.outbound.sinks import Sink, SinkHandler
from tests.support.dns import Dns
from tests.support.mailbox import inbox_messages

MESSAGE = (b"From: alice@example.com\r\nTo: carol@remote.test\r\nSubject: hi\r\n"
           b"Message-ID: <p1@example.com>\r\n\r\n.leading dot\r\nbody\r\n")


@dataclass
class PipeliningHandler(SinkHandler):
    mail_reply: str = ""

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 2.1.0 OK"


class PipeliningSink(Sink):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.handler: PipeliningHandler = PipeliningHandler()
        self.reads: list[bytes] = []        # each read of a connection, in order
        self.sessions: list[SMTP] = []

    def _protocol(self) -> SMTP:
        protocol = super()._protocol()
        self.sessions.append(protocol)
        received = protocol.data_received
        reads = self.reads

        def data_received(data: bytes) -> None:
            reads.append(data)
            received(data)

        protocol.data_received = data_received  # type: ignore[method-assign]
        return protocol


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[PipeliningSink]:
    s = PipeliningSink(tmp_path)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def routed(sink: Sink) -> list[str]:
    return [f"remote.test=127.0.0.1:{sink.port}"]


async def test_envelope_goes_in_one_group(site: Site, dns_server: Dns,
                                          sink: PipeliningSink) -> None:
    """RFC 2920 section 3.1: MAIL, the RCPTs and DATA sent together (DATA ends the group);
    the content, dot-stuffed (RFC 5321 4.5.2), after 354; each recipient delivered."""
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink))
    await submit(site, "alice@example.com", ["carol@remote.test", "dave@remote.test"],
                 MESSAGE)
    assert await worker.run_once() == 1
    [got] = sink.received
    assert got.recipients == ["carol@remote.test", "dave@remote.test"]
    assert b"\r\n.leading dot\r\nbody\r\n" in got.content
    group = [r for r in sink.reads if r.startswith(b"MAIL FROM:")]
    assert len(group) == 1
    assert group[0].endswith(b"RCPT TO:<carol@remote.test>\r\nRCPT TO:<dave@remote.test>\r\n"
                             b"DATA\r\n")
    assert await site.queued() == []
    await worker.pool.close()


def _message(i: int) -> bytes:
    return MESSAGE.replace(b"<p1@", f"<reuse{i}@".encode())


async def test_rset_on_a_kept_connection_opens_the_group(site: Site, dns_server: Dns,
                                                        sink: PipeliningSink) -> None:
    """The next message on a kept connection: RSET (RFC 5321 4.1.1.5) goes first in the
    group with MAIL, RCPT and DATA (RFC 2920 section 3.1: RSET may appear anywhere in
    one), not in a round trip of its own; both messages delivered on one connection."""
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink),
                         idle_seconds=3600.0)
    for i in range(2):
        await submit(site, "alice@example.com", ["carol@remote.test"], _message(i))
        assert await worker.run_once() == 1
    assert len(sink.received) == 2 and len(sink.sessions) == 1
    groups = [r for r in sink.reads if b"MAIL FROM:" in r]
    assert groups[0].startswith(b"MAIL FROM:")
    assert groups[1] == (b"RSET\r\nMAIL FROM:<alice@example.com> SIZE=%d\r\n"
                         b"RCPT TO:<carol@remote.test>\r\nDATA\r\n"
                         % len(sink.received[1].content))
    assert not any(r == b"RSET\r\n" for r in sink.reads)
    assert await site.queued() == []
    await worker.pool.close()


async def test_kept_connection_closed_by_the_server_is_replaced(
        site: Site, dns_server: Dns, sink: PipeliningSink) -> None:
    """A kept connection the server closed meanwhile: the pipelined RSET gets no reply, no
    content was sent, the message goes at once on a new connection, delivered once."""
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink),
                         idle_seconds=3600.0)
    await submit(site, "alice@example.com", ["carol@remote.test"], _message(0))
    assert await worker.run_once() == 1
    for session in sink.sessions:
        assert session.transport is not None
        session.transport.close()
    await submit(site, "alice@example.com", ["dave@remote.test"], _message(1))
    assert await worker.run_once() == 1
    assert [r.recipients for r in sink.received] == [["carol@remote.test"],
                                                     ["dave@remote.test"]]
    assert len(sink.sessions) == 2
    assert await site.queued() == []
    await worker.pool.close()


async def test_refused_recipient_in_a_group_bounces(site: Site, dns_server: Dns,
                                                    sink: PipeliningSink) -> None:
    """RFC 2920 section 3.1: each RCPT's reply read in turn: the refused one bounces
    (RFC 3464), the accepted one gets the content."""
    sink.handler.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 no such user"]
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink))
    await submit(site, "alice@example.com", ["nobody@remote.test", "carol@remote.test"],
                 MESSAGE)
    await worker.run_once()
    assert [r.recipients for r in sink.received] == [["carol@remote.test"]]
    await worker.run_once()                  # the DSN, through the local pipeline
    [bounce] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"Final-Recipient: rfc822; nobody@remote.test" in bounce
    assert b"Diagnostic-Code: smtp; 550 5.1.1 no such user" in bounce
    assert await site.queued() == []
    await worker.pool.close()


async def test_no_recipient_accepted_sends_no_content(site: Site, dns_server: Dns,
                                                      sink: PipeliningSink) -> None:
    """RFC 2920 section 3.1: with every RCPT refused the DATA of the group is refused too
    (aiosmtpd: 503); nothing is delivered, the recipient bounces, the connection stays
    usable for the next message."""
    sink.handler.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 no such user"]
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink),
                         idle_seconds=3600.0)
    await submit(site, "alice@example.com", ["nobody@remote.test"], MESSAGE)
    await worker.run_once()
    assert sink.received == []
    await worker.run_once()
    [bounce] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"Final-Recipient: rfc822; nobody@remote.test" in bounce
    await submit(site, "alice@example.com", ["carol@remote.test"],
                 MESSAGE.replace(b"<p1@", b"<p2@"))
    assert await worker.run_once() == 1
    assert [r.recipients for r in sink.received] == [["carol@remote.test"]]
    assert await site.queued() == []
    await worker.pool.close()


async def test_refused_mail_from_bounces_every_recipient(site: Site, dns_server: Dns,
                                                         sink: PipeliningSink) -> None:
    """RFC 2920 section 3.1: a refused MAIL makes the group's RCPTs and DATA fail (503);
    the client reads all their replies and reports the MAIL reply: a 5xx bounces."""
    sink.handler.mail_reply = "550 5.7.1 sender refused"
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink))
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert sink.received == []
    await worker.run_once()
    [bounce] = await inbox_messages(site.engine, site.blobs, "alice")
    assert b"Diagnostic-Code: smtp; 550 5.7.1 sender refused" in bounce
    assert await site.queued() == []
    await worker.pool.close()
