"""The delivery worker as a node service: every process of a node with worker
processes runs one; queue wake-ups (watch) bring submitted mail out without a poll;
no message reaches the sink twice."""

from __future__ import annotations

import asyncio
import io
import smtplib
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fdb_layers.engine.run import transact
from fdb_layers.queue import count_queue
from server.cli import main as cli
from server.config import load_config
from server.node.node import Node
from tests.server.outbound.sinks import Sink
from tests.support.dns import Dns, a_records
from tests.support.waiting import until


def fdbmail(config_path: Path, *args: str, stdin: str = "") -> None:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        assert cli(["-c", str(config_path), "directory", *args]) == 0
    finally:
        sys.stdin = old


@pytest.fixture(params=[0, 2], ids=["one-process", "workers"])
async def node(request: pytest.FixtureRequest, tmp_path: Path, dns_server: Dns,
               mx: Sink) -> AsyncIterator[Node]:
    dns_server.set({("remote.test", "MX"): ["10 mx1.remote.test."],
                    **a_records(["mx1.remote.test"])})
    cfg = tmp_path / "fdbmail.toml"
    cfg.write_text(f"""
[server]
data_dir = "{tmp_path / 'data'}"
hostname = "mx.example.com"
workers = {request.param}
http_listen = "127.0.0.1:0"
[imap]
listen = ""
tls_listen = ""
[smtp]
mx_listen = "127.0.0.1:0"
submission_listen = "127.0.0.1:0"
submissions_listen = ""
[directory]
cache_ttl = 0.0
[outbound]
resolver = "127.0.0.1:{dns_server.port}"
port = {mx.port}
poll_seconds = 3600.0
""")
    fdbmail(cfg, "add-domain", "example.com")
    fdbmail(cfg, "add", "alice", "--email", "alice@example.com", "--password-stdin",
            stdin="wonderland\n")
    app = Node(load_config(cfg, env={}))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def submit_many(port: int, count: int) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.starttls(context=ctx)
        s.login("alice", "wonderland")
        for i in range(count):
            s.sendmail("alice@example.com", [f"r{i}@remote.test"],
                       f"From: alice@example.com\r\nSubject: {i}\r\n\r\nbody {i}\r\n".encode())


async def test_submitted_mail_is_sent_once_by_the_node(node: Node, mx: Sink) -> None:
    await asyncio.to_thread(submit_many, node.ports["submission"], 12)
    await until(lambda: len(mx.received) >= 12, within=60, what="12 deliveries")
    recipients = sorted(r for got in mx.received for r in got.recipients)
    assert recipients == sorted(f"r{i}@remote.test" for i in range(12))   # none twice
    assert node.engine is not None

    async def drained() -> bool:
        assert node.engine is not None
        return (await transact(node.engine, count_queue))["messages"] == 0

    await until(drained, what="the queue drained")
