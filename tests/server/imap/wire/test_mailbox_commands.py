"""Mailbox commands, with the RFCs' examples (sections cited)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from server.imap.wire.commands import (
    Append, AppendMessage, Command, Create, Delete, GetMetadata, GetQuota, GetQuotaRoot,
    ListCmd, Lsub, Notify, NotifyEventGroup, QResync, Rename, Select, SetMetadata, SetQuota,
    Status, Subscribe, Unsubscribe,
)
from server.imap.wire.fetch import FetchAttr, FetchBody, Section
from server.imap.wire.parser import parse_command
from server.imap.wire.sequence import SequenceSet

from ._feed import expect_bad

PDT = timezone(timedelta(hours=-7))
MSG = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nSubject: afternoon meeting\r\n\r\nHello\r\n"

EXAMPLES: list[tuple[str, bytes, Command]] = [
    ("RFC 9051 §6.3.2", b"A142 SELECT INBOX\r\n", Select("A142", "INBOX")),
    ("RFC 9051 §5.1 inbox", b"A142 select inbox\r\n", Select("A142", "INBOX")),
    ("RFC 9051 §6.3.3", b"A932 EXAMINE blurdybloop\r\n", Select("A932", "blurdybloop", True)),
    ("RFC 7162 §3.1.8", b"a SELECT INBOX (CONDSTORE)\r\n", Select("a", "INBOX", condstore=True)),
    ("RFC 7162 §3.2.5.2",
     b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
     Select("A02", "INBOX", qresync=QResync(67890007, 20050715194045000,
            SequenceSet(((41, 41), (43, 211), (214, 541)))))),
    ("RFC 7162 §3.2.5.2 seq-match",
     b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:3 7:9)))\r\n",
     Select("B04", "INBOX", qresync=QResync(67890007, 90060115194045000,
            SequenceSet(((41, 211), (214, 541))),
            (SequenceSet(((1, 3),)), SequenceSet(((7, 9),)))))),
    ("RFC 7162 §3.2.5 no known uids", b"a EXAMINE x (QRESYNC (1 2))\r\n",
     Select("a", "x", True, qresync=QResync(1, 2))),
    ("RFC 9051 §6.3.4", b"A003 CREATE owatagusiam/\r\n", Create("A003", "owatagusiam/")),
    ("RFC 6154 §5.3", b't1 CREATE "Important Messages" (USE (\\Important))\r\n',
     Create("t1", "Important Messages", ("\\Important",))),
    ("RFC 9051 §6.3.5", b"A683 DELETE blurdybloop\r\n", Delete("A683", "blurdybloop")),
    ("RFC 9051 §6.3.6", b"A683 RENAME blurdybloop sarasoop\r\n",
     Rename("A683", "blurdybloop", "sarasoop")),
    ("RFC 9051 §6.3.7", b"A002 SUBSCRIBE #news.comp.mail.mime\r\n",
     Subscribe("A002", "#news.comp.mail.mime")),
    ("RFC 9051 §6.3.8", b"A002 UNSUBSCRIBE #news.comp.mail.mime\r\n",
     Unsubscribe("A002", "#news.comp.mail.mime")),
    ("RFC 3501 §5.1.3", b"a CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n",
     Create("a", "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e")),
    ("RFC 9051 §6.3.9", b'A101 LIST "" ""\r\n', ListCmd("A101", "", ("",))),
    ("RFC 9051 §6.3.9 wildcards", b"A202 LIST ~/Mail/ %\r\n", ListCmd("A202", "~/Mail/", ("%",))),
    ("RFC 9051 §6.3.9 star", b'A682 LIST "" *\r\n', ListCmd("A682", "", ("*",))),
    ("RFC 5258 §5.1", b'A02 LIST (SUBSCRIBED) "" "*"\r\n',
     ListCmd("A02", "", ("*",), ("SUBSCRIBED",), extended=True)),
    ("RFC 5258 §5.3", b'A03 LIST () "" "%" RETURN (CHILDREN)\r\n',
     ListCmd("A03", "", ("%",), (), ("CHILDREN",), extended=True)),
    ("RFC 5258 §5.9", b'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"\r\n',
     ListCmd("C04", "", ("%",), ("SUBSCRIBED", "RECURSIVEMATCH"), extended=True)),
    ("RFC 5258 §5.10 patterns", b'BBB LIST "" ("INBOX" "Drafts" "Sent/%")\r\n',
     ListCmd("BBB", "", ("INBOX", "Drafts", "Sent/%"), extended=True)),
    ("RFC 5819 §5", b'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))\r\n',
     ListCmd("A01", "", ("%",), (), ("STATUS",), ("MESSAGES", "UNSEEN"), True)),
    ("RFC 6154 §5.2", b't1 LIST (SPECIAL-USE) "" "*"\r\n',
     ListCmd("t1", "", ("*",), ("SPECIAL-USE",), extended=True)),
    ("RFC 3501 §6.3.9", b'A002 LSUB "#news." "comp.mail.*"\r\n',
     Lsub("A002", "#news.", "comp.mail.*")),
    ("RFC 9051 §6.3.11", b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
     Status("A042", "blurdybloop", ("UIDNEXT", "MESSAGES"))),
    ("RFC 8438 §2", b"a STATUS INBOX (size)\r\n", Status("a", "INBOX", ("SIZE",))),
    ("RFC 7162 §3.1.10 / RFC 8474 §4 / RFC 7889",
     b"a STATUS x (HIGHESTMODSEQ MAILBOXID APPENDLIMIT DELETED)\r\n",
     Status("a", "x", ("HIGHESTMODSEQ", "MAILBOXID", "APPENDLIMIT", "DELETED"))),
    ("RFC 9051 §6.3.12",
     b'A003 APPEND saved-messages (\\Seen) {%d}\r\n' % len(MSG) + MSG + b"\r\n",
     Append("A003", "saved-messages", (AppendMessage(MSG, ("\\Seen",)),))),
    ("RFC 3502 §6 MULTIAPPEND",
     b'A003 APPEND saved-messages (\\Seen) " 7-Feb-1994 21:52:25 -0700" {%d}\r\n' % len(MSG)
     + MSG + b" {3}\r\nabc\r\n",
     Append("A003", "saved-messages", (
         AppendMessage(MSG, ("\\Seen",), datetime(1994, 2, 7, 21, 52, 25, tzinfo=PDT)),
         AppendMessage(b"abc")))),
    ("RFC 3516 §4.4 literal8", b"a APPEND x ~{3}\r\na\x00b\r\n",
     Append("a", "x", (AppendMessage(b"a\x00b", binary=True),))),
    ("RFC 6855 §4 UTF8", "a APPEND x UTF8 (~{3}\r\nüb)\r\n".encode(),
     Append("a", "x", (AppendMessage("üb".encode(), utf8=True),))),
    ("RFC 7888 LITERAL+",
     b"a APPEND x {3+}\r\nabc\r\n", Append("a", "x", (AppendMessage(b"abc"),))),
    ("RFC 9208 §4.1.1",
     b'G0001 GETQUOTA "!partition.sda4"\r\n', GetQuota("G0001", "!partition.sda4")),
    ("RFC 9208 §4.1.2", b"G0002 GETQUOTAROOT INBOX\r\n", GetQuotaRoot("G0002", "INBOX")),
    ("RFC 9208 §4.1.3", b'S0000 SETQUOTA "User quota" (STORAGE 510)\r\n',
     SetQuota("S0000", "User quota", (("STORAGE", 510),))),
    ("RFC 9208 §4.1.3 none", b'S SETQUOTA "" ()\r\n', SetQuota("S", "", ())),
    ("RFC 5464 §4.2", b'a GETMETADATA "" /shared/comment\r\n',
     GetMetadata("a", "", ("/shared/comment",))),
    ("RFC 5464 §4.2.2", b"a GETMETADATA (DEPTH infinity MAXSIZE 1024) INBOX (/a /b)\r\n",
     GetMetadata("a", "INBOX", ("/a", "/b"), 1024, "infinity")),
    ("RFC 5464 §4.3", b"a SETMETADATA INBOX (/private/comment {15+}\r\nMy new\r\ncomment)\r\n",
     SetMetadata("a", "INBOX", (("/private/comment", b"My new\r\ncomment"),))),
    ("RFC 5464 §4.3 remove", b"a SETMETADATA INBOX (/private/comment NIL)\r\n",
     SetMetadata("a", "INBOX", (("/private/comment", None),))),
    ("RFC 5465 §3", b"a NOTIFY NONE\r\n", Notify("a", None)),
    ("RFC 5465 §6",
     b"a notify set status (selected (MessageNew (uid body.peek[header.fields (from to subject)])"
     b" MessageExpunge)) (subtree Lists (MessageNew))\r\n",
     Notify("a", (
         NotifyEventGroup("SELECTED", (), ("MESSAGENEW", "MESSAGEEXPUNGE"), (
             FetchAttr("UID"),
             FetchBody(Section((), "HEADER.FIELDS", ("from", "to", "subject")), peek=True))),
         NotifyEventGroup("SUBTREE", ("Lists",), ("MESSAGENEW",)),
     ), status=True)),
]


@pytest.mark.parametrize(("where", "wire", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_examples(where: str, wire: bytes, expected: Command) -> None:
    assert parse_command(wire) == expected


def test_utf8_names_in_rev2_mode() -> None:
    """RFC 9051 §5.1: IMAP4rev2 names are UTF-8; modified UTF-7 is not decoded."""
    assert parse_command("a SELECT \"Entwürfe\"\r\n".encode(), utf8=True) == Select("a", "Entwürfe")
    assert parse_command(b"a SELECT Entw&APw-rfe\r\n", utf8=True) == Select("a", "Entw&APw-rfe")


BAD = [
    b"a SELECT\r\n",
    b"a SELECT INBOX (FOO)\r\n",
    b"a SELECT INBOX (QRESYNC (0 1))\r\n",  # uidvalidity is nz-number
    b"a SELECT INBOX (QRESYNC (1 2 $))\r\n",
    b"a SELECT &Jjo!\r\n",  # RFC 3501 §5.1.3 invalid modified UTF-7
    b"a SELECT caf\xc3\xa9\r\n",  # 8-bit in a rev1 name
    b"a CREATE x (USE \\Drafts)\r\n",
    b"a STATUS x ()\r\n",
    b"a STATUS x (MESSAGES BOGUS)\r\n",
    b"a APPEND x\r\n",
    b'a APPEND x "abc"\r\n',  # message data must be a literal
    b'a APPEND x "31-Feb-2020 00:00:00 +0000" {1}\r\na\r\n',  # no such day
    b'a APPEND x "1-Jan-2020 24:00:00 +0000" {1}\r\na\r\n',
    b"a APPEND x UTF8 ({1}\r\na)\r\n",  # UTF8 data must be literal8
    b"a LIST\r\n",
    b'a LIST "" x RETURN\r\n',
    b'a LIST "" x RETURN (STATUS (FOO))\r\n',
    b"a GETMETADATA (DEPTH 2) INBOX /a\r\n",
    b"a NOTIFY SET\r\n",
    b"a NOTIFY SET (everything (MessageNew))\r\n",
    b"a NOTIFY SET (selected (Bogus))\r\n",
    b"a NOTIFY SET (selected (MessageNew MessageNew))\r\n",
    b"a SETQUOTA x (STORAGE)\r\n",
]


@pytest.mark.parametrize("wire", BAD)
def test_malformed_is_bad_with_the_tag(wire: bytes) -> None:
    expect_bad(wire)
