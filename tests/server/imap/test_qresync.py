"""CONDSTORE and QRESYNC (RFC 7162): ENABLE, SELECT (CONDSTORE), MODSEQ in the FETCH
responses of flag changes, VANISHED instead of EXPUNGE, SELECT (QRESYNC ...) giving what
the client missed since its modseq, ``* OK [CLOSED]``."""

from __future__ import annotations

import asyncio
import re

import pytest

from server.imap.session import dispatch
from server.imap.session.selected import vanished_earlier
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

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py


def _code(lines: list[bytes], name: bytes) -> int:
    for line in lines:
        m = re.search(rb"\[" + name + rb" (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no {name!r} in {lines}")


async def test_select_condstore_and_modseq_in_announced_flag_changes(node: Node) -> None:
    """RFC 7162 section 3.1.8 (SELECT (CONDSTORE)), 3.1.2.1 (HIGHESTMODSEQ), 3.2.4 / 3.1.4
    (MODSEQ in untagged FETCH once CONDSTORE is enabled)."""
    await asyncio.to_thread(deliver, node, 1, 2)
    raw = await asyncio.to_thread(Raw, node)
    try:
        caps = await asyncio.to_thread(raw.command, b"c CAPABILITY\r\n")
        assert b" CONDSTORE" in caps[0] and b" QRESYNC" in caps[0]
        lines = await asyncio.to_thread(raw.command, b"s SELECT INBOX (CONDSTORE)\r\n")
        highest = _code(lines, b"HIGHESTMODSEQ")
        await other_stores(node, [2], add=("$flagged",))
        lines = untagged(await asyncio.to_thread(raw.command, b"n NOOP\r\n"))
        assert len(lines) == 1
        m = re.fullmatch(rb"\* 2 FETCH \(FLAGS \(\\Flagged\) UID 2 MODSEQ \((\d+)\)\)\r\n",
                         lines[0])
        assert m and int(m.group(1)) > highest
        lines = await asyncio.to_thread(raw.command, b"s EXAMINE INBOX\r\n")
        assert lines[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"  # RFC 7162 3.2.11
        assert _code(lines, b"HIGHESTMODSEQ") == int(m.group(1))
    finally:
        raw.close()


async def test_enable_qresync_gives_vanished_instead_of_expunge(node: Node) -> None:
    """RFC 7162 section 3.2.3 (ENABLE QRESYNC, implies CONDSTORE), 3.2.10 (VANISHED)."""
    await asyncio.to_thread(deliver, node, 1, 2, 3, 4)
    raw = await asyncio.to_thread(Raw, node)
    try:
        lines = await asyncio.to_thread(raw.command, b"e ENABLE QRESYNC\r\n")
        assert lines[0] == b"* ENABLED QRESYNC\r\n"
        lines = await asyncio.to_thread(raw.command, b"e ENABLE CONDSTORE\r\n")
        assert lines[0] == b"* ENABLED\r\n"                 # already on with QRESYNC
        await asyncio.to_thread(raw.command, b"s SELECT INBOX\r\n")
        await other_expunges(node, [2, 3])
        lines = untagged(await asyncio.to_thread(raw.command, b"n NOOP\r\n"))
        assert lines == [b"* VANISHED 2:3\r\n"]
    finally:
        raw.close()


async def test_select_qresync_without_enable_is_bad(node: Node) -> None:
    raw = await asyncio.to_thread(Raw, node)
    try:
        raw.send(b"s SELECT INBOX (QRESYNC (1 1))\r\n")
        assert (await asyncio.to_thread(raw.line)).startswith(b"s BAD")
    finally:
        raw.close()


async def test_select_qresync_reports_what_was_missed(node: Node) -> None:
    """RFC 7162 section 3.2.5.1: VANISHED (EARLIER) for expunged UIDs (only known ones when
    known-uids is given) and FETCH (FLAGS UID MODSEQ) for changed messages, before the
    tagged OK; nothing when UIDVALIDITY differs."""
    await asyncio.to_thread(deliver, node, 1, 2, 3, 4)
    raw = await asyncio.to_thread(Raw, node)
    try:
        await asyncio.to_thread(raw.command, b"e ENABLE QRESYNC\r\n")
        lines = await asyncio.to_thread(raw.command, b"s SELECT INBOX\r\n")
        validity, modseq = _code(lines, b"UIDVALIDITY"), _code(lines, b"HIGHESTMODSEQ")
        await asyncio.to_thread(raw.command, b"u UNSELECT\r\n")
        await other_expunges(node, [2])
        await other_stores(node, [3], add=("$seen",))

        cmd = b"s SELECT INBOX (QRESYNC (%d %d))\r\n" % (validity, modseq)
        lines = await asyncio.to_thread(raw.command, cmd)
        assert b"* 3 EXISTS\r\n" in lines
        got = untagged(lines)
        vanished = got.index(b"* VANISHED (EARLIER) 2\r\n")
        fetch = [x for x in got if b" FETCH " in x]
        assert len(fetch) == 1 and re.fullmatch(
            rb"\* 2 FETCH \(FLAGS \(\\Seen\) UID 3 MODSEQ \(\d+\)\)\r\n", fetch[0])
        assert vanished < got.index(fetch[0])
        assert lines[-1].startswith(b"s OK [READ-WRITE]")

        cmd = b"s SELECT INBOX (QRESYNC (%d %d 3:4))\r\n" % (validity, modseq)
        lines = await asyncio.to_thread(raw.command, cmd)
        assert not any(x.startswith(b"* VANISHED") for x in lines)   # 2 was not known
        cmd = b"s EXAMINE INBOX (QRESYNC (%d %d))\r\n" % (validity + 1, modseq)
        lines = await asyncio.to_thread(raw.command, cmd)
        assert not any(x.startswith(b"* VANISHED") or b" FETCH " in x for x in lines)
    finally:
        raw.close()


async def _fetch_vanished_stub(s: Session, cmd: c.Command) -> None:
    """Only the VANISHED part of UID FETCH (the FETCH itself is the imapfetch part)."""
    assert isinstance(cmd, c.Fetch) and cmd.vanished and cmd.changed_since is not None
    await vanished_earlier(s, cmd.messages, cmd.changed_since)
    s.ok(cmd.tag, "FETCH completed")


async def test_uid_fetch_changedsince_vanished(node: Node,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 7162 section 3.2.6: UID FETCH uid-set (CHANGEDSINCE m VANISHED) reports the UIDs
    of the set expunged since m as ``* VANISHED (EARLIER)``."""
    monkeypatch.setitem(dispatch.HANDLERS, c.Fetch, _fetch_vanished_stub)
    await asyncio.to_thread(deliver, node, 1, 2, 3, 4, 5)
    raw = await asyncio.to_thread(Raw, node)
    try:
        await asyncio.to_thread(raw.command, b"e ENABLE QRESYNC\r\n")
        lines = await asyncio.to_thread(raw.command, b"s SELECT INBOX\r\n")
        modseq = _code(lines, b"HIGHESTMODSEQ")
        await other_expunges(node, [1, 3, 4])
        lines = await asyncio.to_thread(
            raw.command, b"f UID FETCH 2:* FLAGS (CHANGEDSINCE %d VANISHED)\r\n" % modseq)
        assert lines[0] == b"* VANISHED (EARLIER) 3:4\r\n"
    finally:
        raw.close()


async def test_status_highestmodseq(node: Node) -> None:
    """RFC 7162 section 3.1.10: STATUS HIGHESTMODSEQ, the value SELECT reports."""
    await asyncio.to_thread(deliver, node, 1)
    raw = await asyncio.to_thread(Raw, node)
    try:
        lines = await asyncio.to_thread(raw.command, b"t STATUS INBOX (HIGHESTMODSEQ)\r\n")
        m = re.fullmatch(rb"\* STATUS INBOX \(HIGHESTMODSEQ (\d+)\)\r\n", lines[0])
        assert m
        lines = await asyncio.to_thread(raw.command, b"s EXAMINE INBOX\r\n")
        assert _code(lines, b"HIGHESTMODSEQ") == int(m.group(1))
    finally:
        raw.close()
