"""UID FETCH ... (CHANGEDSINCE m VANISHED) through the real FETCH command (RFC 7162
section 3.2.6), as neomutt sends it when it opens a mailbox from its header cache: the
UIDs of the set expunged since m as ``* VANISHED (EARLIER)``, then the changed messages."""

from __future__ import annotations

import asyncio
import re

from server.node.node import Node
from tests.server.imap.sync_helpers import Raw, deliver, other_expunges, other_stores


def _modseq(lines: list[bytes]) -> int:
    for line in lines:
        m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(lines)


async def test_uid_fetch_changedsince_vanished_reports_expunged_then_changed(node: Node) -> None:
    """RFC 7162 section 3.2.6: VANISHED (EARLIER) for the UIDs of the set expunged since
    the mod-sequence, before the FETCH of the messages changed since it."""
    await asyncio.to_thread(deliver, node, 1, 2, 3, 4, 5)
    raw = await asyncio.to_thread(Raw, node)
    try:
        await asyncio.to_thread(raw.command, b"e ENABLE QRESYNC\r\n")
        modseq = _modseq(await asyncio.to_thread(raw.command, b"s SELECT INBOX\r\n"))
        await other_expunges(node, [1, 3, 4])
        await other_stores(node, [5], add=("$flagged",))
        await asyncio.to_thread(raw.command, b"n NOOP\r\n")
        lines = await asyncio.to_thread(
            raw.command, b"f UID FETCH 2:* (FLAGS) (CHANGEDSINCE %d VANISHED)\r\n" % modseq)
        assert lines[0] == b"* VANISHED (EARLIER) 3:4\r\n"
        assert re.fullmatch(rb"\* 2 FETCH \(UID 5 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)\r\n"
                            rb"|\* 2 FETCH \(FLAGS \(\\Flagged\) UID 5 MODSEQ \(\d+\)\)\r\n",
                            lines[1]), lines
        assert len(lines) == 3 and lines[2].startswith(b"f OK"), lines
    finally:
        raw.close()


async def test_fetch_vanished_without_qresync_is_bad(node: Node) -> None:
    """RFC 7162 section 3.2.6: VANISHED is allowed only after ENABLE QRESYNC."""
    await asyncio.to_thread(deliver, node, 1)
    raw = await asyncio.to_thread(Raw, node)
    try:
        await asyncio.to_thread(raw.command, b"s SELECT INBOX (CONDSTORE)\r\n")
        raw.send(b"f UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n")
        line = await asyncio.to_thread(raw.line)
        assert line.startswith(b"f BAD"), line
        # and the session goes on
        assert (await asyncio.to_thread(raw.command, b"n NOOP\r\n"))[-1].startswith(b"n OK")
    finally:
        raw.close()
