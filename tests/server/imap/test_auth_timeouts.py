"""Idle timeouts (RFC 9051 section 5.4; issue 12): before login a short one (``[imap]
login_timeout``), after login at least 30 minutes (``[imap] timeout``); a connection that
times out gets ``* BYE`` and is closed, and the node goes on serving."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.config import load_config
from server.imap.settings import ImapSettings
from server.node.node import Node
from tests.server.imap.conftest import start_node, write_config
from tests.server.imap.test_auth_limits import connect


@pytest.fixture
async def impatient(tmp_path: Path) -> AsyncIterator[Node]:
    path = write_config(tmp_path)
    with path.open("a") as f:        # the [imap] section is the file's last
        f.write("login_timeout = 0.5\n")
    n = await start_node(path)
    try:
        yield n
    finally:
        await n.stop()


async def test_bye_when_idle_before_login(impatient: Node) -> None:
    def run() -> None:
        c = connect(impatient)
        line = c.line()                      # nothing sent: the server ends it
        assert line.startswith(b"* BYE"), line
        assert c.line() == b""               # and closes
        c.close()
        c2 = connect(impatient)              # the node still serves
        assert c2.command(b"n NOOP\r\n")[-1].startswith(b"n OK")
        c2.close()
    await asyncio.to_thread(run)


async def test_the_login_timeout_ends_at_login(impatient: Node) -> None:
    def run() -> None:
        c = connect(impatient)
        assert c.command(b'a LOGIN alice "correct horse"\r\n')[-1].startswith(b"a OK")
        time.sleep(1.5)    # three login timeouts: an authenticated session has 30 minutes
        assert c.command(b"n NOOP\r\n")[-1].startswith(b"n OK")
        c.close()
    await asyncio.to_thread(run)


def test_the_authenticated_timeout_is_at_least_30_minutes(tmp_path: Path) -> None:
    # RFC 9051 section 5.4: the autologout timer is at least 30 minutes
    assert ImapSettings().timeout == 1800.0
    path = write_config(tmp_path)
    with path.open("a") as f:
        f.write("timeout = 60\n")
    with pytest.raises(Exception, match="timeout"):
        load_config(path, env={}).get(ImapSettings)
