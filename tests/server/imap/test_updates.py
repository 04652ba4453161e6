"""Untagged updates of the selected mailbox (RFC 9051 sections 5.2, 5.5, 7.4.1, 7.5.1):
what another session changed is announced after this session's next command -- new
messages as EXISTS, flag changes as FETCH, expunges as EXPUNGE, but never an EXPUNGE while
answering FETCH, STORE or SEARCH (their UID forms may)."""

from __future__ import annotations

import asyncio

import pytest

from server.imap.session import dispatch
from server.imap.session.state import Session
from server.imap.wire import commands as c
from server.node.node import Node
from tests.server.imap.sync_helpers import (
    Raw,
    deliver,
    other_expunges,
    other_stores,
    untagged,
)


async def test_noop_announces_flags_new_mail_and_expunges(node: Node) -> None:
    await asyncio.to_thread(deliver, node, 1, 2, 3)
    raw = await asyncio.to_thread(Raw, node)
    try:
        sel = await asyncio.to_thread(raw.command, b"s SELECT INBOX\r\n")
        assert b"* 3 EXISTS\r\n" in sel
        assert untagged(await asyncio.to_thread(raw.command, b"n NOOP\r\n")) == []
        await other_stores(node, [1], add=("$seen", "$flagged"))
        lines = await asyncio.to_thread(raw.command, b"n NOOP\r\n")
        assert untagged(lines) == [b"* 1 FETCH (FLAGS (\\Flagged \\Seen) UID 1)\r\n"]
        await other_expunges(node, [2])
        await asyncio.to_thread(deliver, node, 4)
        lines = await asyncio.to_thread(raw.command, b"n NOOP\r\n")
        # the expunge first (message 3 becomes 2), then the new message as the 3rd
        assert untagged(lines) == [b"* 2 EXPUNGE\r\n", b"* 3 EXISTS\r\n"]
        assert untagged(await asyncio.to_thread(raw.command, b"c CHECK\r\n")) == []
    finally:
        raw.close()


async def test_updates_come_before_the_tagged_answer_of_any_command(node: Node) -> None:
    await asyncio.to_thread(deliver, node, 1)
    raw = await asyncio.to_thread(Raw, node)
    try:
        await asyncio.to_thread(raw.command, b"s SELECT INBOX\r\n")
        await asyncio.to_thread(deliver, node, 2)
        lines = await asyncio.to_thread(raw.command, b'l LIST "" INBOX\r\n')
        assert lines[-2:-1] == [b"* 2 EXISTS\r\n"] and lines[-1].startswith(b"l OK")
    finally:
        raw.close()


async def _fetch_stub(s: Session, cmd: c.Command) -> None:
    s.ok(cmd.tag, "FETCH completed")   # the real FETCH is the imapfetch part; only the rule


async def test_no_expunge_during_fetch_store_search_but_during_their_uid_forms(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 9051 section 7.5.1: an expunge by another session is held back while FETCH
    runs (the message keeps its sequence number), and announced by UID FETCH."""
    monkeypatch.setitem(dispatch.HANDLERS, c.Fetch, _fetch_stub)
    await asyncio.to_thread(deliver, node, 1, 2, 3)
    raw = await asyncio.to_thread(Raw, node)
    try:
        await asyncio.to_thread(raw.command, b"s SELECT INBOX\r\n")
        await other_expunges(node, [1])
        await other_stores(node, [3], add=("$answered",))
        lines = await asyncio.to_thread(raw.command, b"f FETCH 1:* FLAGS\r\n")
        assert untagged(lines) == [b"* 3 FETCH (FLAGS (\\Answered) UID 3)\r\n"]
        await asyncio.to_thread(deliver, node, 4)
        lines = await asyncio.to_thread(raw.command, b"f FETCH 1 FLAGS\r\n")
        assert untagged(lines) == [b"* 4 EXISTS\r\n"]  # 4: the expunged one still counts
        lines = await asyncio.to_thread(raw.command, b"u UID FETCH 1:* FLAGS\r\n")
        assert untagged(lines) == [b"* 1 EXPUNGE\r\n"]
        assert untagged(await asyncio.to_thread(raw.command, b"n NOOP\r\n")) == []
    finally:
        raw.close()


async def test_expunges_of_several_are_numbered_as_sent(node: Node) -> None:
    await asyncio.to_thread(deliver, node, 1, 2, 3, 4, 5)
    raw = await asyncio.to_thread(Raw, node)
    try:
        await asyncio.to_thread(raw.command, b"s SELECT INBOX\r\n")
        await other_expunges(node, [2, 4, 5])
        lines = untagged(await asyncio.to_thread(raw.command, b"n NOOP\r\n"))
        # each number is as of the moment it is sent (RFC 9051 section 7.4.1)
        seqs = [1, 2, 3, 4, 5]
        for line in lines:
            n = int(line.split()[1])
            assert line.endswith(b" EXPUNGE\r\n")
            del seqs[n - 1]
        assert seqs == [1, 3]
    finally:
        raw.close()
