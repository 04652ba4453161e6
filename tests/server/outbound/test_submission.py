"""Submission to remote recipients: queued durably (blob + queue entry) before 250;
local recipients of the same message delivered; relay refused without AUTH."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from tests.server.outbound.conftest import Site, submit
from tests.support.mailbox import inbox_messages

MESSAGE = b"From: alice@example.com\r\nTo: carol@remote.test\r\nSubject: hi\r\n\r\nhello\r\n"


async def test_remote_recipient_is_queued_before_250(site: Site) -> None:
    reply = await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    assert reply.startswith("250 2.0.0")
    [queued] = await site.queued()
    assert queued.sender == "alice@example.com"
    assert [r.address for r in queued.recipients] == ["carol@remote.test"]
    body = await site.blobs.get(queued.blob_id)
    assert body.endswith(MESSAGE) and body.startswith(b"Received: ")
    assert b"Return-Path" not in body


async def test_a_repeated_submission_is_queued_once(site: Site) -> None:
    for _ in range(2):
        await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    assert len(await site.queued()) == 1


async def test_mixed_local_and_remote_recipients(site: Site) -> None:
    reply = await submit(site, "alice@example.com", ["bob@example.com", "carol@remote.test",
                                                     "dave@other.test"], MESSAGE)
    assert reply.startswith("250")
    [queued] = await site.queued()
    assert [r.address for r in queued.recipients] == ["carol@remote.test", "dave@other.test"]
    [stored] = await inbox_messages(site.engine, site.blobs, "bob")
    assert stored.endswith(MESSAGE) and stored.startswith(b"Return-Path: <alice@example.com>")


def _relay_attempt(site: Site) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", site.smtp.ports["mx"], timeout=30) as s:
        s.ehlo("client.test")
        s.mail("someone@elsewhere.test")
        return s.rcpt("carol@remote.test")


async def test_unauthenticated_relay_stays_refused(site: Site) -> None:
    assert await asyncio.to_thread(_relay_attempt, site) == (554, b"5.7.1 Relay access denied")
    assert await site.queued() == []


@pytest.mark.parametrize("login", [("alice", "wrong")])
async def test_failed_auth_queues_nothing(site: Site, login: tuple[str, str]) -> None:
    with pytest.raises(smtplib.SMTPAuthenticationError):
        await asyncio.to_thread(site.submit, "alice@example.com", ["carol@remote.test"],
                                MESSAGE, login)
    assert await site.queued() == []
