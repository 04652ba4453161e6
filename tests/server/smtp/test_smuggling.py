"""SMTP smuggling on the wire: a bare-LF "end of data" neither ends the message nor runs
the commands that follow it; the whole message is refused."""

from __future__ import annotations

import pytest

from tests.server.smtp.conftest import StartHarness


@pytest.mark.parametrize("ending", [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n"])
async def test_smuggled_message_is_refused(start: StartHarness, ending: bytes) -> None:
    h = await start()
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(b"Subject: first\r\n\r\nhello" + ending
                 + b"MAIL FROM:<admin@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
                 + b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
    assert (await c.reply()).startswith("550 5.6.0")
    assert await c.cmd("NOOP") == "250 2.0.0 OK"        # nothing else was queued up
    assert h.delivery.calls == []


async def test_normalize_policy_keeps_one_message(start: StartHarness) -> None:
    h = await start(bare_line_endings="normalize")
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    await c.cmd("DATA")
    await c.send(b"Subject: first\r\n\r\nhello\n.\nMAIL FROM:<admin@example.com>\r\n.\r\n")
    assert (await c.reply()).startswith("250")
    assert await c.cmd("NOOP") == "250 2.0.0 OK"
    [raw] = h.delivery.stored["alice"]
    assert raw.endswith(b"hello\r\n.\r\nMAIL FROM:<admin@example.com>\r\n")
    assert "bob" not in h.delivery.stored
