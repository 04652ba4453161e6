"""What a real client's parser makes of our responses: imapclient's response parser (the one
imapclient and its users run) reads the serializer's output, literals split as imaplib does."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from imapclient.response_parser import parse_fetch_response, parse_response

from server.imap.wire.fetch import FetchBody, Section
from server.imap.wire.fetch_data import (
    FetchData, item_body, item_emailid, item_envelope, item_flags, item_internaldate,
    item_modseq, item_section, item_size, item_uid,
)
from server.imap.wire.responses import ESearchData, ListData, StatusData
from server.imap.wire.sequence import SequenceSet
from server.mime.summary import parse_message

_LITERAL = re.compile(rb"\{(\d+)\}\r\n")
MESSAGE = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"To: imap@cac.washington.edu, \"Ann \\\"the\\\" Writer\" <ann@example.org>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"\r\n"
    b"Hello\r\n"
)


def imaplib_items(wire: bytes) -> list[bytes | tuple[bytes, bytes]]:
    """The data imaplib hands to imapclient for one untagged response: the text after
    "* " (and after "n FETCH" moved in front), each literal split off as (line, octets)."""
    m = re.match(rb"\* (\d+) FETCH |\* [A-Z-]+ ", wire)
    assert m is not None
    rest = (m.group(1) + b" " if m.group(1) else b"") + wire[m.end():]
    out: list[bytes | tuple[bytes, bytes]] = []
    while (lit := _LITERAL.search(rest)) is not None:
        size = int(lit.group(1))
        out.append((rest[: lit.end() - 2], rest[lit.end() : lit.end() + size]))
        rest = rest[lit.end() + size :]
    out.append(rest.removesuffix(b"\r\n"))
    return [item for item in out if item != b""]


def test_fetch_as_imapclient_reads_it() -> None:
    summary = parse_message(MESSAGE)
    when = datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(timedelta(hours=-7)))
    header = MESSAGE[: MESSAGE.index(b"\r\n\r\n") + 4]
    wire = FetchData(12, (
        item_uid(4827313), item_flags(("\\Seen", "$Forwarded")), item_internaldate(when),
        item_size(len(MESSAGE)), item_modseq(917162500), item_emailid("Mabc"),
        item_envelope(summary), item_body(summary),
        item_section(FetchBody(Section((), "HEADER")), header),
    )).render()
    parsed = parse_fetch_response(imaplib_items(wire), normalise_times=False)  # type: ignore[arg-type]
    data = parsed[4827313]
    assert data[b"SEQ"] == 12
    assert data[b"FLAGS"] == (b"\\Seen", b"$Forwarded")
    assert data[b"INTERNALDATE"] == when
    assert data[b"RFC822.SIZE"] == len(MESSAGE)
    assert data[b"MODSEQ"] == (917162500,)
    assert data[b"BODY[HEADER]"] == header
    env = data[b"ENVELOPE"]
    assert env.subject == b"=?utf-8?q?Gr=C3=BC=C3=9Fe?="
    assert env.message_id == b"<B27397-0100000@cac.washington.edu>"
    assert [(a.name, a.mailbox, a.host) for a in env.to] == [
        (None, b"imap", b"cac.washington.edu"), (b'Ann "the" Writer', b"ann", b"example.org"),
    ]
    assert tuple(data[b"BODY"][:2]) == (b"TEXT", b"PLAIN")


def test_list_status_esearch_as_imapclient_reads_them() -> None:
    (flags, delim, name) = parse_response(
        imaplib_items(ListData(("\\HasNoChildren",), "/", "Entwürfe").render())  # type: ignore[arg-type]
    )
    assert (flags, delim, name) == ((b"\\HasNoChildren",), b"/", b"Entw&APw-rfe")
    status = parse_response(
        imaplib_items(StatusData("a b", (("MESSAGES", 3), ("UIDNEXT", 9))).render())  # type: ignore[arg-type]
    )
    assert status == (b"a b", (b"MESSAGES", 3, b"UIDNEXT", 9))
    esearch = parse_response(
        imaplib_items(ESearchData("A1", uid=True, all=SequenceSet(((2, 4),)), count=3).render())  # type: ignore[arg-type]
    )
    assert esearch == ((b"TAG", b"A1"), b"UID", b"ALL", b"2:4", b"COUNT", 3)
