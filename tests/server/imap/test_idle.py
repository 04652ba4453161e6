"""IDLE (RFC 2177, RFC 9051 section 6.3.13): ``+ idling``, changes pushed while idling,
DONE ends it with the tagged OK; wake-ups through the store's watch, so that a delivery in
another node process shows in the IDLE."""

from __future__ import annotations

import asyncio
from pathlib import Path

from imapclient import IMAPClient

from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, start_node, tls_client_context, write_config
from tests.server.imap.sync_helpers import Raw, deliver, other_expunges, other_stores

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py


async def test_raw_idle_pushes_flags_expunge_and_new_mail_then_done(node: Node) -> None:
    await asyncio.to_thread(deliver, node, 1, 2)
    raw = await asyncio.to_thread(Raw, node)
    try:
        await asyncio.to_thread(raw.command, b"s SELECT INBOX\r\n")
        raw.send(b"i IDLE\r\n")
        assert await asyncio.to_thread(raw.line) == b"+ idling\r\n"
        await other_stores(node, [2], add=("$seen",))
        assert await asyncio.to_thread(raw.line) == b"* 2 FETCH (FLAGS (\\Seen) UID 2)\r\n"
        await other_expunges(node, [1])
        assert await asyncio.to_thread(raw.line) == b"* 1 EXPUNGE\r\n"
        await asyncio.to_thread(deliver, node, 3)
        assert await asyncio.to_thread(raw.line) == b"* 2 EXISTS\r\n"
        raw.send(b"DONE\r\n")
        assert await asyncio.to_thread(raw.line) == b"i OK IDLE terminated\r\n"
        # the session goes on in the command mode
        assert await asyncio.to_thread(raw.command, b"n NOOP\r\n") == [b"n OK NOOP completed\r\n"]
    finally:
        raw.close()


async def test_idle_without_a_selected_mailbox_and_idle_garbage(node: Node) -> None:
    raw = await asyncio.to_thread(Raw, node)
    try:
        raw.send(b"i IDLE\r\n")
        assert await asyncio.to_thread(raw.line) == b"+ idling\r\n"
        raw.send(b"NOT DONE\r\n")          # anything but DONE is refused, IDLE goes on
        assert (await asyncio.to_thread(raw.line)).startswith(b"* BAD")
        raw.send(b"done\r\n")
        assert await asyncio.to_thread(raw.line) == b"i OK IDLE terminated\r\n"
    finally:
        raw.close()


def _imapclient(node: Node) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=node.ports["imaps"], ssl=True,
                   ssl_context=tls_client_context(), timeout=30)
    c.login("alice", PASSWORD)
    return c


async def test_imapclient_idle_check_sees_a_delivery(node: Node) -> None:
    def run() -> None:
        c = _imapclient(node)
        assert b"IDLE" in c.capabilities()
        c.select_folder("INBOX")
        c.idle()
        deliver(node, 1)
        got = c.idle_check(timeout=10)
        assert (1, b"EXISTS") in got
        c.idle_done()
        c.logout()
    await asyncio.to_thread(run)


async def test_idle_in_worker_processes_sees_smtp_delivery_in_another(tmp_path: Path) -> None:
    """[server] workers = 2: connections are spread over the worker processes; every IDLE
    sees a delivery made through SMTP, wherever it ran, within a second or so (the
    store's watch, pushed across processes by the commit server)."""
    node = await start_node(write_config(tmp_path, workers=2))
    try:
        def run() -> None:
            clients = [_imapclient(node) for _ in range(6)]
            for c in clients:
                c.select_folder("INBOX")
                c.idle()
            deliver(node, 1)
            for c in clients:
                got = c.idle_check(timeout=5)
                assert (1, b"EXISTS") in got, got
                c.idle_done()
                c.logout()
        await asyncio.to_thread(run)
    finally:
        await node.stop()
