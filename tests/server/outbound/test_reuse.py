"""Connection reuse: a delivery worker keeps a connection to a next hop open after a
message and sends the next message to that hop on it (RFC 5321 section 3.3: after a
transaction ends, a new MAIL may begin one; section 4.1.1.5: RSET first), closes idle ones
with QUIT (section 4.1.1.10), and never reuses a connection that errored.  An aiosmtpd sink
counts the connections, RSETs and QUITs it sees."""

from __future__ import annotations

import asyncio

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from server.outbound.worker import start_worker, stop_worker
from tests.server.outbound.conftest import Clock, Site, make_worker, submit
from tests.server.outbound.sinks import Sink, SinkHandler
from tests.support.dns import Dns, a_records
from tests.support.waiting import until


@dataclass
class CountingHandler(SinkHandler):
    rsets: int = 0
    quits: int = 0

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.rsets += 1
        return "250 2.0.0 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 2.0.0 bye"


class CountingSink(Sink):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.handler: CountingHandler = CountingHandler()
        self.sessions: list[SMTP] = []

    def _protocol(self) -> SMTP:
        protocol = super()._protocol()
        self.sessions.append(protocol)
        return protocol

    @property
    def connections(self) -> int:
        return len(self.sessions)

    def drop_all(self) -> None:
        """The server ends every connection without a word (its idle timeout)."""
        for s in self.sessions:
            if s.transport is not None:
                s.transport.close()


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[CountingSink]:
    s = CountingSink(tmp_path)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def message(i: int) -> bytes:
    return (f"From: alice@example.com\r\nTo: r{i}@remote.test\r\nSubject: {i}\r\n"
            f"Message-ID: <{i}@example.com>\r\n\r\nbody {i}\r\n").encode()


async def submit_each(site: Site, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        assert (await submit(site, "alice@example.com", [f"r{i}@remote.test"],
                             message(i))).startswith("250")


def routed(sink: CountingSink) -> list[str]:
    return [f"remote.test=127.0.0.1:{sink.port}"]


async def test_messages_to_one_hop_share_one_connection(site: Site, dns_server: Dns,
                                                         sink: CountingSink) -> None:
    """RFC 5321 sections 3.3 and 4.1.1.5: RSET, then the next MAIL on the same connection;
    the worker QUITs its idle connections when it stops (section 4.1.1.10)."""
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink),
                         concurrency_per_domain=1, idle_seconds=3600.0)
    await submit_each(site, 5)
    task = start_worker(worker)
    await until(lambda: len(sink.received) == 5, what="5 deliveries")
    assert sink.connections == 1
    assert sink.handler.rsets == 4
    assert sink.handler.quits == 0                  # still open, idle
    await stop_worker(worker, task)
    await until(lambda: sink.handler.quits == 1, what="QUIT of the idle connection")
    assert sorted(r for got in sink.received for r in got.recipients) == \
        sorted(f"r{i}@remote.test" for i in range(5))
    assert await site.queued() == []


async def test_mx_host_without_policy_shares_connections(site: Site, dns_server: Dns,
                                                         sink: CountingSink) -> None:
    """An MX host (no MTA-STS policy, no DANE) is reused as a relay is (RFC 5321 3.3)."""
    dns_server.set({("remote.test", "MX"): ["10 mx1.remote.test."],
                    **a_records(["mx1.remote.test"])})
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": sink.port},
                         concurrency_per_domain=1, idle_seconds=3600.0)
    await submit_each(site, 3)
    assert await worker.run_once() == 3
    assert len(sink.received) == 3 and sink.connections == 1
    await worker.pool.close()
    await until(lambda: sink.handler.quits == 1, what="QUIT of the idle connection")


async def test_idle_connection_is_closed_with_quit(site: Site, dns_server: Dns,
                                                   sink: CountingSink) -> None:
    """An idle connection ends with QUIT (RFC 5321 4.1.1.10) after ``idle_seconds``; the
    next message opens a new one."""
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink), idle_seconds=0.05)
    await submit_each(site, 1)
    assert await worker.run_once() == 1
    await until(lambda: sink.handler.quits == 1, what="QUIT after the idle timeout")
    await submit_each(site, 1, start=1)
    assert await worker.run_once() == 1
    assert len(sink.received) == 2 and sink.connections == 2
    await worker.pool.close()


async def test_connection_closed_by_the_server_is_replaced(site: Site, dns_server: Dns,
                                                           sink: CountingSink) -> None:
    """A kept connection the server has closed meanwhile fails RSET: the message goes on a
    new connection at once, nothing deferred or lost."""
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink), idle_seconds=3600.0)
    await submit_each(site, 1)
    assert await worker.run_once() == 1
    sink.drop_all()
    await submit_each(site, 1, start=1)
    assert await worker.run_once() == 1
    assert [r.recipients for r in sink.received] == [["r0@remote.test"], ["r1@remote.test"]]
    assert sink.connections == 2
    assert await site.queued() == []
    await worker.pool.close()


async def test_connection_that_errored_is_not_reused(site: Site, dns_server: Dns,
                                                     sink: CountingSink) -> None:
    """A 421 reply (RFC 5321 3.8: the server is closing the channel) ends the connection:
    the next message opens a new one; the deferred recipient stays queued."""
    sink.handler.rcpt_replies["r0@remote.test"] = ["421 4.3.2 shutting down"]
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink), idle_seconds=3600.0)
    await submit_each(site, 1)
    assert await worker.run_once() == 1
    assert sink.received == [] and len(await site.queued()) == 1
    await submit_each(site, 1, start=1)
    assert await worker.run_once() == 1
    assert [r.recipients for r in sink.received] == [["r1@remote.test"]]
    assert sink.connections == 2 and sink.handler.rsets == 0
    await worker.pool.close()


async def test_reuse_off_opens_a_connection_per_message(site: Site, dns_server: Dns,
                                                        sink: CountingSink) -> None:
    """``idle_connections_per_hop = 0``: every message on its own connection, each ended
    with QUIT."""
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink),
                         concurrency_per_domain=1, idle_connections_per_hop=0)
    await submit_each(site, 3)
    assert await worker.run_once() == 3
    assert len(sink.received) == 3 and sink.connections == 3
    await until(lambda: sink.handler.quits == 3, what="3 QUITs")


async def test_idle_connections_per_hop_are_bounded(site: Site, dns_server: Dns,
                                                    sink: CountingSink) -> None:
    """Deliveries at once open a connection each; no more than ``idle_connections_per_hop``
    are kept after them, the others end with QUIT."""
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink),
                         concurrency_per_domain=4, idle_connections_per_hop=1,
                         idle_seconds=3600.0)
    await submit_each(site, 4)
    assert await worker.run_once() == 4
    assert len(sink.received) == 4
    opened = sink.connections
    assert opened >= 1
    await until(lambda: sink.handler.quits == opened - 1, what="QUIT of the extra ones")
    assert worker.pool.idle() == 1
    await worker.pool.close()
    await until(lambda: sink.handler.quits == opened, what="QUIT of the kept one")


@dataclass
class SilentRsetHandler(CountingHandler):
    """Answers the first transaction, then never answers RSET (a host that forgot the
    connection without closing it)."""

    def __post_init__(self) -> None:
        self.released = asyncio.Event()

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.rsets += 1
        await self.released.wait()
        return "250 2.0.0 OK"


async def test_reused_connection_silent_on_rset_is_dropped(site: Site, dns_server: Dns,
                                                           sink: CountingSink) -> None:
    """RFC 5321 section 4.5.3.2 gives RSET no timeout of its own: a kept connection whose
    RSET gets no reply within ``rset_timeout`` (not the 300 s ``timeout``) is dropped and
    the message goes at once on a new connection, nothing deferred."""
    handler = SilentRsetHandler()
    sink.handler = handler
    worker = make_worker(site, dns_server, Clock(), routes=routed(sink), idle_seconds=3600.0,
                         timeout=3600.0, rset_timeout=0.2)
    try:
        await submit_each(site, 1)
        assert await worker.run_once() == 1
        await submit_each(site, 1, start=1)
        assert await worker.run_once() == 1
        assert [r.recipients for r in sink.received] == [["r0@remote.test"],
                                                         ["r1@remote.test"]]
        assert handler.rsets == 1 and sink.connections == 2
        assert await site.queued() == []
    finally:
        handler.released.set()
        await worker.pool.close()
