"""The queue across node processes on FoundationDB (the cluster ``ops/test`` starts):
`fdbmail serve` processes with delivery workers relay to an aiosmtpd sink in the test
that counts deliveries per recipient.

* kill -9 of the node that holds a message mid-delivery (the sink stalls it before
  its 250): another node delivers it, once, when the lease expires;
* 10,000 queued messages drain through two nodes with no duplicate at the sink.

Messages are queued through the queue layer from the test process (a third client
of the cluster, with the nodes' blob folder), not through SMTP: the tests are about
the workers, and SMTP queueing has its own tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from fdb_layers.engine.run import transact
from fdb_layers.queue import Envelope as QueueEnvelope, Recipient, count_queue, enqueue_message
from server.config import load_config
from tests.server.outbound.sinks import Sink, SinkHandler
from tests.server.test_serve_command import _free_port, _stop
from tests.support.engines import FDB_SKIP_REASON
from tests.support.waiting import until

pytestmark = pytest.mark.skipif(FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or "")

ROOT = str(Path(__file__).resolve().parents[3])
BODY = b"From: alice@example.test\r\nSubject: queue\r\n\r\n" + (b"x" * 78 + b"\r\n") * 10


class CountingHandler(SinkHandler):
    """Counts accepted deliveries per recipient; the first delivery to ``stall``
    never gets its 250 (the connection stays open until the sender dies)."""

    def __init__(self, stall: str = "") -> None:
        super().__init__()
        self.stall = stall
        self.stalled_by: str | None = None
        self.counts: Counter[str] = Counter()
        self.expected = 0               # set by a test: ``all_in`` is set once that many
        self.all_in = asyncio.Event()   # recipients have had a delivery

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.stall in envelope.rcpt_tos and self.stalled_by is None:
            self.stalled_by = str(session.host_name)
            await asyncio.Event().wait()        # until the connection is lost
        self.counts.update(str(r) for r in envelope.rcpt_tos)
        if self.expected and len(self.counts) >= self.expected:
            self.all_in.set()
        return "250 2.0.0 ok"


StartNodes = Callable[..., Awaitable[list[subprocess.Popen[str]]]]


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[Sink]:
    s = Sink(tmp_path)
    s.tls_context = None    # type: ignore[assignment]  # no STARTTLS: cheaper sessions
    s.handler = CountingHandler("stall@remote.test")
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def nodes(tmp_path: Path, sink: Sink) -> AsyncIterator[tuple[StartNodes, Any]]:
    """Starts `fdbmail serve` processes relaying to the sink (key space cleared
    first); yields the starter and a (engine, blobs) pair opened in this process."""
    from fdb_layers.engine.foundationdb import FoundationDbEngine
    from server.blobs import open_blob_store
    from server.node.parts import open_store

    engine0 = await FoundationDbEngine.open()
    tr = engine0.create_transaction()
    tr.clear_range(b"", b"\xff")
    await tr.commit()
    await engine0.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FDBMAIL_")}
    env.update(
        PYTHONPATH=ROOT,
        FDBMAIL_STORE_ENGINE="foundationdb",
        FDBMAIL_STORE_CLUSTER_FILE=os.environ.get("FDB_CLUSTER_FILE", ""),
        FDBMAIL_DIRECTORY_SQL_PATH=str(tmp_path / "directory.sqlite3"),
        FDBMAIL_BLOBS_FS_PATH=str(tmp_path / "blobs"),
        FDBMAIL_SMTP_MX_LISTEN="", FDBMAIL_SMTP_SUBMISSION_LISTEN="",
        FDBMAIL_SMTP_SUBMISSIONS_LISTEN="", FDBMAIL_IMAP_LISTEN="",
        FDBMAIL_IMAP_TLS_LISTEN="",
        FDBMAIL_OUTBOUND_RELAY=f"127.0.0.1:{sink.port}",
        FDBMAIL_OUTBOUND_POLL_SECONDS="0.5",
    )
    config = load_config(None, env=env)
    engine = await open_store(config)
    blobs = await open_blob_store(config)
    procs: list[subprocess.Popen[str]] = []

    async def start(names: tuple[str, ...], **settings: str) -> list[subprocess.Popen[str]]:
        started = []
        for name in names:
            http = _free_port()
            (tmp_path / name).mkdir()
            proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"], cwd=tmp_path / name,
                env={**env, **settings, "FDBMAIL_SERVER_HTTP_LISTEN": f"127.0.0.1:{http}",
                     "FDBMAIL_OUTBOUND_HELO": f"{name}.test"},
                stderr=(tmp_path / f"{name}.log").open("w"), text=True)
            procs.append(proc)
            started.append(proc)
            deadline = time.monotonic() + 60
            async with httpx.AsyncClient() as client:
                while True:
                    try:
                        if (await client.get(f"http://127.0.0.1:{http}/healthz",
                                             timeout=1)).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert proc.poll() is None, "fdbmail serve exited"
                    assert time.monotonic() < deadline, "fdbmail serve did not answer"
                    await asyncio.sleep(0.1)
        return started

    try:
        yield start, (engine, blobs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                await asyncio.to_thread(_stop, proc)
        for log in sorted(tmp_path.glob("*.log")):     # shown when the test fails
            print(log.name, log.read_text()[-3000:])
        await blobs.close()
        await engine.close()


async def _enqueue(engine: Any, blobs: Any, recipients: list[str], per_tx: int = 100,
                   bodies: int = 100) -> None:
    """One queued message per recipient; the messages share ``bodies`` blobs round robin
    (a reference each), so the messages of one lease batch have bodies of their own as
    real submissions do: messages sharing one blob all update its reference count and
    their outcomes' commits conflict (FoundationDB retries them one after another)."""
    refs = [await blobs.put(b"X-Body: %d\r\n" % i + BODY) for i in range(bodies)]
    now = time.time()

    async def some(tr: Any, batch: list[tuple[int, str]]) -> None:
        for n, address in batch:
            ref = refs[n % len(refs)]
            await enqueue_message(tr, f"t-{address}", QueueEnvelope(
                "alice@example.test", (Recipient(address),), ref.id, ref.size, now, now))

    numbered = list(enumerate(recipients))
    for i in range(0, len(numbered), per_tx):
        await transact(engine, some, numbered[i:i + per_tx])


async def _empty(engine: Any) -> bool:
    return (await transact(engine, count_queue))["messages"] == 0


async def test_kill_9_mid_delivery_delivered_once_by_another_node(
        nodes: tuple[StartNodes, Any], sink: Sink) -> None:
    """Issue 14: a node killed (SIGKILL) while it delivers leaves a lease that
    expires; another node delivers the message, and the sink has it exactly once
    (RFC 5321 section 4.1.1.4: no 250 was given to the dead node)."""
    start, (engine, blobs) = nodes
    handler = sink.handler
    assert isinstance(handler, CountingHandler)
    procs = await start(("node-a", "node-b"), FDBMAIL_OUTBOUND_LEASE_SECONDS="3")
    await _enqueue(engine, blobs, ["stall@remote.test", "other@remote.test"])
    await until(lambda: handler.stalled_by is not None, within=60)

    async def only_the_stalled_one_left() -> bool:
        # the other message's outcome is recorded: a node killed between a 250 and
        # its record would send that one again (the SMTP duplicate of RFC 1047)
        return (await transact(engine, count_queue))["messages"] == 1
    await until(only_the_stalled_one_left, within=60)
    victim = procs[0] if handler.stalled_by == "node-a.test" else procs[1]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    await until(lambda: handler.counts["stall@remote.test"] >= 1, within=60)

    async def drained() -> bool:
        return await _empty(engine)
    await until(drained, within=60)
    assert handler.counts == Counter({"stall@remote.test": 1, "other@remote.test": 1})


@pytest.mark.slow
async def test_ten_thousand_messages_drain_through_two_nodes_without_duplicates(
        nodes: tuple[StartNodes, Any], sink: Sink) -> None:
    """Issue 14: 10,000 queued messages, two node processes leasing from one queue:
    every message reaches the sink exactly once and the queue ends empty."""
    start, (engine, blobs) = nodes
    handler = sink.handler
    assert isinstance(handler, CountingHandler)
    recipients = [f"r{i}@remote.test" for i in range(10_000)]
    handler.expected = len(recipients)
    await _enqueue(engine, blobs, recipients)
    await start(("node-a", "node-b"), FDBMAIL_OUTBOUND_BATCH="100",
                FDBMAIL_OUTBOUND_CONCURRENCY_PER_DOMAIN="20")
    # the sink says when every recipient has had a delivery: polling the queue's
    # counters every 10 ms meanwhile took a share of the cluster the nodes work on
    await asyncio.wait_for(handler.all_in.wait(), 600)

    async def drained() -> bool:
        return await _empty(engine)
    await until(drained, within=60)
    assert len(handler.counts) == 10_000
    assert set(handler.counts.values()) == {1}
