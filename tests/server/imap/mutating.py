"""Helpers of the APPEND / COPY / MOVE / EXPUNGE tests: a logged-in byte-level client, a
mailbox filled through the node's delivery pipeline, reads of what the store holds."""

from __future__ import annotations

import imaplib
import io
import secrets
import sys
from pathlib import Path

from fdb_layers.mail import (
    DELETED,
    ensure_account,
    find_mailbox,
    get_email,
    list_messages,
    list_uids,
    store_keywords,
    transact,
)
from server.cli import main as cli
from server.delivery import DeliveryRequest, Recipient, Source, Stored
from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.test_session import Raw, raw_tls


def message(n: int, size: int = 0) -> bytes:
    body = b"body %d\r\n" % n + b"x" * size
    return (b"From: a@example.test\r\nTo: alice@example.test\r\nSubject: message %d\r\n"
            b"Message-ID: <%d.%s@example.test>\r\n\r\n" % (n, n, secrets.token_hex(4).encode())
            + body)


def login(node: Node, user: str = "alice") -> Raw:
    c = raw_tls(node)
    assert c.line().startswith(b"* OK")
    out = c.command(b'l1 LOGIN %s "%s"\r\n' % (user.encode(), PASSWORD.encode()))
    assert out[-1].startswith(b"l1 OK"), out
    return c


def client(node: Node, user: str = "alice") -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL("127.0.0.1", node.ports["imaps"], ssl_context=tls_client_context(),
                          timeout=30)
    m.login(user, PASSWORD)
    return m


def add_user(config: Path, name: str, *extra: str) -> None:
    old = sys.stdin
    sys.stdin = io.StringIO(PASSWORD + "\n")
    try:
        assert cli(["-c", str(config), "directory", "add", name, "--email",
                    f"{name}@example.test", "--password-stdin", *extra]) == 0
    finally:
        sys.stdin = old


async def account(node: Node, user: str = "alice") -> str:
    assert node.directory is not None
    principal = await node.directory.get_principal(user)
    assert principal is not None
    return principal.id


async def mailbox_id(node: Node, user: str, name: str) -> str:
    account_id = await account(node, user)
    await transact(node.engine, ensure_account, account_id, uidvalidity_seed=1000)
    box = await transact(node.engine, find_mailbox, account_id, name)
    return box.id


async def fill(node: Node, count: int, user: str = "alice", name: str = "INBOX",
               keywords: tuple[str, ...] = ()) -> list[int]:
    """``count`` messages delivered into a mailbox at once (the pipeline batches them);
    their UIDs, ascending."""
    import asyncio

    assert node.delivery is not None
    account_id = await account(node, user)
    box = await mailbox_id(node, user, name)

    async def one(n: int) -> int:
        assert node.delivery is not None
        [result] = await node.delivery.deliver(DeliveryRequest(
            Source.IMPORT, message(n), (Recipient(account_id),),
            idempotency_id="fill:" + secrets.token_hex(8), mailbox_ids=(box,),
            keywords=keywords))
        assert isinstance(result, Stored), result
        return result.mailboxes[0].uid

    return sorted(await asyncio.gather(*(one(n) for n in range(count))))


async def uids(node: Node, user: str = "alice", name: str = "INBOX") -> list[int]:
    return await transact(node.engine, list_uids, await account(node, user),
                          await mailbox_id(node, user, name))


async def stored(node: Node, uid: int, user: str = "alice",
                 name: str = "INBOX") -> tuple[bytes, float, tuple[str, ...]]:
    """The bytes (from the blob store), internal date and keywords of one message."""
    account_id = await account(node, user)
    box = await mailbox_id(node, user, name)
    [m] = await transact(node.engine, list_messages, account_id, box, first_uid=uid,
                         last_uid=uid)
    email = await transact(node.engine, get_email, account_id, m.email_id)
    assert email is not None and node.blobs is not None
    return await node.blobs.get(email.blob_id), email.received_at, m.keywords


async def mark_deleted(node: Node, marked: list[int], user: str = "alice",
                       name: str = "INBOX") -> None:
    """Set \\Deleted on these UIDs through the layer (STORE is another command's test)."""
    await transact(node.engine, store_keywords, await account(node, user),
                   await mailbox_id(node, user, name), marked, add=[DELETED])


def until_tagged(c: Raw, tag: bytes) -> list[bytes]:
    """Lines up to the tagged answer of ``tag`` (after a command sent in pieces)."""
    out = [c.line()]
    while not out[-1].startswith(tag + b" "):
        assert out[-1], out
        out.append(c.line())
    return out
