"""FETCH, STORE, COPY, MOVE, EXPUNGE, REPLACE and the UID forms (RFC examples, sections cited)."""

from __future__ import annotations

import pytest

from server.imap.wire.commands import (
    AppendMessage, Check, Close, Command, Copy, Expunge, Fetch, Move, Replace, Store, Unselect,
)
from server.imap.wire.fetch import (
    MACROS, FetchAttr, FetchBinarySize, FetchBody, FetchPreview, Section,
)
from server.imap.wire.parser import parse_command
from server.imap.wire.sequence import STAR, SequenceSet

from ._feed import expect_bad


def seq(*ranges: tuple[int | str, int | str]) -> SequenceSet:
    return SequenceSet(tuple(ranges))  # type: ignore[arg-type]


FLAGS = FetchAttr("FLAGS")
EXAMPLES: list[tuple[str, bytes, Command]] = [
    ("RFC 9051 §6.4.1", b"FXXZ CHECK\r\n", Check("FXXZ")),
    ("RFC 9051 §6.4.2", b"A341 CLOSE\r\n", Close("A341")),
    ("RFC 9051 §6.4.2 / RFC 3691", b"A342 UNSELECT\r\n", Unselect("A342")),
    ("RFC 9051 §6.4.3", b"A202 EXPUNGE\r\n", Expunge("A202")),
    ("RFC 4315 §2.1", b"A003 UID EXPUNGE 3000:3002\r\n", Expunge("A003", seq((3000, 3002)))),
    ("RFC 9051 §6.4.5", b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
     Fetch("A654", seq((2, 4)),
           (FLAGS, FetchBody(Section((), "HEADER.FIELDS", ("DATE", "FROM")))))),
    ("RFC 9051 §8", b"a003 fetch 12 full\r\n", Fetch("a003", seq((12, 12)), MACROS["FULL"])),
    ("RFC 9051 §8 body[header]", b"a004 fetch 12 body[header]\r\n",
     Fetch("a004", seq((12, 12)), (FetchBody(Section((), "HEADER")),))),
    ("RFC 9051 §6.4.5 ALL", b"a FETCH 1:* ALL\r\n", Fetch("a", seq((1, STAR)), MACROS["ALL"])),
    ("RFC 9051 §6.4.5 FAST", b"a FETCH * FAST\r\n", Fetch("a", seq((STAR, STAR)), MACROS["FAST"])),
    ("RFC 9051 §6.4.5 parts",
     b"a FETCH 1 (BODY.PEEK[4.2.2.1] BODY[3.MIME] BODY[2.TEXT]<0.2048> BODY[] RFC822.SIZE)\r\n",
     Fetch("a", seq((1, 1)), (FetchBody(Section((4, 2, 2, 1)), peek=True),
           FetchBody(Section((3,), "MIME")), FetchBody(Section((2,), "TEXT"), partial=(0, 2048)),
           FetchBody(Section()), FetchAttr("RFC822.SIZE")))),
    ("RFC 9051 §6.4.5 HEADER.FIELDS.NOT", b"a FETCH 1 BODY[1.HEADER.FIELDS.NOT (Received)]\r\n",
     Fetch("a", seq((1, 1)), (FetchBody(Section((1,), "HEADER.FIELDS.NOT", ("Received",))),))),
    ("RFC 3501 §6.4.5 RFC822 forms", b"a FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT)\r\n",
     Fetch("a", seq((1, 1)), (FetchAttr("RFC822"), FetchAttr("RFC822.HEADER"),
           FetchAttr("RFC822.TEXT")))),
    ("RFC 3516 §4.2", b"t FETCH 1 (BINARY[1]<0.10> BINARY.PEEK[] BINARY.SIZE[1.2])\r\n",
     Fetch("t", seq((1, 1)), (FetchBody(Section((1,)), binary=True, partial=(0, 10)),
           FetchBody(Section(), peek=True, binary=True), FetchBinarySize((1, 2))))),
    ("RFC 7162 §3.1.4.1", b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n",
     Fetch("s100", seq((1, STAR)), (FLAGS,), uid=True, changed_since=12345)),
    ("RFC 7162 §3.2.6", b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
     Fetch("s100", seq((300, 500)), (FLAGS,), True, 12345, True)),
    ("RFC 7162 §3.1.4.1 MODSEQ", b"a FETCH 1:* (FLAGS MODSEQ)\r\n",
     Fetch("a", seq((1, STAR)), (FLAGS, FetchAttr("MODSEQ")))),
    ("RFC 8474 §5", b"a UID FETCH 1:* (EMAILID THREADID)\r\n",
     Fetch("a", seq((1, STAR)), (FetchAttr("EMAILID"), FetchAttr("THREADID")), uid=True)),
    ("RFC 8514 §4", b"a FETCH 1 SAVEDATE\r\n", Fetch("a", seq((1, 1)), (FetchAttr("SAVEDATE"),))),
    ("RFC 8970 §4", b"a FETCH 1 (PREVIEW)\r\n", Fetch("a", seq((1, 1)), (FetchPreview(),))),
    ("RFC 8970 §3.1 LAZY", b"a FETCH 1 (UID PREVIEW (LAZY))\r\n",
     Fetch("a", seq((1, 1)), (FetchAttr("UID"), FetchPreview(lazy=True)))),
    ("RFC 5182 §2", b"a FETCH $ (FLAGS)\r\n", Fetch("a", SequenceSet(saved=True), (FLAGS,))),
    ("RFC 9051 §9 seq order", b"a FETCH 5:3,*:7,9 UID\r\n",
     Fetch("a", seq((5, 3), (STAR, 7), (9, 9)), (FetchAttr("UID"),))),
    ("RFC 9051 §6.4.6", b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n",
     Store("A003", seq((2, 4)), "+", ("\\Deleted",))),
    ("RFC 9051 §8", b"a005 store 12 +flags \\deleted\r\n",
     Store("a005", seq((12, 12)), "+", ("\\Deleted",))),
    ("RFC 9051 §6.4.6 replace", b"a STORE 1 FLAGS.SILENT ()\r\n",
     Store("a", seq((1, 1)), "", (), silent=True)),
    ("RFC 9051 §6.4.6 keywords", b"a STORE 1 -FLAGS $Junk \\Seen NonJunk\r\n",
     Store("a", seq((1, 1)), "-", ("$Junk", "\\Seen", "NonJunk"))),
    ("RFC 7162 §3.1.3",
     b"a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)\r\n",
     Store("a103", seq((6, 6), (4, 4), (8, 8)), "+", ("\\Deleted",), True, True, 12121230045)),
    ("RFC 9051 §6.4.7", b"A003 COPY 2:4 MEETING\r\n", Copy("A003", seq((2, 4)), "MEETING")),
    ("RFC 4315 §3 UID COPY", b"A004 UID COPY 304,319:320 MEETING\r\n",
     Copy("A004", seq((304, 304), (319, 320)), "MEETING", True)),
    ("RFC 6851 §4.1", b"a UID MOVE 42:69 foo\r\n", Move("a", seq((42, 69)), "foo", True)),
    ("RFC 6851 §3.3", b"a MOVE 2:4 trash\r\n", Move("a", seq((2, 4)), "trash")),
    ("RFC 8508 §3", b"B UID REPLACE 16 Drafts (\\Seen \\Draft) {3}\r\nabc\r\n",
     Replace("B", 16, "Drafts", AppendMessage(b"abc", ("\\Seen", "\\Draft")), uid=True)),
    ("RFC 8508 §3 seq", b"B REPLACE 2 inbox {3+}\r\nabc\r\n",
     Replace("B", 2, "INBOX", AppendMessage(b"abc"))),
]


@pytest.mark.parametrize(("where", "wire", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_examples(where: str, wire: bytes, expected: Command) -> None:
    assert parse_command(wire) == expected


def test_response_names() -> None:
    """RFC 9051 §7.5.2: the response names the section without .PEEK, the partial by origin."""
    item = FetchBody(Section((1, 2), "HEADER.FIELDS", ("From", "To")), peek=True, partial=(0, 10))
    assert item.response_name() == b"BODY[1.2.HEADER.FIELDS (From To)]<0>"
    assert FetchBody(Section(), binary=True, peek=True).response_name() == b"BINARY[]"


def test_sequence_set_resolution() -> None:
    """RFC 9051 §9 seq-range: both ends included in either order; * is the largest number."""
    assert list(seq((5, 3), (STAR, 7), (9, 9)).resolve(20)) == [(3, 5), (7, 20), (9, 9)]
    with pytest.raises(ValueError):
        list(SequenceSet(saved=True).resolve(20))


BAD = [
    b"a FETCH 0 FLAGS\r\n",  # nz-number
    b"a FETCH 1:0 FLAGS\r\n",
    b"a FETCH 4294967296 FLAGS\r\n",
    b"a FETCH 1 (FLAGS\r\n",
    b"a FETCH 1 ()\r\n",
    b"a FETCH 1 BOGUS\r\n",
    b"a FETCH 1 (ALL)\r\n",  # macros are not fetch-att
    b"a FETCH 1 BODY[MIME]\r\n",  # MIME needs a part
    b"a FETCH 1 BODY[0]\r\n",
    b"a FETCH 1 BODY[1.]\r\n",
    b"a FETCH 1 BODY[]<0.0>\r\n",  # nz-number length
    b"a FETCH 1 BODY[HEADER.FIELDS]\r\n",
    b"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
    b"a FETCH 1 BINARY[HEADER]\r\n",
    b"a FETCH 1 FLAGS (VANISHED)\r\n",  # VANISHED only in UID FETCH
    b"a UID FETCH 1 FLAGS (VANISHED)\r\n",  # ... and with CHANGEDSINCE (RFC 7162 §3.2.6)
    b"a FETCH 1 FLAGS (CHANGEDSINCE 0)\r\n",
    b"a FETCH 1,$ FLAGS\r\n",
    b"a STORE 1 FLAGS\r\n",
    b"a STORE 1 *FLAGS (\\Seen)\r\n",
    b"a STORE 1 +FLAGS (\\Seen\r\n",
    b"a STORE 1 (UNCHANGEDSINCE x) FLAGS ()\r\n",
    b"a COPY 1\r\n",
    b"a MOVE 1 \r\n",
    b"a UID\r\n",
    b"a UID LOGIN x y\r\n",
    b"a EXPUNGE 1\r\n",
    b"a UID EXPUNGE\r\n",
    b"a REPLACE 0 x {1}\r\na\r\n",
]


@pytest.mark.parametrize("wire", BAD)
def test_malformed_is_bad_with_the_tag(wire: bytes) -> None:
    expect_bad(wire)
