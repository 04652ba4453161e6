"""A real node on port 0 (the SQL directory, the delivery pipeline) serving IMAP with
STARTTLS and implicit TLS; accounts made with ``fdbmail directory add``.  Its store is
sqlite or this worker's FoundationDB test cluster: ``node_engine``
(tests/support/nodes.py)."""

from __future__ import annotations

import imaplib
import io
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from server.cli import main as cli
from server.config import load_config
from server.node.node import Node
from tests.support.nodes import node_engine, store_section  # noqa: F401 (a fixture)

PASSWORD = "correct horse"


def write_config(tmp_path: Path, *, workers: int = 0, require_tls: bool = True) -> Path:
    path = tmp_path / "fdbmail.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\nhttp_listen = "127.0.0.1:0"\n'
        f'workers = {workers}\nlog_level = "WARNING"\nhostname = "imap.test"\n'
        + store_section() +
        '[smtp]\nmx_listen = "127.0.0.1:0"\nsubmission_listen = ""\nsubmissions_listen = ""\n'
        '[imap]\nlisten = "127.0.0.1:0"\ntls_listen = "127.0.0.1:0"\n'
        f'auth_require_tls = {"true" if require_tls else "false"}\n')
    for user in ("alice", "bob"):
        old = sys.stdin
        sys.stdin = io.StringIO(PASSWORD + "\n")
        try:
            assert cli(["-c", str(path), "directory", "add", user, "--email",
                        f"{user}@example.test", "--password-stdin"]) == 0
        finally:
            sys.stdin = old
    return path


async def start_node(path: Path) -> Node:
    node = Node(load_config(path, env={}))
    await node.start()
    return node


def tls_client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    n = await start_node(write_config(tmp_path))
    try:
        yield n
    finally:
        await n.stop()


@pytest.fixture
def imaps(node: Node) -> Callable[[], imaplib.IMAP4_SSL]:
    """A client on the implicit-TLS port, not logged in."""
    def connect() -> imaplib.IMAP4_SSL:
        return imaplib.IMAP4_SSL("127.0.0.1", node.ports["imaps"], ssl_context=tls_client_context(),
                                 timeout=30)
    return connect
