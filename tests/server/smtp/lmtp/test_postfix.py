"""fdbmail behind a real Postfix (Debian package): mail sent to Postfix with smtplib is
relayed over LMTP (TCP, and a Unix socket) into our mailboxes, with the real SQL
directory, pipeline, sqlite store and blob folder; each recipient's reply decides what
Postfix does with it (5xx: a bounce to the sender, 4xx: deferred, delivered on retry).

Postfix logs to ``postfix.log`` in its instance folder; a failing test prints it."""

from __future__ import annotations

import asyncio
import smtplib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fdb_layers.engine.sqlite import SqliteEngine
from server.blobs import BlobStore, open_blob_store
from server.config import load_config
from server.directory import Directory, open_directory
from server.smtp.lmtp import LmtpService, start_lmtp
from tests.support.mailbox import inbox_messages
from tests.server.smtp.lmtp.postfix import Postfix, running_postfix, unavailable
from tests.server.smtp.test_e2e import FlakyDelivery, fdbmail

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))

BIG = 4000      # carl's quota is 3000 octets


def message(subject: str, size: int = 0) -> bytes:
    body = b"Hello from behind Postfix.\r\n.a leading dot\r\n" + \
        (b"x" * 76 + b"\r\n") * (size // 78)
    return (f"From: Carol <carol@example.com>\r\nTo: alice@example.com\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject}@example.com>\r\n"
            f"Date: Sat, 05 Dec 2026 12:00:00 +0000\r\n\r\n").encode() + body


@dataclass
class MailNode:
    """Our side: the LMTP service and what it delivers into; Postfix in front of it."""

    lmtp: LmtpService
    directory: Directory
    engine: SqliteEngine
    blobs: BlobStore
    delivery: FlakyDelivery
    postfix: Postfix

    async def account(self, name: str) -> str:
        principal = await self.directory.get_principal(name)
        assert principal is not None
        return principal.id

    async def inbox(self, name: str) -> list[bytes]:
        return await inbox_messages(self.engine, self.blobs, await self.account(name))

    def send(self, sender: str, rcpts: list[str], msg: bytes) -> None:
        with smtplib.SMTP("127.0.0.1", self.postfix.smtp_port, timeout=60) as client:
            assert client.sendmail(sender, rcpts, msg) == {}

    async def eventually(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        """Wait (up to a minute) until Postfix has done what ``check`` looks for."""
        for _ in range(600):
            if await check():
                return
            await asyncio.sleep(0.1)
        pytest.fail(f"{what}: not seen in 60 s; Postfix's log:\n{self.postfix.log()}")


@pytest.fixture(params=["inet", "unix"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MailNode]:
    data = tmp_path / "data"
    cfg = tmp_path / "fdbmail.toml"
    # the socket's folder: one the postfix user can reach (pytest's tmp_path is 0700)
    sockets = Path(tempfile.mkdtemp(prefix="fdbmail-lmtp-"))
    sockets.chmod(0o755)
    listen = "127.0.0.1:0" if request.param == "inet" else f"unix:{sockets}/lmtp.sock"
    cfg.write_text(f"""
[server]
data_dir = "{data}"
hostname = "mx.example.com"
[imap]
listen = ""
tls_listen = ""
[lmtp]
listen = "{listen}"
socket_mode = "0666"
[directory]
cache_ttl = 0.0
""")
    fdbmail(cfg, "add-domain", "example.com")
    fdbmail(cfg, "add", "alice", "--email", "alice@example.com")
    fdbmail(cfg, "add", "bob", "--email", "bob@example.com")
    fdbmail(cfg, "add", "carol", "--email", "carol@example.com")
    fdbmail(cfg, "add", "carl", "--email", "carl@example.com", "--quota", "3000")
    config = load_config(cfg, env={})
    engine = await SqliteEngine.open(data / "store.sqlite3")
    blobs = await open_blob_store(config)
    directory = await open_directory(config)
    delivery = FlakyDelivery(engine, blobs)
    lmtp = await start_lmtp(config, directory, delivery)
    assert lmtp is not None
    target = f"inet:127.0.0.1:{lmtp.ports['lmtp']}" if request.param == "inet" \
        else f"unix:{lmtp.unix_path}"
    try:
        with running_postfix(target, ["example.com"]) as postfix:
            yield MailNode(lmtp, directory, engine, blobs, delivery, postfix)
    finally:
        await lmtp.close(grace=1)
        await directory.close()
        await blobs.close()
        await engine.close()
        sockets.rmdir()


async def test_mail_to_postfix_lands_in_the_mailbox(node: MailNode) -> None:
    msg = message("relayed")
    await asyncio.to_thread(node.send, "someone@remote.test", ["alice@example.com"], msg)

    async def arrived() -> bool:
        return len(await node.inbox("alice")) == 1
    await node.eventually(arrived, "the message in alice's inbox")
    [raw] = await node.inbox("alice")
    assert raw.endswith(msg)                                  # body intact, dots and all
    assert raw.startswith(b"Return-Path: <someone@remote.test>\r\nReceived: from "
                          b"mta.postfix.test")
    assert b"by mx.example.com (fdbmail) with LMTP" in raw
    assert b"by mta.postfix.test (Postfix) with ESMTP" in raw  # Postfix's own trace
    assert node.postfix.queue() == []                         # nothing left at Postfix


async def test_over_quota_recipient_bounces_the_other_gets_it(node: MailNode) -> None:
    msg = message("quota", BIG)
    await asyncio.to_thread(node.send, "carol@example.com",
                            ["carl@example.com", "alice@example.com"], msg)

    async def bounced() -> bool:      # Postfix's bounce comes back to carol through LMTP
        return len(await node.inbox("carol")) == 1 and len(await node.inbox("alice")) == 1
    await node.eventually(bounced, "alice's copy and carol's bounce")
    assert (await node.inbox("alice"))[0].endswith(msg)
    assert await node.inbox("carl") == []
    [bounce] = await node.inbox("carol")
    assert b"Return-Path: <>" in bounce
    assert b"Undelivered Mail Returned to Sender" in bounce
    assert b"<carl@example.com>" in bounce and b"552 5.2.2 Mailbox full" in bounce
    assert b"Status: 5.2.2" in bounce                        # the DSN part (RFC 3464)
    assert node.postfix.queue() == []


async def test_temporary_failure_is_deferred_then_delivered(node: MailNode) -> None:
    bob = await node.account("bob")
    node.delivery.failing = {bob}                     # a store failure for bob only: 451
    msg = message("deferred")
    await asyncio.to_thread(node.send, "someone@remote.test",
                            ["alice@example.com", "bob@example.com"], msg)

    async def deferred() -> bool:
        queue = await asyncio.to_thread(node.postfix.queue)
        return len(queue) == 1 and queue[0]["queue_name"] == "deferred"
    await node.eventually(deferred, "bob's copy deferred at Postfix")
    [entry] = node.postfix.queue()
    [rcpt] = entry["recipients"]
    assert rcpt["address"] == "bob@example.com"
    assert "451 4.3.0" in rcpt["delay_reason"]
    assert len(await node.inbox("alice")) == 1 and await node.inbox("bob") == []

    node.delivery.failing = set()
    await asyncio.to_thread(node.postfix.flush)

    async def retried() -> bool:
        return len(await node.inbox("bob")) == 1
    await node.eventually(retried, "bob's copy after Postfix's retry")
    assert (await node.inbox("bob"))[0].endswith(msg)
    assert len(await node.inbox("alice")) == 1                # not stored twice
    assert node.postfix.queue() == []
