"""Conformance: CONDSTORE and QRESYNC (RFC 7162) on raw connections to a real node:
HIGHESTMODSEQ in SELECT and STATUS, STORE UNCHANGEDSINCE with MODIFIED, FETCH
CHANGEDSINCE, SEARCH MODSEQ, UID and MODSEQ in every FETCH a change causes, SELECT
(QRESYNC ...) with VANISHED (EARLIER), VANISHED instead of EXPUNGE."""

from __future__ import annotations

import asyncio
import re

from server.node.node import Node
from tests.server.imap.mutating import fill, login
from tests.server.imap.test_session import Raw


def _modseq(line: bytes) -> int:
    m = re.search(rb"MODSEQ \((\d+)\)", line)
    assert m, line
    return int(m.group(1))


def _code_number(out: list[bytes], code: bytes) -> int:
    for line in out:
        m = re.match(rb"\* OK \[" + code + rb" (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError((code, out))


def _enabled(node: Node, what: bytes) -> Raw:
    c = login(node)
    out = c.command(b"e1 ENABLE " + what + b"\r\n")
    assert out[0] == b"* ENABLED " + what + b"\r\n", out
    return c


async def test_highestmodseq_in_select_and_status_and_never_nomodseq(node: Node) -> None:
    """RFC 7162 sections 3.1.2.1 and 3.1.10: SELECT reports HIGHESTMODSEQ (we keep modseqs
    for every mailbox, so never NOMODSEQ), STATUS (HIGHESTMODSEQ) the same value, and a
    change raises it."""
    await fill(node, 2)

    def run() -> None:
        c = login(node)
        out = c.command(b"s1 SELECT INBOX (CONDSTORE)\r\n")
        assert not any(b"NOMODSEQ" in line for line in out)
        highest = _code_number(out, b"HIGHESTMODSEQ")
        out = c.command(b"t1 STATUS INBOX (HIGHESTMODSEQ)\r\n")
        assert out[0] == b"* STATUS INBOX (HIGHESTMODSEQ %d)\r\n" % highest
        changed = c.command(b"t2 STORE 1 +FLAGS (\\Flagged)\r\n")
        assert _modseq(changed[0]) > highest
        out = c.command(b"t3 STATUS INBOX (HIGHESTMODSEQ)\r\n")
        assert out[0] == b"* STATUS INBOX (HIGHESTMODSEQ %d)\r\n" % _modseq(changed[0])
        out = c.command(b"s2 EXAMINE Sent\r\n")
        assert not any(b"NOMODSEQ" in line for line in out)
        assert _code_number(out, b"HIGHESTMODSEQ") >= 1
        c.close()
    await asyncio.to_thread(run)


async def test_store_unchangedsince_reports_modified_by_number_or_uid(node: Node) -> None:
    """RFC 7162 section 3.1.3: messages changed after UNCHANGEDSINCE are left alone and
    listed in OK [MODIFIED] as sequence numbers for STORE, UIDs for UID STORE; the stored
    ones are reported with UID and MODSEQ (section 3.2.4), .SILENT too; UNCHANGEDSINCE 0
    always fails."""
    await fill(node, 4)

    def run() -> None:
        a = login(node)
        b = login(node)
        assert a.command(b"x1 UID EXPUNGE 1\r\n")[-1].startswith(b"x1 BAD")  # not selected
        out = a.command(b"s1 SELECT INBOX (CONDSTORE)\r\n")
        base = _code_number(out, b"HIGHESTMODSEQ")
        assert a.command(b"x2 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")[-1].startswith(b"x2 OK")
        assert a.command(b"x3 EXPUNGE\r\n")[:-1] == [b"* 1 EXPUNGE\r\n"]
        # UIDs 2 3 4 are now messages 1 2 3; the other session changes UID 3 (message 2)
        assert b.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
        assert b.command(b"b1 UID STORE 3 +FLAGS (\\Answered)\r\n")[-1].startswith(b"b1 OK")
        out = a.command(b"a1 STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Seen)\r\n" % base)
        assert out[-1] == b"a1 OK [MODIFIED 2] Conditional STORE failed for some messages\r\n"
        mine = [line for line in out[:-1] if b"\\Answered" not in line]
        assert [line.split(b" MODSEQ")[0] for line in mine] == [
            b"* 1 FETCH (UID 2", b"* 3 FETCH (UID 4"], out
        out = a.command(b"a2 UID STORE 2:4 (UNCHANGEDSINCE %d) +FLAGS (\\Draft)\r\n" % base)
        assert out[-1] == \
            b"a2 OK [MODIFIED 2:4] Conditional UID STORE failed for some messages\r\n", out
        out = a.command(b"a3 STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)\r\n")
        assert out == [b"a3 OK [MODIFIED 1] Conditional STORE failed for some messages\r\n"]
        a.close()
        b.close()
    await asyncio.to_thread(run)


async def test_fetch_changedsince_and_implicit_seen_carry_uid_and_modseq(node: Node) -> None:
    """RFC 7162 section 3.1.4.1: CHANGEDSINCE returns only messages changed after it and
    implies MODSEQ; section 3.2.4: once CONDSTORE is on, a FETCH that sets \\Seen reports
    the new FLAGS with UID and MODSEQ."""
    await fill(node, 3)

    def run() -> None:
        c = _enabled(node, b"CONDSTORE")
        out = c.command(b"s1 SELECT INBOX\r\n")
        highest = _code_number(out, b"HIGHESTMODSEQ")
        assert c.command(b"a1 FETCH 1:* (FLAGS) (CHANGEDSINCE %d)\r\n" % highest) == \
            [b"a1 OK FETCH completed\r\n"]
        changed = c.command(b"a2 STORE 2 +FLAGS (\\Flagged)\r\n")[0]
        assert changed.startswith(b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (")
        out = c.command(b"a3 FETCH 1:* (FLAGS) (CHANGEDSINCE %d)\r\n" % highest)
        assert out == [b"* 2 FETCH (FLAGS (\\Flagged) MODSEQ (%d))\r\n" % _modseq(changed),
                       b"a3 OK FETCH completed\r\n"]
        out = b"".join(c.command(b"a4 FETCH 3 (BODY[TEXT])\r\n"))
        assert out.startswith(b"* 3 FETCH (BODY[TEXT] {")
        assert re.search(rb" FLAGS \(\\Seen\) UID 3 MODSEQ \(\d+\)\)\r\na4 OK", out), out
        c.close()
    await asyncio.to_thread(run)


async def test_search_modseq_reports_the_highest_modseq_of_the_result(node: Node) -> None:
    """RFC 7162 section 3.1.5: SEARCH MODSEQ answers ``* SEARCH n.. (MODSEQ m)`` with the
    highest modseq of the messages found, nothing added when none is found; ESEARCH
    puts MODSEQ after the result (section 3.1.10 / RFC 4731)."""
    await fill(node, 3)

    def run() -> None:
        c = login(node)
        out = c.command(b"s1 SELECT INBOX\r\n")
        highest = _code_number(out, b"HIGHESTMODSEQ")
        changed = c.command(b"a1 STORE 3 +FLAGS (\\Flagged)\r\n")
        assert changed[0].startswith(b"* 3 FETCH (FLAGS (\\Flagged)")   # CONDSTORE off yet
        out = c.command(b"a2 SEARCH MODSEQ %d\r\n" % (highest + 1))
        assert re.fullmatch(rb"\* SEARCH 3 \(MODSEQ (\d+)\)\r\n", out[0]), out
        modseq = int(out[0].split(b"MODSEQ ")[1].rstrip(b")\r\n"))
        assert modseq > highest
        assert c.command(b"a3 SEARCH MODSEQ %d\r\n" % (modseq + 1))[0] == b"* SEARCH\r\n"
        out = c.command(b"a4 SEARCH RETURN (COUNT MAX) MODSEQ %d\r\n" % (highest + 1))
        assert out[0] == b'* ESEARCH (TAG "a4") COUNT 1 MAX 3 MODSEQ %d\r\n' % modseq \
            or out[0] == b'* ESEARCH (TAG "a4") MAX 3 COUNT 1 MODSEQ %d\r\n' % modseq, out
        c.close()
    await asyncio.to_thread(run)


async def test_qresync_select_vanished_earlier_and_vanished_for_expunges(node: Node) -> None:
    """RFC 7162 section 3.2.5: SELECT (QRESYNC (uidvalidity modseq known-uids)) reports
    the known UIDs expunged since as VANISHED (EARLIER) and the changed messages as FETCH
    (UID, FLAGS, MODSEQ); section 3.2.10: after ENABLE QRESYNC, expunges (EXPUNGE, MOVE,
    another session's) are announced as VANISHED, never EXPUNGE.  Without ENABLE
    QRESYNC, the QRESYNC parameter is BAD (section 3.2.5)."""
    await fill(node, 5)

    def run() -> None:
        plain = login(node)
        out = plain.command(b"s1 SELECT INBOX (QRESYNC (1 1))\r\n")
        assert out[-1].startswith(b"s1 BAD"), out
        c = _enabled(node, b"QRESYNC")
        out = c.command(b"s2 SELECT INBOX\r\n")
        validity = _code_number(out, b"UIDVALIDITY")
        highest = _code_number(out, b"HIGHESTMODSEQ")
        assert c.command(b"u1 UNSELECT\r\n")[-1].startswith(b"u1 OK")
        other = login(node)
        assert other.command(b"o1 SELECT INBOX\r\n")[-1].startswith(b"o1 OK")
        assert other.command(b"o2 STORE 1,4 +FLAGS.SILENT (\\Deleted)\r\n")[-1].startswith(b"o2")
        assert other.command(b"o3 EXPUNGE\r\n")[-1].startswith(b"o3 OK")
        assert other.command(b"o4 UID STORE 2 +FLAGS (\\Flagged)\r\n")[-1].startswith(b"o4 OK")
        out = c.command(b"s3 SELECT INBOX (QRESYNC (%d %d 1:3))\r\n" % (validity, highest))
        assert b"* VANISHED (EARLIER) 1\r\n" in out, out          # 4 was not known
        fetches = [line for line in out if b" FETCH " in line]
        assert len(fetches) == 1 and fetches[0].startswith(
            b"* 1 FETCH (FLAGS (\\Flagged) UID 2 MODSEQ ("), out
        # a different UIDVALIDITY: no resync data
        out = c.command(b"s4 SELECT INBOX (QRESYNC (%d %d))\r\n" % (validity + 1, highest))
        assert not any(b"VANISHED" in line or b" FETCH " in line for line in out), out
        # this session's expunges and MOVE, and another session's: VANISHED
        assert c.command(b"x1 UID STORE 2 +FLAGS.SILENT (\\Deleted)\r\n")[-1].startswith(b"x1")
        assert c.command(b"x2 EXPUNGE\r\n")[:-1] == [b"* VANISHED 2\r\n"]
        out = c.command(b"x3 UID MOVE 3 Trash\r\n")
        assert not any(b"EXPUNGE" in line for line in out[:-1]) \
            and b"* VANISHED 3\r\n" in out, out
        assert other.command(b"o5 UID STORE 5 +FLAGS.SILENT (\\Deleted)\r\n")[-1].startswith(b"o5")
        assert other.command(b"o6 UID EXPUNGE 5\r\n")[-1].startswith(b"o6 OK")
        assert c.command(b"x4 NOOP\r\n")[:-1] == [b"* VANISHED 5\r\n"]
        c.close()
        other.close()
        plain.close()
    await asyncio.to_thread(run)


async def test_store_unchangedsince_fails_for_a_changed_message_even_as_a_no_op(
        node: Node) -> None:
    """RFC 7162 section 3.1.3: "if the mod-sequence of any metadata item of the message
    is greater than the specified UNCHANGEDSINCE value, then the requested operation MUST
    NOT be performed" and the message is listed in MODIFIED -- also when the store would
    change nothing (example 10 there: message 7 already has \\Deleted, yet fails).  The
    message keeps its mod-sequence; a message not changed since is stored."""
    await fill(node, 2)

    def run() -> None:
        a = login(node)
        b = login(node)
        base = _code_number(a.command(b"s1 SELECT INBOX (CONDSTORE)\r\n"), b"HIGHESTMODSEQ")
        assert b.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
        changed = b.command(b"b1 STORE 1 +FLAGS (\\Flagged)\r\n")
        assert changed[-1].startswith(b"b1 OK")
        out = a.command(b"a1 STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)\r\n" % base)
        assert out[-1] == b"a1 OK [MODIFIED 1] Conditional STORE failed for some messages\r\n"
        assert any(line.startswith(b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (")
                   for line in out), out
        after = a.command(b"a2 FETCH 1 (MODSEQ)\r\n")
        [flagged] = [_modseq(line) for line in b.command(b"b2 FETCH 1 (MODSEQ)\r\n")
                     if line.startswith(b"* 1 FETCH (MODSEQ")]
        assert after[-2:] == [b"* 1 FETCH (MODSEQ (%d))\r\n" % flagged,
                              b"a2 OK FETCH completed\r\n"], after
        out = a.command(b"a3 UID STORE 1 (UNCHANGEDSINCE %d) FLAGS (\\Flagged)\r\n" % base)
        assert out[-1] == \
            b"a3 OK [MODIFIED 1] Conditional UID STORE failed for some messages\r\n", out
        a.close()
        b.close()
    await asyncio.to_thread(run)
