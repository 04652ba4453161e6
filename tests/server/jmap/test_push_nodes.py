"""Push across processes (DESIGN.md: "a commit in any process wakes the watches of all
of them"): two ``fdbmail serve`` node processes on one FoundationDB cluster; mail
delivered through SMTP to one, or appended through IMAP, is pushed by the other's
EventSource and WebSocket."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import json
import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.server.imap.conftest import tls_client_context
from tests.server.jmap.push import PATIENCE, EventReader
from tests.server.test_serve_command import _free_port, _stop
from tests.support.engines import FDB_SKIP_REASON

pytestmark = pytest.mark.skipif(FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or "")

ROOT = str(Path(__file__).resolve().parents[3])
PASSWORD = "pushed-across"


@dataclass
class Node:
    proc: subprocess.Popen[str]
    http: int
    mx: int
    imap: int


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[Node]]:
    """Two nodes on the test cluster (its key space cleared first), carol in the
    directory they share."""
    from fdb_layers.engine.foundationdb import FoundationDbEngine

    async def clear() -> None:
        engine = await FoundationDbEngine.open()
        tr = engine.create_transaction()
        tr.clear_range(b"", b"\xff")
        await tr.commit()
        await engine.close()

    asyncio.run(clear())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FDBMAIL_")}
    env.update(
        PYTHONPATH=ROOT, FDBMAIL_STORE_ENGINE="foundationdb",
        FDBMAIL_STORE_CLUSTER_FILE=os.environ.get("FDB_CLUSTER_FILE", ""),
        FDBMAIL_DIRECTORY_SQL_PATH=str(tmp_path / "directory.sqlite3"),
        FDBMAIL_BLOBS_FS_PATH=str(tmp_path / "blobs"),
        FDBMAIL_SMTP_SUBMISSION_LISTEN="", FDBMAIL_SMTP_SUBMISSIONS_LISTEN="",
        FDBMAIL_IMAP_TLS_LISTEN="", FDBMAIL_JMAP_AUTH_REQUIRE_TLS="false",
    )
    added = subprocess.run([sys.executable, "-m", "server.cli", "directory", "add", "carol",
                            "--email", "carol@example.test", "--password-stdin"],
                           cwd=tmp_path, env=env, input=PASSWORD + "\n", capture_output=True,
                           text=True)
    assert added.returncode == 0, added.stderr
    started: list[Node] = []
    try:
        for name in ("a", "b"):
            http, mx, imap = _free_port(), _free_port(), _free_port()
            (tmp_path / name).mkdir()
            proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"], cwd=tmp_path / name,
                env={**env, "FDBMAIL_SERVER_HTTP_LISTEN": f"127.0.0.1:{http}",
                     "FDBMAIL_SMTP_MX_LISTEN": f"127.0.0.1:{mx}",
                     "FDBMAIL_IMAP_LISTEN": f"127.0.0.1:{imap}"},
                stderr=subprocess.PIPE, text=True)
            started.append(Node(proc, http, mx, imap))
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=1).is_success:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "fdbmail serve did not answer in 30 s"
                time.sleep(0.1)
        yield started
    finally:
        for node in started:
            if node.proc.poll() is None:
                assert _stop(node.proc) == 0


def _client(node: Node) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.http}",
                             auth=("carol", PASSWORD), timeout=PATIENCE)


def _smtp(node: Node, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", node.mx, timeout=60) as smtp:
        smtp.sendmail("erin@remote.test", ["carol@example.test"],
                      f"From: erin@remote.test\r\nSubject: {subject}\r\n\r\nhi\r\n".encode())


def _append(node: Node) -> None:
    imap = imaplib.IMAP4("127.0.0.1", node.imap, timeout=30)
    imap.starttls(ssl_context=tls_client_context())
    imap.login("carol", PASSWORD)
    imap.append("INBOX", None, None, b"From: a@b.test\r\nSubject: appended\r\n\r\nhi\r\n")
    imap.logout()


def test_a_delivery_on_one_node_is_pushed_by_the_other(nodes: list[Node]) -> None:
    """RFC 8620 section 7.3 across processes: SMTP on node a, then IMAP APPEND on node
    a, each reaches an EventSource on node b (within a second of the 250 / OK)."""
    a, b = nodes

    async def run() -> list[float]:
        latencies = []
        async with _client(b) as c:
            async with c.stream("GET", "/eventsource/?types=Email&closeafter=no&ping=0") as r:
                assert r.status_code == 200
                events = EventReader(r)
                first = (await events.next()).data["changed"]
                [account] = first
                for act in (lambda: _smtp(a, "across"), lambda: _append(a)):
                    await asyncio.to_thread(act)
                    acknowledged = time.monotonic()
                    event = await events.next()
                    latencies.append(time.monotonic() - acknowledged)
                    changed = event.data["changed"][account]
                    assert changed["Email"] != first[account]["Email"]
                    first = event.data["changed"]
        return latencies

    latencies = asyncio.run(run())
    assert max(latencies) < 1.0, latencies


def test_a_websocket_push_and_a_node_stopping_under_a_stream(nodes: list[Node]) -> None:
    """RFC 8887 section 4.3.5 across processes; then node b stops (SIGTERM) while an
    EventSource is open on it: it stops cleanly and the stream ends."""
    a, b = nodes
    token = base64.b64encode(f"carol:{PASSWORD}".encode()).decode()

    async def run() -> None:
        async with connect(f"ws://127.0.0.1:{b.http}/jmap/ws", subprotocols=["jmap"],
                           additional_headers={"Authorization": f"Basic {token}"}) as ws:
            await ws.send(json.dumps({"@type": "WebSocketPushEnable", "dataTypes": None}))
            await ws.send(json.dumps({"@type": "Request", "id": "sync", "using": [
                "urn:ietf:params:jmap:core"], "methodCalls": [["Core/echo", {}, "0"]]}))
            assert json.loads(await asyncio.wait_for(ws.recv(), PATIENCE))["requestId"] \
                == "sync"
            await asyncio.to_thread(_smtp, a, "over websocket")
            change = json.loads(await asyncio.wait_for(ws.recv(), PATIENCE))
            assert change["@type"] == "StateChange" and change["pushState"]
        async with _client(b) as c:
            async with c.stream("GET", "/eventsource/?types=*&closeafter=no&ping=0") as r:
                events = EventReader(r)
                await events.next()
                code = await asyncio.to_thread(_stop, b.proc)
                assert code == 0
                with pytest.raises((EOFError, httpx.HTTPError)):
                    await events.next()

    asyncio.run(run())
