"""NOTIFY (RFC 5465) through a real node: one session of alice asks for events, another
makes the changes, and the first reads the responses pushed to it with no command in
progress (section 3) -- STATUS for other mailboxes, EXISTS / FETCH / EXPUNGE for the
selected one, LIST for names and subscriptions, METADATA for annotations -- plus the
command's own rules (BAD, BADEVENT, NOTIFICATIONOVERFLOW, SET STATUS, NONE)."""

from __future__ import annotations

import re

import pytest

from server.imap.session import notify
from server.node.node import Node
from tests.server.imap.test_metadata import finish, login, run
from tests.server.imap.test_session import Raw, raw_tls

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

MESSAGE = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


def append(c: Raw, tag: bytes, mailbox: bytes) -> None:
    c.send(tag + b" APPEND " + mailbox + b" {%d}\r\n" % len(MESSAGE))
    assert c.line().startswith(b"+ ")
    assert finish(c, tag, MESSAGE + b"\r\n")[-1].startswith(tag + b" OK")


def ok(c: Raw, command: bytes) -> list[bytes]:
    out = c.command(command)
    assert out[-1].startswith(command.split(b" ", 1)[0] + b" OK"), out
    return out


async def test_capability_and_status_of_other_mailboxes(node: Node) -> None:
    """Sections 5.2 and 5.3: a new or expunged message in another mailbox is a STATUS
    (MESSAGES, UIDNEXT), sent while the client is not running a command."""
    def body() -> None:
        a, b = login(node), login(node)
        assert b"NOTIFY" in a.command(b"c CAPABILITY\r\n")[0].split()
        ok(a, b"n NOTIFY SET (personal (MessageNew MessageExpunge))\r\n")
        append(b, b"b1", b"Drafts")
        assert a.line() == b"* STATUS Drafts (MESSAGES 1 UIDNEXT 2)\r\n"
        ok(b, b"b2 SELECT Drafts\r\n")
        ok(b, b"b3 STORE 1 +FLAGS (\\Deleted)\r\n")
        ok(b, b"b4 EXPUNGE\r\n")
        assert a.line() == b"* STATUS Drafts (MESSAGES 0 UIDNEXT 2)\r\n"
        ok(a, b"n2 NOTIFY NONE\r\n")
        a.close()
        b.close()
    await run(node, body)


async def test_flag_change_in_other_mailbox(node: Node) -> None:
    """Section 5.1: a flag change in another mailbox is a STATUS with UIDVALIDITY and
    HIGHESTMODSEQ (and UNSEEN, which it changed)."""
    def body() -> None:
        a, b = login(node), login(node)
        ok(a, b"n NOTIFY SET (mailboxes Drafts (MessageNew MessageExpunge FlagChange))\r\n")
        append(b, b"b1", b"Drafts")
        line = a.line()
        assert re.fullmatch(rb"\* STATUS Drafts \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ "
                            rb"HIGHESTMODSEQ (\d+) UNSEEN 1\)\r\n", line), line
        ok(b, b"b2 SELECT Drafts\r\n")
        ok(b, b"b3 STORE 1 +FLAGS (\\Seen)\r\n")
        line = a.line()
        assert re.fullmatch(rb"\* STATUS Drafts \(UIDVALIDITY \d+ HIGHESTMODSEQ \d+ "
                            rb"UNSEEN 0\)\r\n", line), line
        a.close()
        b.close()
    await run(node, body)


async def test_selected_mailbox_events(node: Node) -> None:
    """Sections 5.1-5.3 for the selected mailbox: EXISTS then a FETCH of MessageNew's
    attributes, FETCH with FLAGS and UID for a flag change, EXPUNGE."""
    def body() -> None:
        a, b = login(node), login(node)
        ok(a, b"s SELECT INBOX\r\n")
        ok(a, b"n NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))\r\n")
        append(b, b"b1", b"INBOX")
        assert a.line() == b"* 1 EXISTS\r\n"
        assert a.line() == b"* 1 FETCH (UID 1 FLAGS ())\r\n"
        ok(b, b"b2 SELECT INBOX\r\n")
        ok(b, b"b3 STORE 1 +FLAGS (\\Flagged)\r\n")
        line = a.line()
        assert line.startswith(b"* 1 FETCH (") and b"\\Flagged" in line and b"UID 1" in line
        ok(b, b"b4 STORE 1 +FLAGS (\\Deleted)\r\n")
        assert b"\\Deleted" in a.line()
        ok(b, b"b5 EXPUNGE\r\n")
        assert a.line() == b"* 1 EXPUNGE\r\n"
        a.close()
        b.close()
    await run(node, body)


async def test_selected_is_left_to_selected_filters(node: Node) -> None:
    """Section 3.1: without SELECTED the selected mailbox has no message events, even
    when PERSONAL names it: the first push is the other mailbox's STATUS."""
    def body() -> None:
        a, b = login(node), login(node)
        ok(a, b"s SELECT INBOX\r\n")
        ok(a, b"n NOTIFY SET (personal (MessageNew MessageExpunge))\r\n")
        append(b, b"b1", b"INBOX")
        append(b, b"b2", b"Drafts")
        assert a.line() == b"* STATUS Drafts (MESSAGES 1 UIDNEXT 2)\r\n"
        a.close()
        b.close()
    await run(node, body)


async def test_selected_delayed_keeps_expunges(node: Node) -> None:
    """Section 6.1.2: SELECTED-DELAYED pushes new messages but keeps expunges for a
    command that may announce them."""
    def body() -> None:
        a, b = login(node), login(node)
        ok(a, b"s SELECT INBOX\r\n")
        ok(a, b"n NOTIFY SET (selected-delayed (MessageNew MessageExpunge))\r\n")
        append(b, b"b1", b"INBOX")
        assert a.line() == b"* 1 EXISTS\r\n"
        ok(b, b"b2 SELECT INBOX\r\n")
        ok(b, b"b3 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
        ok(b, b"b4 EXPUNGE\r\n")
        append(b, b"b5", b"INBOX")
        # no FETCH for the \\Deleted flag (no FlagChange asked, section 5.1), no EXPUNGE:
        # message 1 is still there for this session
        assert a.line() == b"* 2 EXISTS\r\n"
        out = ok(a, b"o NOOP\r\n")
        assert b"* 1 EXPUNGE\r\n" in out
        a.close()
        b.close()
    await run(node, body)


async def test_mailbox_names_and_subscriptions(node: Node) -> None:
    """Sections 5.4 and 5.5: LIST for a created mailbox, OLDNAME for a renamed one,
    \\NonExistent for a deleted one, \\Subscribed when subscribed."""
    def body() -> None:
        a, b = login(node), login(node)
        ok(a, b"n NOTIFY SET (personal (MailboxName SubscriptionChange))\r\n")
        ok(b, b"b1 CREATE Work\r\n")
        assert a.line() == b'* LIST (\\HasNoChildren) "/" Work\r\n'
        ok(b, b"b2 SUBSCRIBE Work\r\n")
        assert a.line() == b'* LIST (\\HasNoChildren \\Subscribed) "/" Work\r\n'
        ok(b, b"b3 RENAME Work Play\r\n")
        assert a.line() == b'* LIST (\\HasNoChildren) "/" Play ("OLDNAME" (Work))\r\n'
        ok(b, b"b4 DELETE Play\r\n")
        assert a.line() == b'* LIST (\\NonExistent) "/" Play\r\n'
        a.close()
        b.close()
    await run(node, body)


async def test_metadata_changes(node: Node) -> None:
    """Sections 5.6 and 5.7: METADATA with the names of the changed entries, no values
    (RFC 5464 section 4.4.2)."""
    def body() -> None:
        a, b = login(node), login(node)
        ok(a, b"n NOTIFY SET (personal (MailboxMetadataChange ServerMetadataChange))\r\n")
        ok(b, b'b1 SETMETADATA INBOX (/private/comment "x")\r\n')
        assert a.line() == b"* METADATA INBOX /private/comment\r\n"
        ok(b, b'b2 SETMETADATA "" (/shared/comment "y")\r\n')
        assert a.line() == b'* METADATA "" /shared/comment\r\n'
        a.close()
        b.close()
    await run(node, body)


async def test_events_during_idle(node: Node) -> None:
    """Section 4: during IDLE the server sends the events NOTIFY asked for."""
    def body() -> None:
        a, b = login(node), login(node)
        ok(a, b"n NOTIFY SET (personal (MailboxName))\r\n")
        a.send(b"i IDLE\r\n")
        assert a.line().startswith(b"+ ")
        ok(b, b"b1 CREATE Other\r\n")
        assert a.line() == b'* LIST (\\HasNoChildren) "/" Other\r\n'
        assert finish(a, b"i", b"DONE\r\n")[-1].startswith(b"i OK")
        a.close()
        b.close()
    await run(node, body)


async def test_set_status_and_rules(node: Node) -> None:
    """Section 3.1: SET STATUS gives each other watched mailbox's STATUS before the OK;
    sections 5 and 6.1: BAD for event lists the client must not send; NO [BADEVENT]
    listing what is served for an event that is not; NONE ends it."""
    def body() -> None:
        a = login(node)
        ok(a, b"s SELECT INBOX\r\n")
        out = ok(a, b"n NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) "
                    b"(mailboxes (Drafts Sent) (MessageNew MessageExpunge))\r\n")
        assert [re.sub(rb"UIDVALIDITY \d+", b"UIDVALIDITY v", line) for line in out[:-1]] \
            == [b"* STATUS Drafts (MESSAGES 0 UIDNEXT 1 UIDVALIDITY v)\r\n",
                b"* STATUS Sent (MESSAGES 0 UIDNEXT 1 UIDVALIDITY v)\r\n"]
        for i, groups in enumerate([b"(selected (MessageNew))",
                                    b"(personal (MessageExpunge))",
                                    b"(personal (FlagChange))",
                                    b"(selected (MessageNew MessageExpunge MailboxName))",
                                    b"(selected NONE) (selected-delayed NONE)"]):
            tag = b"x%d" % i
            out = a.command(tag + b" NOTIFY SET " + groups + b"\r\n")
            assert out[-1].startswith(tag + b" BAD"), (groups, out)
        out = a.command(b"y NOTIFY SET (personal (MessageNew MessageExpunge "
                        b"AnnotationChange))\r\n")
        assert out[-1].startswith(b"y NO [BADEVENT (MessageNew MessageExpunge FlagChange "
                                  b"MailboxName SubscriptionChange MailboxMetadataChange "
                                  b"ServerMetadataChange)]")
        ok(a, b"z NOTIFY NONE\r\n")
        a.close()
    await run(node, body)


async def test_overflow(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Section 3.1: the server MAY refuse what it will not watch, NO
    [NOTIFICATIONOVERFLOW]; section 5.8: past the limit later, an untagged OK
    [NOTIFICATIONOVERFLOW] and no more events."""
    monkeypatch.setattr(notify, "MAX_WATCHED", 6)   # the six mailboxes of a new account

    def body() -> None:
        a, b = login(node), login(node)
        out = a.command(b"n NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))\r\n")
        assert out[-1].startswith(b"n OK"), out
        ok(b, b"b1 CREATE Seventh\r\n")
        assert a.line() == b"* OK [NOTIFICATIONOVERFLOW] Too many mailboxes to watch; " \
            b"NOTIFY NONE\r\n"
        out = a.command(b"m NOTIFY SET (personal (MessageNew MessageExpunge))\r\n")
        assert out[-1].startswith(b"m NO [NOTIFICATIONOVERFLOW]")
        a.close()
        b.close()
    await run(node, body)


async def test_not_before_login(node: Node) -> None:
    """Section 3: NOTIFY belongs to the authenticated and selected states."""
    def body() -> None:
        c = raw_tls(node)
        c.line()
        assert c.command(b"a NOTIFY NONE\r\n")[-1].startswith(b"a BAD")
        c.close()
    await run(node, body)
