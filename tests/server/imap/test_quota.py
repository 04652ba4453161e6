"""QUOTA (RFC 9208) through a real node with imapclient and raw commands: the limit is the
directory's, usage the mailbox layer's, STORAGE in units of 1024 octets
(section 5.1), SETQUOTA refused, an account without a limit has no quota root."""

from __future__ import annotations

import asyncio
import io
import smtplib
import sys
from pathlib import Path

from imapclient import IMAPClient

from server.cli import main as cli
from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.test_session import raw_tls

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

LIMIT = 5 * 1024 * 1024


def add_account(tmp_path: Path, name: str, *extra: str) -> None:
    old = sys.stdin
    sys.stdin = io.StringIO(PASSWORD + "\n")
    try:
        assert cli(["-c", str(tmp_path / "fdbmail.toml"), "directory", "add", name, "--email",
                    f"{name}@example.test", "--password-stdin", *extra]) == 0
    finally:
        sys.stdin = old


def client(node: Node, user: str) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=node.ports["imaps"], ssl=True,
                   ssl_context=tls_client_context(), timeout=30)
    c.login(user, PASSWORD)
    return c


async def test_quota_root_usage_and_limit(node: Node, tmp_path: Path) -> None:
    add_account(tmp_path, "carol", "--quota", str(LIMIT))

    def run() -> None:
        c = client(node, "carol")
        assert {b"QUOTA", b"QUOTA=RES-STORAGE"} <= set(c.capabilities())
        roots, quotas = c.get_quota_root("INBOX")
        assert roots.mailbox == "INBOX" and roots.quota_roots == [""]
        assert [(q.quota_root, q.resource, q.usage, q.limit) for q in quotas] == \
            [("", "STORAGE", 0, LIMIT // 1024)]
        body = b"Subject: big\r\n\r\n" + b"x" * 300_000 + b"\r\n"
        with smtplib.SMTP("127.0.0.1", node.ports["mx"], timeout=30) as s:
            s.sendmail("someone@remote.test", ["carol@example.test"], body)
        quotas = c.get_quota("INBOX")     # imapclient: the quotas of INBOX's roots
        [(resource, usage, limit)] = [(q.resource, q.usage, q.limit) for q in quotas]
        assert (resource, limit) == ("STORAGE", LIMIT // 1024)
        # the stored message is the body plus the trace headers delivery adds
        assert len(body) // 1024 <= usage <= len(body) // 1024 + 2
        c.logout()
    await asyncio.to_thread(run)


async def test_quota_raw_responses(node: Node, tmp_path: Path) -> None:
    add_account(tmp_path, "dave", "--quota", str(LIMIT))

    def run() -> None:
        c = raw_tls(node)
        c.line()
        c.command(b'l LOGIN dave "correct horse"\r\n')
        # RFC 9208 section 4.1.2 example shape
        out = c.command(b"q GETQUOTAROOT inbox\r\n")
        assert out == [b'* QUOTAROOT INBOX ""\r\n', b'* QUOTA "" (STORAGE 0 5120)\r\n',
                       b"q OK GETQUOTAROOT completed\r\n"]
        out = c.command(b'g GETQUOTA ""\r\n')
        assert out == [b'* QUOTA "" (STORAGE 0 5120)\r\n', b"g OK GETQUOTA completed\r\n"]
        # a root that does not exist: NO (section 4.1.1)
        assert c.command(b'g GETQUOTA "other"\r\n')[-1].startswith(b"g NO [NONEXISTENT]")
        # a mailbox that does not exist: NO
        assert c.command(b"q GETQUOTAROOT Nope\r\n")[-1].startswith(b"q NO [NONEXISTENT]")
        # SETQUOTA: the directory sets limits, not the client (section 4.1.3)
        out = c.command(b'x SETQUOTA "" (STORAGE 10)\r\n')
        assert out[-1].startswith(b"x NO [NOPERM]"), out
        assert c.command(b"x SETQUOTA\r\n")[-1].startswith(b"x BAD")
        out = c.command(b'g GETQUOTA ""\r\n')        # unchanged
        assert out[0] == b'* QUOTA "" (STORAGE 0 5120)\r\n'
        c.close()
    await asyncio.to_thread(run)


async def test_account_without_a_limit_has_no_quota_root(node: Node) -> None:
    def run() -> None:
        c = raw_tls(node)
        c.line()
        c.command(b'l LOGIN alice "correct horse"\r\n')
        out = c.command(b"q GETQUOTAROOT INBOX\r\n")
        assert out == [b"* QUOTAROOT INBOX\r\n", b"q OK GETQUOTAROOT completed\r\n"]
        assert c.command(b'g GETQUOTA ""\r\n')[-1].startswith(b"g NO [NONEXISTENT]")
        # not authenticated: BAD
        c2 = raw_tls(node)
        c2.line()
        assert c2.command(b"q GETQUOTAROOT INBOX\r\n")[-1].startswith(b"q BAD")
        c2.close()
        c.close()
    await asyncio.to_thread(run)


async def test_status_deleted_and_deleted_storage(node: Node) -> None:
    """RFC 9208 section 4.2.2 DELETED-STORAGE (what EXPUNGE would free, in 1024-octet
    units) and RFC 9051 STATUS DELETED."""
    from fdb_layers.mail import find_mailbox, store_keywords, transact

    body = b"Subject: s\r\n\r\n" + b"y" * 20_000 + b"\r\n"

    def deliver() -> None:
        with smtplib.SMTP("127.0.0.1", node.ports["mx"], timeout=30) as s:
            for i in range(3):
                s.sendmail("someone@remote.test", ["alice@example.test"],
                           b"Message-ID: <d%d@remote.test>\r\n" % i + body)

    await asyncio.to_thread(deliver)

    def status() -> list[bytes]:
        c = raw_tls(node)
        c.line()
        c.command(b'l LOGIN alice "correct horse"\r\n')
        out = c.command(b"s STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)\r\n")
        c.close()
        return out

    out = await asyncio.to_thread(status)
    assert out == [b"* STATUS INBOX (MESSAGES 3 DELETED 0 DELETED-STORAGE 0)\r\n",
                   b"s OK STATUS completed\r\n"]
    assert node.engine is not None and node.directory is not None
    alice = await node.directory.get_principal("alice")
    assert alice is not None
    inbox = await transact(node.engine, find_mailbox, alice.id, "INBOX")
    await transact(node.engine, store_keywords, alice.id, inbox.id, [1, 3], add=["$deleted"])
    out = await asyncio.to_thread(status)
    line = out[0].decode()
    assert line.startswith("* STATUS INBOX (MESSAGES 3 DELETED 2 DELETED-STORAGE ")
    storage = int(line.rsplit(" ", 1)[1].rstrip(")\r\n"))
    assert 2 * len(body) // 1024 <= storage <= 2 * len(body) // 1024 + 3
