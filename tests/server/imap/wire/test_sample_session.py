"""RFC 9051 §8 "Sample IMAP4rev2 Connection": the client's side read by the reader (whole and
byte by byte), the server's side produced by the serializer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from server.imap.wire.commands import Fetch, Login, Logout, Select, Store
from server.imap.wire.fetch import MACROS, FetchBody, Section
from server.imap.wire.fetch_data import FetchData
from server.imap.wire.responses import (
    Code, ExistsData, FlagsData, ListData, Tagged, Untagged,
)
from server.imap.wire.sequence import SequenceSet
from server.imap.wire.values import imap_datetime, Atom

from ._feed import run

CLIENT = (
    b"a001 login mrc secret\r\n"
    b"a002 select inbox\r\n"
    b"a003 fetch 12 full\r\n"
    b"a004 fetch 12 body[header]\r\n"
    b"a005 store 12 +flags \\deleted\r\n"
    b"a006 logout\r\n"
)
TWELVE = SequenceSet(((12, 12),))
COMMANDS = [
    Login("a001", "mrc", "secret"),
    Select("a002", "INBOX"),
    Fetch("a003", TWELVE, MACROS["FULL"]),
    Fetch("a004", TWELVE, (FetchBody(Section((), "HEADER")),)),
    Store("a005", TWELVE, "+", ("\\Deleted",)),
    Logout("a006"),
]


def test_client_side() -> None:
    assert run([CLIENT]) == COMMANDS
    assert run([CLIENT[i : i + 1] for i in range(len(CLIENT))]) == COMMANDS


HEADER = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev2 WG mtg summary and minutes\r\n"
    b"\r\n"
)


def test_server_side() -> None:
    pdt = timezone(timedelta(hours=-7))
    responses = [
        Untagged("OK", "IMAP4rev2 Service Ready",
                 Code.capability(("STARTTLS", "AUTH=SCRAM-SHA-256", "LOGINDISABLED", "IMAP4rev2"))),
        Tagged("a001", "OK", "LOGIN completed"),
        ExistsData(18),
        FlagsData(("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")),
        Untagged("OK", "UIDs valid", Code.number("UIDVALIDITY", 3857529045)),
        ListData((), "/", "INBOX"),
        Tagged("a002", "OK", "SELECT completed", Code("READ-WRITE")),
        FetchData(12, ((b"FLAGS", (Atom("\\Seen"),)),
                       (b"INTERNALDATE", imap_datetime(datetime(1996, 7, 17, 2, 44, 25,
                                                                tzinfo=pdt))),
                       (b"RFC822.SIZE", 4286))),
        Tagged("a003", "OK", "FETCH completed"),
        FetchData(12, ((FetchBody(Section((), "HEADER")).response_name(), HEADER),)),
        Tagged("a004", "OK", "FETCH completed"),
        FetchData(12, ((b"FLAGS", (Atom("\\Seen"), Atom("\\Deleted"))),)),
        Tagged("a005", "OK", "+FLAGS completed"),
        Untagged("BYE", "IMAP4rev2 server terminating connection"),
        Tagged("a006", "OK", "LOGOUT completed"),
    ]
    assert b"".join(r.render() for r in responses) == (
        b"* OK [CAPABILITY STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED IMAP4rev2] "
        b"IMAP4rev2 Service Ready\r\n"
        b"a001 OK LOGIN completed\r\n"
        b"* 18 EXISTS\r\n"
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
        b'* LIST () "/" INBOX\r\n'
        b"a002 OK [READ-WRITE] SELECT completed\r\n"
        b'* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
        b"RFC822.SIZE 4286)\r\n"
        b"a003 OK FETCH completed\r\n"
        b"* 12 FETCH (BODY[HEADER] {%d}\r\n" % len(HEADER) + HEADER + b")\r\n"
        b"a004 OK FETCH completed\r\n"
        b"* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\n"
        b"a005 OK +FLAGS completed\r\n"
        b"* BYE IMAP4rev2 server terminating connection\r\n"
        b"a006 OK LOGOUT completed\r\n"
    )
