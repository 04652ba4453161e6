"""Issue 10, item 17: SIZE values, long SASL responses, failed STARTTLS, postmaster."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.server.smtp.conftest import StartHarness


@pytest.mark.parametrize("size", ["²", "①", "１２３", "٣", "", None, "12a", "-1", "+5"])
async def test_size_takes_ascii_digits_only(start: StartHarness, size: str | None) -> None:
    h = await start()
    c = await h.ehlo()
    param = "SIZE" if size is None else f"SIZE={size}"
    reply = await c.cmd(f"MAIL FROM:<x@remote.test> {param}".encode())
    assert reply.startswith("501 5.5.4"), reply
    assert (await c.cmd("MAIL FROM:<x@remote.test> SIZE=1000")).startswith("250")


async def test_a_sasl_response_over_the_line_limit_is_not_read_as_commands(
        start: StartHarness) -> None:
    h = await start(auth_require_tls=False)
    c = await h.ehlo("submission")
    assert (await c.cmd("AUTH LOGIN")).startswith("334")
    # 70,000 octets: past the stream's 64 KiB buffer too; its tail looks like a command
    await c.send(b"A" * 70_000 + b" RSET\r\n")
    reply = await c.reply()
    assert reply.startswith(("500", "501")), reply
    assert (await c.cmd("NOOP")).startswith("250")       # the next reply is NOOP's
    assert (await c.cmd("AUTH LOGIN")).startswith("334")
    await c.send(b"QUFB" * 3100 + b"\r\n")              # 12,400 octets: over 12,288
    assert (await c.reply()).startswith(("500", "501"))
    assert (await c.cmd("NOOP")).startswith("250")


async def test_a_failed_starttls_handshake_is_one_info_line(
        start: StartHarness, caplog: pytest.LogCaptureFixture) -> None:
    h = await start()
    c = await h.ehlo("submission")
    with caplog.at_level(logging.INFO):
        assert (await c.cmd("STARTTLS")).startswith("220")
        await c.send(b"this is not a TLS client hello\r\n" * 4)
        assert await c.closed()
        await asyncio.sleep(0.1)
    mine = [r for r in caplog.records if r.name.startswith("server.")]
    assert all(r.levelno < logging.WARNING and r.exc_info is None for r in mine), \
        [(r.levelname, r.getMessage()) for r in mine]
    c = await h.ehlo("submission", tls_=True)            # the node serves TLS still
    assert (await c.cmd("NOOP")).startswith("250")


async def test_postmaster_of_every_local_domain_is_accepted(start: StartHarness) -> None:
    h = await start(postmaster="bob")
    h.directory.add("pm", "postmaster@example.com")     # a domain with its own postmaster
    h.directory.domains.add("other.example")
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    for rcpt in ("Postmaster", "postmaster@example.com", "PostMaster@Other.Example"):
        assert (await c.cmd(f"RCPT TO:<{rcpt}>".encode())).startswith("250"), rcpt
    assert (await c.cmd("RCPT TO:<postmaster@remote.test>")).startswith("554 5.7.1")
    await c.cmd("DATA")
    await c.send(b"Subject: hi\r\n\r\nhi\r\n.\r\n")
    assert (await c.reply()).startswith("250")
    assert set(h.delivery.stored) == {"pm", "bob"}       # bob as the configured principal


async def test_postmaster_without_a_principal_is_a_temporary_failure(
        start: StartHarness) -> None:
    h = await start(postmaster="nobody")
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    assert (await c.cmd("RCPT TO:<postmaster@example.com>")).startswith("451")
