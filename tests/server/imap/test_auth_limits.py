"""Failed-login limits (issue 12, "Robustness and security"; the mechanism SMTP AUTH uses,
server/sasl/limits.py): past the per-client limit LOGIN and AUTHENTICATE get
NO [UNAVAILABLE] (RFC 5530 section 3) before the directory is asked, while a client at
another address is unaffected; past the per-login limit that login is refused from
anywhere, other logins are not; a password changed in the directory takes effect at once
despite the credential cache."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.cli import main as cli
from server.node.node import Node
from tests.server.imap.conftest import start_node, tls_client_context, write_config
from tests.server.imap.test_session import Raw


def _node_config(tmp_path: Path, per_ip: int, per_account: int) -> Path:
    path = write_config(tmp_path)
    with path.open("a") as f:        # the [imap] section is the file's last
        f.write(f"auth_failures_per_ip = {per_ip}\nauth_failures_per_account = {per_account}\n")
    return path


@pytest.fixture
async def limited(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    per_ip, per_account = request.param
    n = await start_node(_node_config(tmp_path, per_ip, per_account))
    try:
        yield n
    finally:
        await n.stop()


def connect(node: Node, source: str = "127.0.0.1") -> Raw:
    sock = socket.create_connection(("127.0.0.1", node.ports["imaps"]), timeout=30,
                                    source_address=(source, 0))
    c = Raw(tls_client_context().wrap_socket(sock))
    assert c.line().startswith(b"* OK")
    return c


def plain(user: str, password: str) -> bytes:
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())


@pytest.mark.parametrize("limited", [(3, 0)], indirect=True)
async def test_per_client_limit_and_another_client_unaffected(limited: Node) -> None:
    def run() -> None:
        c = connect(limited)
        for _ in range(3):
            out = c.command(b'a LOGIN alice "wrong"\r\n')
            assert out[-1].startswith(b"a NO [AUTHENTICATIONFAILED]"), out
        # the limit: even the right password is refused now, and AUTHENTICATE too
        out = c.command(b'a LOGIN alice "correct horse"\r\n')
        assert out[-1].startswith(b"a NO [UNAVAILABLE]"), out
        out = c.command(b"b AUTHENTICATE PLAIN " + plain("alice", "correct horse") + b"\r\n")
        assert out[-1].startswith(b"b NO [UNAVAILABLE]"), out
        assert c.command(b"n NOOP\r\n")[-1].startswith(b"n OK")      # the session lives
        # a new connection from the same client is limited as well
        c2 = connect(limited)
        out = c2.command(b'a LOGIN bob "correct horse"\r\n')
        assert out[-1].startswith(b"a NO [UNAVAILABLE]"), out
        c2.close()
        # another client address logs in
        other = connect(limited, "127.0.0.2")
        assert other.command(b'a LOGIN alice "correct horse"\r\n')[-1].startswith(b"a OK")
        other.close()
        c.close()
    await asyncio.to_thread(run)


@pytest.mark.parametrize("limited", [(0, 2)], indirect=True)
async def test_per_login_limit_from_any_client(limited: Node) -> None:
    def run() -> None:
        a = connect(limited)
        b = connect(limited, "127.0.0.3")
        assert a.command(b'a LOGIN alice "wrong"\r\n')[-1].startswith(b"a NO [AUTH")
        out = b.command(b"b AUTHENTICATE PLAIN " + plain("alice", "guess") + b"\r\n")
        assert out[-1].startswith(b"b NO [AUTHENTICATIONFAILED]"), out
        for c in (a, b):
            out = c.command(b'a LOGIN alice "correct horse"\r\n')
            assert out[-1].startswith(b"a NO [UNAVAILABLE]"), out
        # AUTHENTICATE without an initial response: refused once the login name is known
        b.send(b"c AUTHENTICATE PLAIN\r\n")
        assert b.line().startswith(b"+")
        b.send(plain("alice", "correct horse") + b"\r\n")
        assert b.line().startswith(b"c NO [UNAVAILABLE]")
        # other logins are not limited
        assert a.command(b'a LOGIN bob "correct horse"\r\n')[-1].startswith(b"a OK")
        a.close()
        b.close()
    await asyncio.to_thread(run)


async def test_password_change_takes_effect_at_once(node: Node, tmp_path: Path) -> None:
    def login(password: str) -> bytes:
        c = connect(node)
        out = c.command(b'a LOGIN alice "' + password.encode() + b'"\r\n')
        c.close()
        return out[-1]

    def run() -> None:
        assert login("correct horse").startswith(b"a OK")
        assert login("correct horse").startswith(b"a OK")        # (from the cache)
        old = sys.stdin
        sys.stdin = io.StringIO("new battery\n")
        try:
            assert cli(["-c", str(tmp_path / "fdbmail.toml"), "directory", "passwd", "alice",
                        "--password-stdin"]) == 0
        finally:
            sys.stdin = old
        assert login("correct horse").startswith(b"a NO [AUTHENTICATIONFAILED]")
        assert login("new battery").startswith(b"a OK")
    await asyncio.to_thread(run)


async def test_failures_count_across_imap_and_smtp(tmp_path: Path) -> None:
    """One node, one count per client: failures over IMAP and over SMTP AUTH add up, each
    protocol applying its own threshold (server/sasl/limits.py FailureLog)."""
    import smtplib

    path = _node_config(tmp_path, 3, 0)
    text = path.read_text().replace(
        'submission_listen = ""',
        'submission_listen = "127.0.0.1:0"\nauth_require_tls = false\nauth_failures_per_ip = 3')
    path.write_text(text)
    node = await start_node(path)
    try:
        def run() -> None:
            c = connect(node)
            for _ in range(2):
                assert c.command(b'a LOGIN alice "wrong"\r\n')[-1].startswith(b"a NO [AUTH")
            with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=30) as s:
                s.ehlo("client.test")
                code, _ = s.docmd("AUTH", "PLAIN " + plain("alice", "nope").decode())
                assert code == 535
            # 2 over IMAP + 1 over SMTP: this client is at IMAP's limit of 3
            out = c.command(b'a LOGIN alice "correct horse"\r\n')
            assert out[-1].startswith(b"a NO [UNAVAILABLE]"), out
            with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=30) as s:
                s.ehlo("client.test")
                code, _ = s.docmd("AUTH", "PLAIN " + plain("alice", "correct horse").decode())
                assert code == 421                       # and at SMTP's
            c.close()
        await asyncio.to_thread(run)
    finally:
        await node.stop()
