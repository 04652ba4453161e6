"""SEARCH, SORT and THREAD: search keys and return options (RFC examples, sections cited)."""

from __future__ import annotations

from datetime import date

import pytest

from server.imap.wire.commands import Command, Search, Sort, Thread
from server.imap.wire.parser import CommandError, parse_command
from server.imap.wire.search import (
    MAX_DEPTH, SearchAge, SearchAnd, SearchDate, SearchFlag, SearchHeader, SearchKeyword,
    SearchModSeq, SearchNot, SearchObjectId, SearchOr, SearchSet, SearchSize, SearchText,
)
from server.imap.wire.sequence import STAR, SequenceSet

from ._feed import expect_bad

FLAGGED = SearchFlag("FLAGGED")
SINCE = SearchDate("SINCE", date(1994, 2, 1))
NOT_SMITH = SearchNot(SearchText("FROM", "Smith"))

EXAMPLES: list[tuple[str, bytes, Command]] = [
    ("RFC 9051 §6.4.4",
     b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
     Search("A282", SearchAnd((FLAGGED, SINCE, NOT_SMITH)), returns=("MIN", "COUNT"))),
    ("RFC 9051 §6.4.4 RETURN ()",
     b'A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
     Search("A283", SearchAnd((FLAGGED, SINCE, NOT_SMITH)), returns=())),
    ("RFC 9051 §6.4.4 TEXT", b'A284 SEARCH TEXT "string not in mailbox"\r\n',
     Search("A284", SearchText("TEXT", "string not in mailbox"))),
    ("RFC 9051 §6.4.4 CHARSET literal",
     b"A285 SEARCH CHARSET UTF-8 TEXT {12}\r\n\xd0\x9b\xd0\xb5\xd0\xbd\xd0\xb8\xd0\xbd\xd0\xb0\r\n",
     Search("A285", SearchText("TEXT", "Ленина"), charset="UTF-8")),
    ("RFC 3501 §6.4.4", b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
     Search("A282", SearchAnd((FLAGGED, SINCE, NOT_SMITH)))),
    ("RFC 3501 §6.4.4 OR", b"a SEARCH OR SEEN (DELETED UNDRAFT) UID 1:5,9:*\r\n",
     Search("a", SearchAnd((SearchOr(SearchFlag("SEEN"), SearchAnd((SearchFlag("DELETED"),
            SearchFlag("UNDRAFT")))), SearchSet(SequenceSet(((1, 5), (9, STAR))), uid=True))))),
    ("RFC 3501 §6.4.4 rev1 keys", b"a SEARCH NEW OLD RECENT 2,4\r\n",
     Search("a", SearchAnd((SearchFlag("NEW"), SearchFlag("OLD"), SearchFlag("RECENT"),
            SearchSet(SequenceSet(((2, 2), (4, 4)))))))),
    ("RFC 9051 §6.4.4 HEADER", b'a SEARCH HEADER Message-ID "<x@y>" LARGER 100 SMALLER 9\r\n',
     Search("a", SearchAnd((SearchHeader("Message-ID", "<x@y>"), SearchSize(True, 100),
            SearchSize(False, 9))))),
    ("RFC 9051 §6.4.4 KEYWORD", b"a SEARCH KEYWORD $Forwarded UNKEYWORD $Junk\r\n",
     Search("a", SearchAnd((SearchKeyword("$Forwarded"), SearchKeyword("$Junk", False))))),
    ("RFC 9051 §6.4.4 dates", b'a SEARCH SENTBEFORE "1-Jan-2020" ON 31-Dec-1999\r\n',
     Search("a", SearchAnd((SearchDate("SENTBEFORE", date(2020, 1, 1)),
            SearchDate("ON", date(1999, 12, 31)))))),
    ("RFC 5032 §3", b"a SEARCH UNSEEN YOUNGER 259200\r\n",
     Search("a", SearchAnd((SearchFlag("UNSEEN"), SearchAge(False, 259200))))),
    ("RFC 7162 §3.1.5", b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338\r\n',
     Search("a", SearchModSeq(620162338, ("/flags/\\draft", "ALL")))),
    ("RFC 7162 §3.1.5 plain",
     b"a UID SEARCH MODSEQ 12\r\n", Search("a", SearchModSeq(12), uid=True)),
    ("RFC 5182 §2 SAVE", b"A SEARCH RETURN (SAVE) FROM xyz\r\n",
     Search("A", SearchText("FROM", "xyz"), returns=("SAVE",))),
    ("RFC 5182 §2.2 $", b"B UID SEARCH UID $ SMALLER 4096\r\n",
     Search("B", SearchAnd((SearchSet(SequenceSet(saved=True), uid=True), SearchSize(False, 4096))),
            uid=True)),
    ("RFC 8474 §6", b"a UID SEARCH EMAILID M6d99ac3275bb4e\r\n",
     Search("a", SearchObjectId("EMAILID", "M6d99ac3275bb4e"), uid=True)),
    ("RFC 8474 §6 THREADID", b"a SEARCH THREADID T64b478a75b7ea9\r\n",
     Search("a", SearchObjectId("THREADID", "T64b478a75b7ea9"))),
    ("RFC 8514 §4", b"a SEARCH SAVEDSINCE 1-Jan-2020 SAVEDATESUPPORTED\r\n",
     Search("a", SearchAnd((SearchDate("SAVEDSINCE", date(2020, 1, 1)),
            SearchFlag("SAVEDATESUPPORTED"))))),
    ("RFC 5256 §3 SORT", b"A283 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n",
     Sort("A283", ((False, "SUBJECT"),), "UTF-8", SINCE)),
    ("RFC 5256 §3 SORT multi", b'A285 SORT (ARRIVAL cc date) UTF-8 SUBJECT "afternoon meeting"\r\n',
     Sort("A285", ((False, "ARRIVAL"), (False, "CC"), (False, "DATE")), "UTF-8",
          SearchText("SUBJECT", "afternoon meeting"))),
    ("RFC 5256 §3 REVERSE", b"A286 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n",
     Sort("A286", ((False, "SUBJECT"), (True, "DATE")), "UTF-8", SearchFlag("ALL"))),
    ("RFC 5267 §3.2 ESORT",
     b"A1 UID SORT RETURN (MIN MAX) (DATE) UTF-8 UNDELETED UNKEYWORD $Junk\r\n",
     Sort("A1", ((False, "DATE"),), "UTF-8", SearchAnd((SearchFlag("UNDELETED"),
          SearchKeyword("$Junk", False))), ("MIN", "MAX"), True)),
    ("RFC 5957 §3", b"a SORT (DISPLAYFROM) UTF-8 ALL\r\n",
     Sort("a", ((False, "DISPLAYFROM"),), "UTF-8", SearchFlag("ALL"))),
    ("RFC 5256 §3 THREAD", b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n",
     Thread("A283", "ORDEREDSUBJECT", "UTF-8", SearchDate("SINCE", date(2000, 3, 5)))),
    ("RFC 5256 §3 THREAD text", b'A284 THREAD REFERENCES US-ASCII TEXT "gewp"\r\n',
     Thread("A284", "REFERENCES", "US-ASCII", SearchText("TEXT", "gewp"))),
]


@pytest.mark.parametrize(("where", "wire", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_examples(where: str, wire: bytes, expected: Command) -> None:
    assert parse_command(wire) == expected


def test_nesting_is_bounded() -> None:
    """A deep program is refused with BAD, not a RecursionError."""
    deep = b"a SEARCH " + b"NOT " * (MAX_DEPTH + 5) + b"ALL\r\n"
    with pytest.raises(CommandError):
        parse_command(deep)
    parens = b"a SEARCH " + b"(" * 5000 + b"ALL" + b")" * 5000 + b"\r\n"
    with pytest.raises(CommandError):
        parse_command(parens)
    ok = b"a SEARCH " + b"NOT " * (MAX_DEPTH - 1) + b"ALL\r\n"
    assert isinstance(parse_command(ok), Search)


BAD = [
    b"a SEARCH\r\n",
    b"a SEARCH BOGUS\r\n",
    b"a SEARCH OR SEEN\r\n",
    b"a SEARCH NOT\r\n",
    b"a SEARCH ()\r\n",
    b"a SEARCH SINCE 30-Feb-2020\r\n",
    b"a SEARCH SINCE 1-Foo-2020\r\n",
    b"a SEARCH LARGER x\r\n",
    b"a SEARCH OLDER 0\r\n",
    b"a SEARCH RETURN (BOGUS) ALL\r\n",
    b"a SEARCH CHARSET\r\n",
    b'a SEARCH MODSEQ "/flags/x" bogus 5\r\n',
    b"a SEARCH EMAILID !!\r\n",
    b"a SEARCH ALL  SEEN\r\n",
    b"a SORT (SUBJECT) ALL\r\n",  # charset is required
    b"a SORT () UTF-8 ALL\r\n",
    b"a SORT (BOGUS) UTF-8 ALL\r\n",
    b"a SORT (REVERSE) UTF-8 ALL\r\n",
    b"a THREAD BOGUS UTF-8 ALL\r\n",
    b"a THREAD REFERENCES UTF-8\r\n",
]


@pytest.mark.parametrize("wire", BAD)
def test_malformed_is_bad_with_the_tag(wire: bytes) -> None:
    expect_bad(wire)
