"""IMAP served by worker processes ([server] workers = 2): mail delivered by SMTP to one
worker is read over IMAP from another."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

from imapclient import IMAPClient

from tests.server.imap.conftest import PASSWORD, start_node, tls_client_context, write_config

MESSAGE = b"From: a@remote.test\r\nTo: alice@example.test\r\nSubject: w\r\n\r\nHi!\r\n"


async def test_imap_in_workers(tmp_path: Path) -> None:
    node = await start_node(write_config(tmp_path, workers=2))
    try:
        def run() -> None:
            with smtplib.SMTP("127.0.0.1", node.ports["mx"], timeout=30) as s:
                s.sendmail("a@remote.test", ["alice@example.test"], MESSAGE)
            clients = [IMAPClient("127.0.0.1", port=node.ports["imaps"], ssl=True,
                                  ssl_context=tls_client_context(), timeout=30)
                       for _ in range(3)]
            for c in clients:
                c.login("alice", PASSWORD)
                assert c.select_folder("INBOX")[b"EXISTS"] == 1
                assert "Trash" in {n for _, _, n in c.list_folders()}
            for c in clients:
                c.logout()
            plain = IMAPClient("127.0.0.1", port=node.ports["imap"], ssl=False, timeout=30)
            plain.starttls(ssl_context=tls_client_context())
            plain.login("alice", PASSWORD)
            plain.logout()
        await asyncio.to_thread(run)
    finally:
        await node.stop()
