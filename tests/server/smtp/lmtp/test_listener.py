"""Where LMTP listens: loopback TCP or a Unix socket, nothing else unless allowed."""

from __future__ import annotations

import asyncio
import os
import smtplib
import stat
from pathlib import Path

import pytest

from server.config import load_config
from server.smtp.lmtp import LmtpConfigError, start_lmtp
from server.smtp.lmtp.listener import TcpAddress, UnixAddress, parse_listen
from tests.server.smtp.conftest import FakeDelivery, FakeDirectory
from tests.server.smtp.lmtp.conftest import StartLmtp

MSG = b"Subject: hi\r\n\r\nhello\r\n"


def test_parse_listen() -> None:
    assert parse_listen("") is None
    assert parse_listen("127.0.0.1:24") == TcpAddress("127.0.0.1", 24)
    assert parse_listen("[::1]:0") == TcpAddress("::1", 0)
    assert parse_listen("localhost:2424") == TcpAddress("localhost", 2424)
    assert parse_listen("127.3.4.5:24") == TcpAddress("127.3.4.5", 24)
    assert parse_listen("unix:/run/fdbmail/lmtp.sock") == UnixAddress("/run/fdbmail/lmtp.sock")
    assert parse_listen("0.0.0.0:24", allow_non_loopback=True) == TcpAddress("0.0.0.0", 24)


@pytest.mark.parametrize("value", ["0.0.0.0:24", "192.0.2.1:24", "[::]:24",
                                   "mail.example.com:24", ":24"])
def test_non_loopback_refused(value: str) -> None:
    with pytest.raises(LmtpConfigError):
        parse_listen(value)


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:x", "unix:relative.sock",
                                   "127.0.0.1:70000"])
def test_malformed_listen(value: str) -> None:
    with pytest.raises(LmtpConfigError):
        parse_listen(value)


async def test_off_by_default(tmp_path: Path) -> None:
    config = load_config(None, env={})
    assert await start_lmtp(config, FakeDirectory(), FakeDelivery()) is None


async def test_non_loopback_refused_at_start(tmp_path: Path) -> None:
    config = load_config(None, env={}).with_overrides({"lmtp": {"listen": "0.0.0.0:0"}})
    with pytest.raises(LmtpConfigError, match="allow_non_loopback"):
        await start_lmtp(config, FakeDirectory(), FakeDelivery())


async def test_unix_socket(start_lmtp_server: StartLmtp, tmp_path: Path) -> None:
    path = tmp_path / "lmtp.sock"
    path.touch()                      # not a socket: left alone, and start fails
    with pytest.raises(OSError):
        await start_lmtp_server(listen=f"unix:{path}")
    path.unlink()
    h = await start_lmtp_server(listen=f"unix:{path}", socket_mode="0600")
    assert h.service.ports == {}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    def send() -> list[tuple[int, bytes]]:
        with smtplib.LMTP(str(path)) as client:     # smtplib: a host starting with "/"
            client.ehlo_or_helo_if_needed()
            client.mail("carol@remote.test")
            client.rcpt("alice@example.com")
            client.rcpt("bob@example.com")
            return [client.data(MSG), client.getreply()]
    replies = await asyncio.to_thread(send)
    assert [code for code, _ in replies] == [250, 250]
    assert h.delivery.stored["alice"] == h.delivery.stored["bob"]
    c = await h.connect()
    assert (await c.cmd("LHLO mta.test")).startswith("250-")
    await h.service.close(grace=1)
    assert not path.exists()          # removed at close


async def test_the_node_serves_lmtp_into_the_store(tmp_path: Path) -> None:
    """[lmtp] listen on the node: the real directory, pipeline and store behind it."""
    from fdb_layers.engine.run import transact
    from fdb_layers.mail import find_role
    from fdb_layers.mail import list_messages
    from server.node.node import Node
    from tests.server.smtp.test_e2e import fdbmail

    cfg = tmp_path / "fdbmail.toml"
    cfg.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\nhttp_listen = "127.0.0.1:0"\n'
                   '[imap]\nlisten = ""\ntls_listen = ""\n'
                   '[smtp]\nmx_listen = ""\nsubmission_listen = ""\nsubmissions_listen = ""\n'
                   '[lmtp]\nlisten = "127.0.0.1:0"\n')
    fdbmail(cfg, "add-domain", "example.com")
    fdbmail(cfg, "add", "alice", "--email", "alice@example.com")
    node = Node(load_config(cfg, env={}))
    await node.start()
    try:
        assert "lmtp" in node.ports and node.directory is not None
        assert node.engine is not None
        port = node.ports["lmtp"]

        def send() -> tuple[int, bytes]:
            with smtplib.LMTP("127.0.0.1", port) as client:
                client.ehlo_or_helo_if_needed()
                client.mail("carol@remote.test")
                client.rcpt("alice@example.com")
                return client.data(MSG)
        assert (await asyncio.to_thread(send))[0] == 250
        principal = await node.directory.get_principal("alice")
        assert principal is not None
        inbox = await transact(node.engine, find_role, principal.id, "inbox")
        assert inbox is not None
        assert len(await transact(node.engine, list_messages, principal.id, inbox)) == 1
    finally:
        await node.stop()
    assert node.ports == {}


async def test_the_node_refuses_a_public_lmtp_address(tmp_path: Path) -> None:
    from server.node.node import Node
    from server.node.parts import StartupError

    config = load_config(None, env={}).with_overrides({
        "server": {"data_dir": str(tmp_path / "data"), "http_listen": "127.0.0.1:0"},
        "imap": {"listen": "127.0.0.1:0", "tls_listen": "127.0.0.1:0"},
 "smtp": {"mx_listen": "", "submission_listen": "", "submissions_listen": ""},
        "lmtp": {"listen": "0.0.0.0:0"}})
    node = Node(config)
    try:
        with pytest.raises(StartupError, match="not a loopback address"):
            await node.start()
    finally:
        await node.stop()


async def test_worker_processes_serve_lmtp_on_a_unix_socket(tmp_path: Path) -> None:
    """LMTP is a registered service: with [server] workers the main process listens on
    the socket (with its mode) and a worker serves the connection, into the store."""
    from fdb_layers.engine.run import transact
    from fdb_layers.mail import find_role
    from fdb_layers.mail import list_messages
    from server.node.node import Node
    from tests.server.smtp.test_e2e import fdbmail

    path = tmp_path / "lmtp.sock"
    cfg = tmp_path / "fdbmail.toml"
    cfg.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\nhttp_listen = "127.0.0.1:0"\n'
                   'workers = 2\nlog_level = "WARNING"\n'
                   '[imap]\nlisten = ""\ntls_listen = ""\n'
                   '[smtp]\nmx_listen = ""\nsubmission_listen = ""\nsubmissions_listen = ""\n'
                   f'[lmtp]\nlisten = "unix:{path}"\nsocket_mode = "0600"\n')
    fdbmail(cfg, "add-domain", "example.com")
    fdbmail(cfg, "add", "alice", "--email", "alice@example.com")
    node = Node(load_config(cfg, env={}))
    await node.start()
    try:
        assert node.pool is not None and node.directory is not None and node.engine is not None
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

        def send() -> tuple[int, bytes]:
            with smtplib.LMTP(str(path)) as client:
                client.ehlo_or_helo_if_needed()
                client.mail("carol@remote.test")
                client.rcpt("alice@example.com")
                return client.data(MSG)
        assert (await asyncio.to_thread(send))[0] == 250
        principal = await node.directory.get_principal("alice")
        assert principal is not None
        inbox = await transact(node.engine, find_role, principal.id, "inbox")
        assert inbox is not None
        assert len(await transact(node.engine, list_messages, principal.id, inbox)) == 1
    finally:
        await node.stop()
    assert not path.exists()
