"""Conformance: two sessions on one mailbox, one expunging, on raw connections to a real
node (RFC 9051 sections 5.2, 7.4.1, 7.5.1; RFC 2180 section 4; RFC 5530 EXPUNGEISSUED).

Session A expunges; session B must not hear of it while answering FETCH, STORE or SEARCH
(their sequence numbers would shift under the client), may while answering the UID forms,
and does at NOOP; until then B keeps its numbering."""

from __future__ import annotations

import asyncio

from server.node.node import Node
from tests.server.imap.mutating import fill, login
from tests.server.imap.test_session import Raw

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py


def _two(node: Node) -> tuple[Raw, Raw]:
    a, b = login(node), login(node)
    for c in (a, b):
        assert c.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
    return a, b


def _expunge_second(a: Raw) -> None:
    assert a.command(b"x1 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n") == [b"x1 OK STORE completed\r\n"]
    assert a.command(b"x2 EXPUNGE\r\n") == [b"* 2 EXPUNGE\r\n", b"x2 OK EXPUNGE completed\r\n"]


async def test_no_expunge_during_fetch_store_search_then_at_noop(node: Node) -> None:
    """RFC 9051 section 7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH; B's
    FETCH by sequence number of the message A expunged gives what still exists and
    NO [EXPUNGEISSUED] (or OK; RFC 2180 section 4.1.2, RFC 5530); B's STORE on it does
    not fail the others; NOOP then announces ``* 2 EXPUNGE`` once, and B's numbers move."""
    await fill(node, 3)

    def run() -> None:
        a, b = _two(node)
        _expunge_second(a)
        out = b.command(b"f1 FETCH 1:3 (UID)\r\n")
        assert out[:-1] == [b"* 1 FETCH (UID 1)\r\n", b"* 3 FETCH (UID 3)\r\n"], out
        assert out[-1].startswith(b"f1 NO [EXPUNGEISSUED]") or out[-1].startswith(b"f1 OK")
        out = b.command(b"t1 STORE 1:3 +FLAGS (\\Flagged)\r\n")
        assert not any(b"EXPUNGE" in line for line in out), out
        assert out[-1].startswith(b"t1 OK") or out[-1].startswith(b"t1 NO"), out
        assert b"* 1 FETCH (FLAGS (\\Flagged))\r\n" in out
        assert b"* 3 FETCH (FLAGS (\\Flagged))\r\n" in out
        out = b.command(b"h1 SEARCH ALL\r\n")
        assert not any(line.endswith(b" EXPUNGE\r\n") for line in out), out   # no "* n EXPUNGE"
        assert out[-1].startswith(b"h1 OK")
        out = b.command(b"n1 NOOP\r\n")
        assert out == [b"* 2 EXPUNGE\r\n", b"n1 OK NOOP completed\r\n"], out
        assert b.command(b"n2 NOOP\r\n") == [b"n2 OK NOOP completed\r\n"]
        assert b.command(b"f2 FETCH 2 (UID)\r\n")[:-1] == [b"* 2 FETCH (UID 3)\r\n"]
        assert b.command(b"f3 FETCH 3 (UID)\r\n")[-1].startswith(b"f3 BAD")   # 2 messages
        a.close()
        b.close()
    await asyncio.to_thread(run)


async def test_uid_commands_may_announce_and_an_expunged_uid_gives_nothing(
        node: Node) -> None:
    """RFC 9051 section 7.5.1: UID FETCH / UID STORE / UID SEARCH are other commands than
    FETCH / STORE / SEARCH and may carry the EXPUNGE; UID FETCH of an expunged UID returns
    no FETCH for it and OK (section 6.4.9: UIDs that do not exist are ignored)."""
    await fill(node, 3)

    def run() -> None:
        a, b = _two(node)
        _expunge_second(a)
        out = b.command(b"u1 UID FETCH 2 (FLAGS)\r\n")
        assert not any(b" FETCH (" in line for line in out), out
        assert out[-1] == b"u1 OK UID FETCH completed\r\n"
        assert [line for line in out[:-1] if line != b"* 2 EXPUNGE\r\n"] == []
        announced = len(out) == 2
        out = b.command(b"u2 UID SEARCH ALL\r\n")
        assert out[-2:] == [b"* SEARCH 1 3\r\n", b"u2 OK UID SEARCH completed\r\n"], out
        announced = announced or b"* 2 EXPUNGE\r\n" in out
        out = b.command(b"u3 UID STORE 1:3 +FLAGS (\\Seen)\r\n")
        assert b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n" in out or \
            b"* 1 FETCH (FLAGS (\\Seen) UID 1)\r\n" in out, out
        announced = announced or b"* 2 EXPUNGE\r\n" in out
        out = b.command(b"n1 NOOP\r\n")
        # announced exactly once, by whichever command could
        assert out == ([b"n1 OK NOOP completed\r\n"] if announced
                       else [b"* 2 EXPUNGE\r\n", b"n1 OK NOOP completed\r\n"]), out
        a.close()
        b.close()
    await asyncio.to_thread(run)


async def test_flag_changes_of_another_session_come_with_the_next_command(node: Node) -> None:
    """RFC 9051 section 7.5.2 / 5.2: A's flag change reaches B as an untagged FETCH (FLAGS)
    with the next command, also with FETCH and STORE (only expunges wait); new messages
    as EXISTS (section 7.4.1)."""
    await fill(node, 2)

    def run() -> None:
        a, b = _two(node)
        assert a.command(b"x1 STORE 1 +FLAGS (\\Answered)\r\n")[-1].startswith(b"x1 OK")
        out = b.command(b"f1 FETCH 2 (UID)\r\n")
        assert out[0] == b"* 2 FETCH (UID 2)\r\n"
        assert any(line.startswith(b"* 1 FETCH (FLAGS (\\Answered)") for line in out[1:-1])
        assert a.command(b"x2 APPEND INBOX {3+}\r\nabc\r\n")[-1].startswith(b"x2 OK")
        out = b.command(b"n1 NOOP\r\n")
        assert out == [b"* 3 EXISTS\r\n", b"n1 OK NOOP completed\r\n"], out
        a.close()
        b.close()
    await asyncio.to_thread(run)


async def test_copy_or_move_of_messages_expunged_elsewhere_is_expungeissued(
        node: Node) -> None:
    """RFC 9051 section 7.1 EXPUNGEISSUED ("Someone else has issued an EXPUNGE for the
    same mailbox"), RFC 2180 section 4: COPY / MOVE by sequence number of a message that
    the other session expunged copies nothing, so it is NO [EXPUNGEISSUED], not an OK
    that tells the client it was copied; the destination is unchanged (section 6.4.7).
    By UID, a UID that is gone is no error (section 6.4.9)."""
    await fill(node, 3)

    def run() -> None:
        a, b = _two(node)
        assert a.command(b"x1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")[-1].startswith(b"x1 OK")
        assert a.command(b"x2 EXPUNGE\r\n")[-1].startswith(b"x2 OK")
        out = b.command(b"c1 COPY 1 Sent\r\n")
        assert out[-1].startswith(b"c1 NO [EXPUNGEISSUED] "), out
        assert b.command(b"t1 STATUS Sent (MESSAGES)\r\n")[0] == b"* STATUS Sent (MESSAGES 0)\r\n"
        b.command(b"n1 NOOP\r\n")                       # hears of the expunge, if not yet
        assert a.command(b"x3 UID STORE 2 +FLAGS.SILENT (\\Deleted)\r\n")[-1].startswith(b"x3")
        assert a.command(b"x4 EXPUNGE\r\n")[-1].startswith(b"x4 OK")
        out = b.command(b"m1 MOVE 1 Trash\r\n")          # message 1 is now UID 2: gone
        assert out[-1].startswith(b"m1 NO [EXPUNGEISSUED] "), out
        assert b.command(b"t2 STATUS Trash (MESSAGES)\r\n")[0] == \
            b"* STATUS Trash (MESSAGES 0)\r\n"
        assert b.command(b"c2 UID COPY 2 Sent\r\n") == [b"c2 OK COPY completed\r\n"]
        out = b.command(b"c3 UID COPY 3 Sent\r\n")
        assert out[-1].startswith(b"c3 OK [COPYUID "), out
        a.close()
        b.close()
    await asyncio.to_thread(run)


async def test_search_that_leaves_out_messages_expunged_elsewhere_is_expungeissued(
        node: Node) -> None:
    """RFC 9051 section 7.1, EXPUNGEISSUED, whose example is this: a SEARCH while another
    session has expunged messages this one still numbers answers what exists, with
    ``OK [EXPUNGEISSUED]`` (it may not send the EXPUNGE, section 7.5.1); ESEARCH too.  Once
    the expunge is announced (NOOP), SEARCH is a plain OK again."""
    await fill(node, 3)

    def run() -> None:
        a, b = _two(node)
        _expunge_second(a)
        for tag, command, answer in (
                (b"h1", b"SEARCH ALL", b"* SEARCH 1 3\r\n"),
                (b"h2", b"SEARCH UNDELETED", b"* SEARCH 1 3\r\n"),
                (b"h3", b"SEARCH RETURN (ALL) 1:3", b'* ESEARCH (TAG "h3") ALL 1,3\r\n')):
            out = b.command(tag + b" " + command + b"\r\n")
            assert out == [answer, tag + b" OK [EXPUNGEISSUED] SEARCH completed\r\n"], out
        assert b.command(b"n1 NOOP\r\n") == [b"* 2 EXPUNGE\r\n", b"n1 OK NOOP completed\r\n"]
        assert b.command(b"h4 SEARCH ALL\r\n") == [b"* SEARCH 1 2\r\n",
                                                   b"h4 OK SEARCH completed\r\n"]
        a.close()
        b.close()
    await asyncio.to_thread(run)
