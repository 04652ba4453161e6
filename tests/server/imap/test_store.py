"""STORE and UID STORE at the byte level (RFC 9051 sections 6.4.6, 6.4.9) and their
CONDSTORE forms (RFC 7162 sections 3.1.3, 3.1.4): UNCHANGEDSINCE with [MODIFIED],
FETCH (CHANGEDSINCE) and the MODSEQ item, through a real node."""

from __future__ import annotations

import asyncio
import re

import pytest

from server.imap.session import messages
from server.node.node import Node
from tests.server.imap.test_fetch import _copy, _deliver, _login

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py


def _modseq(line: bytes) -> int:
    m = re.search(rb"MODSEQ \((\d+)\)", line)
    assert m is not None, line
    return int(m.group(1))


async def test_store_forms_silent_and_keywords(node: Node) -> None:
    """RFC 9051 section 6.4.6: FLAGS replaces, +FLAGS adds, -FLAGS removes, .SILENT answers
    with no FETCH; a new keyword is accepted (PERMANENTFLAGS has \\*, section 7.1)."""
    await asyncio.to_thread(_deliver, node, _copy(1), _copy(2))

    def run() -> None:
        r = _login(node)
        # the store keeps keywords in lower case, as JMAP must (RFC 8621 section 4.1.1)
        assert r.command(b"c STORE 1 +FLAGS (\\Flagged $Label1)\r\n") == [
            b"* 1 FETCH (FLAGS (\\Flagged $label1))\r\n", b"c OK STORE completed\r\n"]
        assert r.command(b"d STORE 1 -FLAGS.SILENT ($Label1)\r\n") == [
            b"d OK STORE completed\r\n"]
        assert r.command(b"e UID STORE 1:2 FLAGS (\\Seen)\r\n") == [
            b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n", b"* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n",
            b"e OK UID STORE completed\r\n"]
        assert r.command(b"f FETCH 1:2 FLAGS\r\n")[:2] == [
            b"* 1 FETCH (FLAGS (\\Seen))\r\n", b"* 2 FETCH (FLAGS (\\Seen))\r\n"]
        assert r.command(b"g STORE 3 +FLAGS (\\Seen)\r\n")[-1].startswith(b"g BAD")
        # flag-extension is reserved for future system flags (RFC 9051 section 9): BAD,
        # and the session goes on
        assert r.command(b"g2 STORE 1 +FLAGS (\\Bogus)\r\n") == [
            b"g2 BAD Invalid flag \\Bogus\r\n"]
        assert r.command(b"h UID STORE 9 +FLAGS (\\Seen)\r\n") == [
            b"h OK UID STORE completed\r\n"]                 # no such UID: nothing to do
        r.close()
    await asyncio.to_thread(run)


async def test_store_in_examine_is_no(node: Node) -> None:
    """RFC 9051 section 6.3.3: EXAMINE opens read-only; STORE there is NO and changes
    nothing; a BODY[] fetch there does not set \\Seen (section 6.4.5)."""
    await asyncio.to_thread(_deliver, node, _copy(1))

    def run() -> None:
        r = _login(node, b"EXAMINE INBOX")
        assert r.command(b"c STORE 1 +FLAGS (\\Deleted)\r\n")[-1].startswith(b"c NO")
        assert r.command(b"d FETCH 1 BODY[1]\r\n")[0] == (
            b'* 1 FETCH (BODY[1] "Hello there")\r\n')
        assert r.command(b"e FETCH 1 FLAGS\r\n")[0] == b"* 1 FETCH (FLAGS ())\r\n"
        r.close()
    await asyncio.to_thread(run)


async def test_unchangedsince_with_a_conflicting_change(node: Node) -> None:
    """RFC 7162 section 3.1.3: a message changed after UNCHANGEDSINCE is not stored and is
    listed in OK [MODIFIED]; the others are stored and, with .SILENT, still reported with
    their MODSEQ (example 3 there)."""
    await asyncio.to_thread(_deliver, node, _copy(1), _copy(2))

    def run() -> None:
        r = _login(node)
        other = _login(node)
        first = r.command(b"c FETCH 1:2 (MODSEQ)\r\n")          # enables CONDSTORE (3.1)
        # ... and, the first time with a mailbox selected, reports its HIGHESTMODSEQ
        assert first[0].startswith(b"* OK [HIGHESTMODSEQ ")
        before = max(_modseq(first[1]), _modseq(first[2]))
        assert first[0].startswith(b"* OK [HIGHESTMODSEQ %d]" % before)
        assert not r.command(b"c2 FETCH 1 (MODSEQ)\r\n")[0].startswith(b"* OK")   # once
        got = other.command(b"x STORE 2 +FLAGS (\\Answered)\r\n")
        assert got[-1].startswith(b"x OK")
        got = r.command(b"d STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Flagged)\r\n"
                        % before)
        assert got[-1] == b"d OK [MODIFIED 2] Conditional STORE failed for some messages\r\n"
        # RFC 7162 section 3.2.4: with UID, also for STORE by sequence number
        assert len(got) == 3 and got[0].startswith(b"* 1 FETCH (UID 1 MODSEQ (")
        # the other session's change to 2 is announced (RFC 9051 section 7.5.2), this
        # session's own change to 1 is not repeated
        assert got[1].startswith(b"* 2 FETCH (FLAGS (\\Answered) UID 2 MODSEQ (")
        assert _modseq(got[0]) > before
        flags = r.command(b"e FETCH 1:2 FLAGS\r\n")   # FLAGS carry MODSEQ once enabled
        assert flags[0].startswith(b"* 1 FETCH (FLAGS (\\Flagged) MODSEQ (")
        assert flags[1].startswith(b"* 2 FETCH (FLAGS (\\Answered) MODSEQ (")
        # UID STORE reports UIDs in MODIFIED
        got = r.command(b"f UID STORE 2 (UNCHANGEDSINCE %d) FLAGS (\\Seen)\r\n" % before)
        assert got == [b"f OK [MODIFIED 2] Conditional UID STORE failed for some messages\r\n"]
        r.close()
        other.close()
    await asyncio.to_thread(run)


async def test_fetch_changedsince(node: Node) -> None:
    """RFC 7162 section 3.1.4.1: FETCH (CHANGEDSINCE n) gives only messages whose modseq
    is above n, with MODSEQ included."""
    await asyncio.to_thread(_deliver, node, _copy(1), _copy(2), _copy(3))

    def run() -> None:
        r = _login(node)
        # mod-sequence-value is 1*DIGIT, positive (RFC 7162 section 7): 0 is BAD
        assert r.command(b"b FETCH 1:* FLAGS (CHANGEDSINCE 0)\r\n")[-1].startswith(b"b BAD")
        got = r.command(b"c UID FETCH 1:* (FLAGS MODSEQ)\r\n")
        assert len(got) == 5 and got[0].startswith(b"* OK [HIGHESTMODSEQ ")
        assert all(b"MODSEQ (" in line for line in got[1:4])
        highest = max(_modseq(line) for line in got[1:4])
        assert r.command(b"d STORE 2 +FLAGS.SILENT (\\Flagged)\r\n")[0].startswith(
            b"* 2 FETCH (UID 2 MODSEQ (")   # CONDSTORE is on: .SILENT still says (3.2.4)
        got = r.command(b"e FETCH 1:* (UID FLAGS) (CHANGEDSINCE %d)\r\n" % highest)
        assert len(got) == 2 and got[0].startswith(b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (")
        r.close()
    await asyncio.to_thread(run)


async def test_store_in_batches_still_announces_others_changes(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """A STORE done in several transactions (batches of 2 here) skips the read-back of
    what it changed itself, but not what another session changed before it (RFC 9051
    section 7.5.1: flag changes by others are announced after the command)."""
    monkeypatch.setattr(messages, "MAX_BATCH", 2)
    await asyncio.to_thread(_deliver, node, *(_copy(i) for i in range(1, 6)))

    def run() -> None:
        a, b = _login(node), _login(node)
        assert b.command(b"b1 STORE 5 +FLAGS.SILENT (\\Flagged)\r\n") == [
            b"b1 OK STORE completed\r\n"]
        assert a.command(b"a1 STORE 1:4 +FLAGS.SILENT (\\Seen)\r\n") == [
            b"* 5 FETCH (FLAGS (\\Flagged) UID 5)\r\n", b"a1 OK STORE completed\r\n"]
        # its own changes, in three batches, are not announced back to it
        assert a.command(b"a2 STORE 1:5 +FLAGS.SILENT (\\Answered)\r\n") == [
            b"a2 OK STORE completed\r\n"]
        assert a.command(b"a3 NOOP\r\n") == [b"a3 OK NOOP completed\r\n"]
        seen_by_b = b.command(b"b2 NOOP\r\n")
        assert seen_by_b[0] == b"* 1 FETCH (FLAGS (\\Answered \\Seen) UID 1)\r\n", seen_by_b
        assert len(seen_by_b) == 6   # all five, then the tagged OK
        a.close()
        b.close()
    await asyncio.to_thread(run)
