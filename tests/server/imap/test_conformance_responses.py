"""Conformance: response codes and the untagged data of SELECT and LIST, byte for byte on
raw connections to a real node (RFC 9051 sections 6.3.2, 6.3.9, 7.1; RFC 3501 section
6.3.1; RFC 5530; RFC 7162 section 3.2.11; RFC 5258)."""

from __future__ import annotations

import asyncio
import re

from server.node.node import Node
from tests.server.imap.mutating import fill, login
from tests.server.imap.test_session import Raw


def _tagged(out: list[bytes]) -> bytes:
    return out[-1]


def _untagged(out: list[bytes]) -> list[bytes]:
    return out[:-1]


def _listed(out: list[bytes]) -> dict[bytes, bytes]:
    """mailbox name -> its attributes, from ``* LIST (attrs) "/" name`` lines."""
    found = {}
    for line in out:
        m = re.fullmatch(rb'\* LIST \(([^)]*)\) "/" (.*)\r\n', line)
        if m:
            found[m.group(2)] = m.group(1)
    return found


def _select(c: Raw, tag: bytes, mailbox: bytes = b"INBOX") -> list[bytes]:
    out = c.command(tag + b" SELECT " + mailbox + b"\r\n")
    assert _tagged(out).startswith(tag + b" OK [READ-WRITE]"), out
    return out


async def test_rev1_select_sends_recent_and_unseen(node: Node) -> None:
    """RFC 3501 section 6.3.1: ``* n RECENT`` is required, ``OK [UNSEEN n]`` names the
    first unseen message; UIDVALIDITY, UIDNEXT and PERMANENTFLAGS as OK codes; no
    UIDNOTSTICKY (our UIDs are sticky, RFC 4315 section 3)."""
    await fill(node, 3)

    def run() -> None:
        c = login(node)
        out = _select(c, b"s1")
        assert out[:3] == [b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
                           b"* 3 EXISTS\r\n", b"* 0 RECENT\r\n"], out
        assert any(line.startswith(b"* OK [UNSEEN 1]") for line in out)
        assert any(line.startswith(b"* OK [UIDVALIDITY ") for line in out)
        assert any(line.startswith(b"* OK [UIDNEXT 4]") for line in out)
        assert any(line.startswith(b"* OK [PERMANENTFLAGS (") and b"\\*" in line
                   for line in out)
        assert not any(b"UIDNOTSTICKY" in line for line in out)
        assert not any(line.startswith(b"* LIST") for line in out)
        c.close()
    await asyncio.to_thread(run)


async def test_rev2_select_sends_list_and_neither_recent_nor_unseen(node: Node) -> None:
    """RFC 9051 section 6.3.2: FLAGS, EXISTS and LIST are required untagged responses,
    UIDVALIDITY, UIDNEXT and PERMANENTFLAGS required OK codes; RECENT and UNSEEN are gone
    from IMAP4rev2 (appendix E, items 6 and 16)."""
    await fill(node, 2)

    def run() -> None:
        c = login(node)
        assert c.command(b"e1 ENABLE IMAP4rev2\r\n")[-1].startswith(b"e1 OK")
        out = _select(c, b"s1", b"inbox")
        assert b"* 2 EXISTS\r\n" in out
        assert b'* LIST () "/" INBOX\r\n' in out      # the canonical name, not "inbox"
        assert not any(b"RECENT" in line or b"[UNSEEN" in line for line in out), out
        assert any(line.startswith(b"* OK [UIDVALIDITY ") for line in out)
        assert any(line.startswith(b"* OK [UIDNEXT 3]") for line in out)
        assert any(line.startswith(b"* OK [PERMANENTFLAGS (") for line in out)
        out = c.command(b's2 EXAMINE "Sent"\r\n')
        assert b'* LIST () "/" Sent\r\n' in out and out[-1].startswith(b"s2 OK [READ-ONLY]")
        c.close()
    await asyncio.to_thread(run)


async def test_select_of_another_mailbox_sends_closed_first(node: Node) -> None:
    """RFC 7162 section 3.2.11 / RFC 9051 section 7.1: selecting while a mailbox is
    selected first answers ``OK [CLOSED]``, before any response about the new mailbox; a
    SELECT that fails leaves no mailbox selected (RFC 9051 section 6.3.2)."""
    def run() -> None:
        c = login(node)
        first = _select(c, b"s1")
        assert not any(b"[CLOSED]" in line for line in first)
        again = _select(c, b"s2", b"Sent")
        assert again[0].startswith(b"* OK [CLOSED]"), again
        failed = c.command(b"s3 SELECT nosuch\r\n")
        assert failed[0].startswith(b"* OK [CLOSED]")
        assert _tagged(failed).startswith(b"s3 NO [NONEXISTENT]")
        assert c.command(b"f1 FETCH 1 FLAGS\r\n")[-1].startswith(b"f1 BAD")   # not selected
        after = _select(c, b"s4")
        assert not any(b"[CLOSED]" in line for line in after)   # nothing was selected
        c.close()
    await asyncio.to_thread(run)


async def test_a_missing_mailbox_is_trycreate_as_a_destination_else_nonexistent(
        node: Node) -> None:
    """RFC 9051 section 7.1: APPEND / COPY / MOVE to a mailbox that does not exist answer
    NO [TRYCREATE] (sections 6.3.12, 6.4.7, 6.4.8); other commands naming it answer
    NO [NONEXISTENT] (RFC 5530 section 3); CREATE of an existing one NO [ALREADYEXISTS];
    DELETE of INBOX NO (section 6.3.5)."""
    await fill(node, 1)

    def run() -> None:
        c = login(node)
        out = c.command(b"a1 APPEND nosuch {3+}\r\nabc\r\n")
        assert out == [b"a1 NO [TRYCREATE] Mailbox does not exist\r\n"], out
        _select(c, b"s1")
        for tag, command in ((b"c1", b"COPY 1 nosuch"), (b"c2", b"MOVE 1 nosuch"),
                             (b"c3", b"UID COPY 1:* nosuch"), (b"c4", b"UID MOVE 1 nosuch")):
            out = c.command(tag + b" " + command + b"\r\n")
            assert _tagged(out).startswith(tag + b" NO [TRYCREATE]"), out
        for tag, command in ((b"n1", b"STATUS nosuch (MESSAGES)"), (b"n2", b"DELETE nosuch"),
                             (b"n3", b"RENAME nosuch other"), (b"n4", b"EXAMINE nosuch")):
            out = c.command(tag + b" " + command + b"\r\n")
            assert _tagged(out).startswith(tag + b" NO [NONEXISTENT]"), out
        for tag, command in ((b"x1", b"CREATE Sent"), (b"x2", b"CREATE inbox"),
                             (b"x3", b"RENAME Sent Drafts")):
            out = c.command(tag + b" " + command + b"\r\n")
            assert _tagged(out).startswith(tag + b" NO [ALREADYEXISTS]"), out
        assert _tagged(c.command(b"d1 DELETE INBOX\r\n")).startswith(b"d1 NO")
        # nothing above left the message or the mailboxes changed
        out = c.command(b'z1 STATUS INBOX (MESSAGES)\r\n')
        assert out[0] == b"* STATUS INBOX (MESSAGES 1)\r\n"
        c.close()
    await asyncio.to_thread(run)


async def test_list_delimiter_wildcards_and_inbox_in_any_case(node: Node) -> None:
    """RFC 9051 section 6.3.9: ``LIST "" ""`` gives the hierarchy delimiter with
    \\Noselect; ``*`` matches across levels, ``%`` within one; INBOX is case-insensitive
    (section 5.1) in patterns too: ``inbox*`` lists INBOX and its children."""
    def run() -> None:
        c = login(node)
        assert c.command(b'l1 LIST "" ""\r\n') == [b'* LIST (\\Noselect) "/" ""\r\n',
                                                   b"l1 OK LIST completed\r\n"]
        for name in (b"INBOX/child", b"INBOX/child/deep", b"inboxes"):
            assert c.command(b"c CREATE " + name + b"\r\n")[-1].startswith(b"c OK")
        star = _listed(c.command(b'l2 LIST "" "INBOX/*"\r\n'))
        assert set(star) == {b"INBOX/child", b"INBOX/child/deep"}
        pct = _listed(c.command(b'l3 LIST "" "INBOX/%"\r\n'))
        assert set(pct) == {b"INBOX/child"}
        assert b"\\HasChildren" in pct[b"INBOX/child"]
        anycase = _listed(c.command(b'l4 LIST "" "inbox*"\r\n'))
        assert set(anycase) == {b"INBOX", b"INBOX/child", b"INBOX/child/deep", b"inboxes"}
        assert set(_listed(c.command(b'l5 LIST "" "Inbox/%"\r\n'))) == {b"INBOX/child"}
        assert set(_listed(c.command(b'l6 LIST "inbox/" "%"\r\n'))) == {b"INBOX/child"}
        assert set(_listed(c.command(b'l7 LIST "" "InBoX"\r\n'))) == {b"INBOX"}
        # other names keep their case
        assert set(_listed(c.command(b'l8 LIST "" "INBOXES"\r\n'))) == set()
        c.close()
    await asyncio.to_thread(run)


async def test_delete_keeps_a_parent_with_children_as_noselect(node: Node) -> None:
    """RFC 9051 section 6.3.5: DELETE of a mailbox with inferiors removes its messages and
    keeps the name with \\Noselect; deleting such a \\Noselect name while it has inferiors
    is an error; once the last child is gone it can be deleted.  \\HasChildren /
    \\HasNoChildren (RFC 5258 section 4, RETURN (CHILDREN)) follow."""
    def run() -> None:
        c = login(node)
        assert c.command(b"c1 CREATE top/leaf/\r\n")[-1].startswith(b"c1 OK")  # 6.3.4
        listed = _listed(c.command(b'l1 LIST "" "top*" RETURN (CHILDREN)\r\n'))
        assert listed == {b"top": b"\\HasChildren", b"top/leaf": b"\\HasNoChildren"}
        assert c.command(b"d1 DELETE top\r\n")[-1].startswith(b"d1 OK")
        listed = _listed(c.command(b'l2 LIST "" "top*"\r\n'))
        assert b"\\Noselect" in listed[b"top"] and b"\\HasChildren" in listed[b"top"]
        assert _tagged(c.command(b"s1 SELECT top\r\n")).startswith(b"s1 NO")
        assert _tagged(c.command(b"d2 DELETE top\r\n")).startswith(b"d2 NO")
        assert c.command(b"d3 DELETE top/leaf\r\n")[-1].startswith(b"d3 OK")
        assert c.command(b"d4 DELETE top\r\n")[-1].startswith(b"d4 OK")
        assert _listed(c.command(b'l3 LIST "" "top*"\r\n')) == {}
        c.close()
    await asyncio.to_thread(run)


async def test_sequence_sets_past_the_end(node: Node) -> None:
    """RFC 9051 section 6.4.9: a UID range n:* always includes the last message's UID,
    even when n is above it; section 9 (seq-number): a sequence number above the number of
    messages, ``*`` in an empty mailbox included, is BAD; 0 is never valid."""
    await fill(node, 3)

    def run() -> None:
        c = login(node)
        _select(c, b"s1")
        assert c.command(b"u1 UID FETCH 99:* (UID)\r\n") == [
            b"* 3 FETCH (UID 3)\r\n", b"u1 OK UID FETCH completed\r\n"]
        assert c.command(b"u2 UID SEARCH UID 99:*\r\n")[0] == b"* SEARCH 3\r\n"
        assert c.command(b"u3 UID FETCH 98:99 (UID)\r\n") == [b"u3 OK UID FETCH completed\r\n"]
        for tag, command in ((b"b1", b"FETCH 4 (UID)"), (b"b2", b"FETCH 0 (UID)"),
                             (b"b3", b"STORE 2:4 +FLAGS (\\Seen)"), (b"b4", b"COPY 9 Trash")):
            assert _tagged(c.command(tag + b" " + command + b"\r\n")).startswith(tag + b" BAD")
        _select(c, b"s2", b"Drafts")                    # empty
        assert _tagged(c.command(b"b5 FETCH 1:* (UID)\r\n")).startswith(b"b5 BAD")
        assert c.command(b"u4 UID FETCH 1:* (UID)\r\n") == [b"u4 OK UID FETCH completed\r\n"]
        c.close()
    await asyncio.to_thread(run)
