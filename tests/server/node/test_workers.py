"""A node with worker processes ([server] workers): real processes, real SMTP clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import smtplib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fdb_layers.engine.run import transact
from fdb_layers.mail.mailboxes import find_role
from fdb_layers.mail.queries import list_messages
from server.node.node import Node
from server.cli import main as cli
from server.config import load_config
from tests.support.metrics import assert_promtool_accepts
from server.node.pool import WorkerPool
from server.smtp.limits import Limits
from server.smtp.service import SmtpNodeService

MESSAGE = (b"From: someone@remote.test\r\nTo: alice@example.test\r\nSubject: %d\r\n"
           b"Message-ID: <w%d@remote.test>\r\n\r\nHi!\r\n")


def _config_file(tmp_path: Path, extra: str = "", submission: str = "") -> Path:
    path = tmp_path / "fdbmail.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\nhttp_listen = "127.0.0.1:0"\n'
        'workers = 2\nlog_level = "WARNING"\n'
        '[imap]\nlisten = "127.0.0.1:0"\ntls_listen = "127.0.0.1:0"\n'
        f'[smtp]\nmx_listen = "127.0.0.1:0"\nsubmission_listen = "{submission}"\n'
        'submissions_listen = "127.0.0.1:0"\n' + extra)
    assert cli(["-c", str(path), "directory", "add", "alice",
                "--email", "alice@example.test"]) == 0
    return path


async def _started(path: Path) -> Node:
    node = Node(load_config(path, env={}))
    await node.start()
    return node


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    n = await _started(_config_file(tmp_path))
    try:
        yield n
    finally:
        await n.stop()


def _pool(node: Node) -> WorkerPool:
    assert isinstance(node.pool, WorkerPool)
    return node.pool


def _smtp_limits(node: Node) -> Limits:
    """The main process's SMTP limits: told every worker's failures."""
    service, = (s for s in node.services if isinstance(s, SmtpNodeService))
    return service.setup.limits


async def _inbox_subjects(node: Node) -> int:
    assert node.directory is not None and node.engine is not None
    principal = await node.directory.get_principal("alice")
    assert principal is not None

    async def inbox(tr):  # type: ignore[no-untyped-def]
        mailbox_id = await find_role(tr, principal.id, "inbox")
        return [] if mailbox_id is None else await list_messages(tr, principal.id, mailbox_id)

    return len(await transact(node.engine, inbox))


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"220")
    return reader, writer


def _send(port: int, first: int, count: int) -> None:
    for i in range(first, first + count):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("someone@remote.test", ["alice@example.test"], MESSAGE % (i, i))


async def test_connections_are_spread_over_workers_and_mail_lands(node: Node) -> None:
    pool = _pool(node)
    assert len(pool.pids()) == 2 and os.getpid() not in pool.pids()
    port = pool.ports["mx"]
    # connections open at the same time go to different workers (fewest connections first)
    await asyncio.gather(*(asyncio.to_thread(_send, port, i * 10, 5) for i in range(4)))
    assert await _inbox_subjects(node) == 20

    assert node.http is not None
    async with httpx.AsyncClient() as client:
        health = (await client.get(f"http://127.0.0.1:{node.http.port}/healthz")).json()
        text = (await client.get(f"http://127.0.0.1:{node.http.port}/metrics")).text
    assert health == {"status": "ok", "checks": {"store": "ok", "workers": "ok"}}
    served = {}
    for line in text.splitlines():
        if line.startswith("fdbmail_smtp_messages_total{") and 'result="accepted"' in line:
            process = line.split('process="')[1].split('"')[0]
            served[process] = float(line.rsplit(" ", 1)[1])
    # (this test process's own registry may hold other tests' SMTP counts, as "main")
    workers = {k: v for k, v in served.items() if k != "main"}
    assert set(workers) == {"worker-0", "worker-1"} and sum(workers.values()) == 20
    assert 'fdbmail_store_transactions_total{engine="sqlite",process="main",' in text
    assert_promtool_accepts(text)


def _owners(port: int, pids: list[int]) -> dict[int, int]:
    """How many established TCP connections to local ``port`` each of ``pids`` holds
    (/proc/net/tcp's socket inodes, matched against each process's open files)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            inodes.add(f"socket:[{fields[9]}]")
    out = {}
    for pid in pids:
        out[pid] = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(FileNotFoundError):  # closed meanwhile
                out[pid] += os.readlink(fd) in inodes
    return out


async def test_http_connections_are_spread_over_the_workers(node: Node) -> None:
    """Each worker serves HTTP on a socket of its own on the node's port (SO_REUSEPORT),
    so that a burst of clients does not land in the first process woken: 30 connections
    opened at once are each answered, each worker holds some (the chance that one holds
    none is about 1 in 500,000,000) and the main process none (it serves no connection
    itself: one process per core)."""
    assert node.http is not None
    port = node.http.port
    streams = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port)
                                     for _ in range(30)))
    try:
        for _, writer in streams:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n")
        for reader, _ in streams:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            assert head.startswith(b"HTTP/1.1 200 ")
        workers = _pool(node).pids()
        owners = _owners(port, [os.getpid(), *workers])
        assert sum(owners.values()) == 30 and owners[os.getpid()] == 0, owners
        assert all(owners[pid] for pid in workers), owners
    finally:
        for _, writer in streams:
            writer.close()


async def test_implicit_tls_is_served_by_a_worker(node: Node) -> None:
    port = _pool(node).ports["submissions"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def ehlo() -> int:
        with smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=30) as client:
            return client.ehlo()[0]

    assert await asyncio.to_thread(ehlo) == 250


async def test_a_killed_worker_is_replaced_and_nothing_acknowledged_is_lost(
        node: Node) -> None:
    pool = _pool(node)
    port = pool.ports["mx"]
    await asyncio.to_thread(_send, port, 0, 4)
    victim = pool.pids()[0]
    held = [await _connect(port) for _ in range(2)]  # one on each worker
    os.kill(victim, signal.SIGKILL)
    for _ in range(100):  # unhealthy until it is replaced
        try:
            await pool.check()
        except RuntimeError as e:
            assert "1 of 2" in str(e)
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("a killed worker left the node healthy")
    for _ in range(200):
        pids = pool.pids()
        if victim not in pids and len(pids) == 2 and all(
                w is not None and w.ready.done() for w in pool._workers):
            break
        await asyncio.sleep(0.05)
    assert victim not in pool.pids() and len(pool.pids()) == 2
    await pool.check()
    from prometheus_client import REGISTRY
    assert (REGISTRY.get_sample_value("fdbmail_worker_restarts_total") or 0) >= 1
    await asyncio.to_thread(_send, port, 10, 6)
    assert await _inbox_subjects(node) == 10
    lost = 0
    for reader, writer in held:  # the victim's is gone; the other still talks
        writer.write(b"NOOP\r\n")
        try:
            reply = await asyncio.wait_for(reader.readline(), 10)
        except ConnectionError:
            reply = b""
        lost += not reply.startswith(b"250")
        writer.close()
    assert lost == 1


async def test_connection_limits_hold_for_the_whole_node(tmp_path: Path) -> None:
    node = await _started(_config_file(tmp_path, "max_connections_per_ip = 2\n"))
    try:
        port = _pool(node).ports["mx"]
        opened = [await _connect(port) for _ in range(2)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"421")
        writer.close()  # two workers, but one node's limit
        opened.pop()[1].close()  # the worker tells the main process the connection ended
        for _ in range(100):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            greeting = await asyncio.wait_for(reader.readline(), 10)
            writer.close()
            if greeting.startswith(b"220"):
                break
            await asyncio.sleep(0.05)
        assert greeting.startswith(b"220")
        for _, w in opened:
            w.close()
    finally:
        await node.stop()


async def test_large_and_small_bodies_from_workers_are_stored_whole(node: Node) -> None:
    """A worker writes blobs itself: small ones into the pack file it shares with
    the other processes, larger ones as files."""
    from fdb_layers.mail.queries import get_email

    pool = _pool(node)
    port = pool.ports["mx"]
    bodies = {size: b"x" * 70 + b"\r\n" for size in (240_000, 600_000)}

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            for size, line in bodies.items():
                client.sendmail("someone@remote.test", ["alice@example.test"],
                                b"Subject: big %d\r\n\r\n" % size + line * (size // len(line)))

    await asyncio.to_thread(send)
    assert node.directory is not None and node.engine is not None and node.blobs is not None
    principal = await node.directory.get_principal("alice")
    assert principal is not None

    async def sizes(tr):  # type: ignore[no-untyped-def]
        mailbox_id = await find_role(tr, principal.id, "inbox")
        out = []
        for m in await list_messages(tr, principal.id, mailbox_id):
            email = await get_email(tr, principal.id, m.email_id)
            out.append((email.blob_id, email.size))
        return out

    stored = await transact(node.engine, sizes)
    assert len(stored) == 2
    for blob_id, size in stored:
        data = await node.blobs.get(blob_id)
        assert len(data) == size and data.startswith(b"Return-Path: ")
        assert data.endswith(b"x" * 70 + b"\r\n")
    assert sorted(s for _, s in stored)[0] < 256 * 1024 < sorted(s for _, s in stored)[1]


async def test_auth_failure_limit_holds_for_the_whole_node(tmp_path: Path) -> None:
    """Failures on one worker count on the other: a client cannot get N times the
    limit by spreading its guesses over connections that land on different workers."""
    import base64

    node = await _started(_config_file(
        tmp_path, "auth_failures_per_ip = 2\nauth_require_tls = false\n",
        submission="127.0.0.1:0"))
    try:
        pool = _pool(node)
        port = pool.ports["submission"]
        guess = "AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong").decode() + "\r\n"

        async def auth(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> bytes:
            reader, writer = conn
            writer.write(guess.encode())
            while True:
                line = await asyncio.wait_for(reader.readline(), 10)
                if line[3:4] != b"-":
                    return line

        first, second = await _connect(port), await _connect(port)  # one on each worker
        for conn in (first, second):
            conn[1].write(b"EHLO client.test\r\n")
            while (await asyncio.wait_for(conn[0].readline(), 10))[3:4] == b"-":
                pass
        assert (await auth(first)).startswith(b"535")
        assert (await auth(second)).startswith(b"535")
        for _ in range(100):  # the main process has heard of both, and told the workers
            if _smtp_limits(node).auth_blocked("127.0.0.1"):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert (await auth(first)).startswith(b"421 4.7.0")  # 1 failure on its own worker
        for _, writer in (first, second):
            writer.close()
    finally:
        await node.stop()


async def test_stopping_while_a_worker_is_replaced_leaves_no_process(tmp_path: Path) -> None:
    from server.node import pool as pool_module

    node = await _started(_config_file(tmp_path))
    pool = _pool(node)
    victim = pool.pids()[0]
    os.kill(victim, signal.SIGKILL)
    for _ in range(200):  # until the pool has seen it die (and waits to start another)
        if victim not in pool.pids():
            break
        await asyncio.sleep(0.01)
    await node.stop()
    await asyncio.sleep(pool_module.RESTART_DELAY + 0.5)

    def workers_alive() -> list[int]:
        alive = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if (int(fields[1]) == os.getpid() and fields[0] != "Z"
                    and b"server.node.worker" in cmdline):
                alive.append(int(entry.name))
        return alive

    assert workers_alive() == []


async def test_implicit_tls_limits_count_at_accept_and_handshakes_are_bounded(
        tmp_path: Path) -> None:
    """Issue 10, item 13, on a node with workers: a TLS port refuses over the limit
    without plaintext, and a connection that never does its handshake gives its place
    back after tls_handshake_timeout."""
    node = await _started(_config_file(
        tmp_path, "max_connections_per_ip = 2\ntls_handshake_timeout = 0.3\n"))
    try:
        port = _pool(node).ports["submissions"]
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 10) == b""   # no "421" in clear
        writer.close()
        for r, w in held:  # closed by the workers once their handshake time is up
            assert await asyncio.wait_for(r.read(), 10) == b""
            w.close()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

        def ehlo() -> int:
            with smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=30) as client:
                return client.ehlo()[0]

        for _ in range(100):  # the main process hears that the places are free
            if not _pool(node).limits.open_connections:
                break
            await asyncio.sleep(0.02)
        assert await asyncio.to_thread(ehlo) == 250
    finally:
        await node.stop()


async def test_unknown_recipient_limit_holds_for_the_whole_node(tmp_path: Path) -> None:
    """Issue 10, item 15: unknown recipients on one worker count on the other."""
    node = await _started(_config_file(
        tmp_path, "unknown_recipients_per_ip = 2\nunknown_recipient_delay = 0.0\n"))
    try:
        pool = _pool(node)
        port = pool.ports["mx"]

        async def cmd(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                      line: str) -> bytes:
            conn[1].write(line.encode() + b"\r\n")
            while True:
                reply = await asyncio.wait_for(conn[0].readline(), 10)
                if reply[3:4] != b"-":
                    return reply

        first, second = await _connect(port), await _connect(port)  # one on each worker
        for conn in (first, second):
            await cmd(conn, "EHLO client.test")
            await cmd(conn, "MAIL FROM:<x@remote.test>")
        assert (await cmd(first, "RCPT TO:<nobody@example.test>")).startswith(b"550")
        assert (await cmd(second, "RCPT TO:<nobody@example.test>")).startswith(b"550")
        for _ in range(100):
            if _smtp_limits(node).harvest_blocked("127.0.0.1"):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert (await cmd(first, "RCPT TO:<alice@example.test>")).startswith(b"421 4.7.0")
        for _, writer in (first, second):
            writer.close()
    finally:
        await node.stop()
