"""The response serializer: RFC examples (sections cited) and string-form choices."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.imap.wire.lexer import Cursor
from server.imap.wire.fetch_data import BodyStructureOf, EnvelopeOf, FetchData
from server.imap.wire.responses import (
    CODES, CapabilityData, Code, Continuation, EnabledData, ESearchData, ExistsData,
    ExpungeData, FlagsData, IdData, ListData, MetadataData, NamespaceData, QuotaData,
    QuotaRootData, RecentData, Response, SearchData, SortData, StatusData, Tagged, ThreadData,
    ThreadNode, Untagged, VanishedData, mailbox_name,
)
from server.imap.wire.sequence import SequenceSet, compress_numbers
from server.imap.wire.values import imap_datetime, Atom, Binary, render, render_string
from server.mime.summary import parse_message

PDT = timezone(timedelta(hours=-7))
T = ThreadNode

EXAMPLES: list[tuple[str, Response, bytes]] = [
    ("RFC 9051 §7.1", Untagged("OK", "IMAP4rev2 server ready"), b"* OK IMAP4rev2 server ready\r\n"),
    ("RFC 9051 §7.1.5", Untagged("BYE", "Autologout; idle for too long"),
     b"* BYE Autologout; idle for too long\r\n"),
    ("RFC 9051 §7.1.4", Untagged("PREAUTH", "IMAP4rev2 server logged in as Smith"),
     b"* PREAUTH IMAP4rev2 server logged in as Smith\r\n"),
    ("RFC 9051 §7.1 ALERT", Untagged("OK", "System shutdown in 10 minutes", Code("ALERT")),
     b"* OK [ALERT] System shutdown in 10 minutes\r\n"),
    ("RFC 9051 §7.1 UIDVALIDITY",
     Untagged("OK", "UIDs valid", Code.number("UIDVALIDITY", 3857529045)),
     b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"),
    ("RFC 9051 §7.1 PERMANENTFLAGS",
     Untagged("OK", "Limited", Code.permanentflags(("\\Deleted", "\\Seen", "\\*"))),
     b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"),
    ("RFC 9051 §7.1 CAPABILITY",
     Untagged("OK", "ready", Code.capability(("IMAP4rev2", "STARTTLS", "LOGINDISABLED"))),
     b"* OK [CAPABILITY IMAP4rev2 STARTTLS LOGINDISABLED] ready\r\n"),
    ("RFC 9051 §7.1 BADCHARSET",
     Tagged("a", "NO", "charset", Code.badcharset(("UTF-8", "US-ASCII"))),
     b'a NO [BADCHARSET ("UTF-8" "US-ASCII")] charset\r\n'),
    ("RFC 9051 §7.1 TRYCREATE", Tagged("A003", "NO", "No such mailbox", Code("TRYCREATE")),
     b"A003 NO [TRYCREATE] No such mailbox\r\n"),
    ("RFC 9051 §6.3.2 READ-WRITE", Tagged("A142", "OK", "SELECT completed", Code("READ-WRITE")),
     b"A142 OK [READ-WRITE] SELECT completed\r\n"),
    ("RFC 4315 §3 APPENDUID",
     Tagged("A003", "OK", "APPEND completed", Code.appenduid(38505, compress_numbers([3955]))),
     b"A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
    ("RFC 4315 §3 COPYUID",
     Tagged("A004", "OK", "Done", Code.copyuid(38505, compress_numbers([304, 319, 320]),
                                              compress_numbers([3956, 3957, 3958]))),
     b"A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"),
    ("RFC 4315 §3 UIDNOTSTICKY", Untagged("NO", "Non-persistent UIDs", Code("UIDNOTSTICKY")),
     b"* NO [UIDNOTSTICKY] Non-persistent UIDs\r\n"),
    ("RFC 7162 §3.1.2.1", Untagged("OK", "Highest", Code.number("HIGHESTMODSEQ", 715194045007)),
     b"* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"),
    ("RFC 7162 §3.1.2.2", Untagged("OK", "Sorry, this mailbox format doesn't support modsequences",
                                   Code("NOMODSEQ")),
     b"* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n"),
    ("RFC 7162 §3.1.3", Tagged("d105", "OK", "Conditional STORE failed",
                               Code.modified(SequenceSet(((7, 7), (9, 9))))),
     b"d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n"),
    ("RFC 7162 §3.2.11", Untagged("OK", "Previous mailbox is now closed", Code("CLOSED")),
     b"* OK [CLOSED] Previous mailbox is now closed\r\n"),
    ("RFC 9051 §7.1 TOOBIG / RFC 7888", Tagged("a", "NO", "message too large", Code("TOOBIG")),
     b"a NO [TOOBIG] message too large\r\n"),
    ("RFC 8474 §4.1",
     Tagged("3", "OK", "Completed", Code.mailboxid("F2212ea87-6097-4256-9d51-71338625")),
     b"3 OK [MAILBOXID (F2212ea87-6097-4256-9d51-71338625)] Completed\r\n"),
    ("RFC 9051 §7.5", Continuation("Ready for additional command text"),
     b"+ Ready for additional command text\r\n"),
    ("RFC 9051 §6.2.2", Continuation(challenge=b""), b"+ \r\n"),
    ("RFC 9051 §6.2.2 base64", Continuation(challenge=b"\x00fred"), b"+ AGZyZWQ=\r\n"),
    ("RFC 9051 §7.2.2", CapabilityData(("IMAP4rev2", "STARTTLS", "AUTH=GSSAPI", "XPIG-LATIN")),
     b"* CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI XPIG-LATIN\r\n"),
    ("RFC 5161 §3.2", EnabledData(("CONDSTORE",)), b"* ENABLED CONDSTORE\r\n"),
    ("RFC 5161 §3.2 empty", EnabledData(()), b"* ENABLED\r\n"),
    ("RFC 9051 §7.3.1", ListData(("\\Noselect",), "/", "~/Mail/foo"),
     b'* LIST (\\Noselect) "/" ~/Mail/foo\r\n'),
    ("RFC 9051 §7.3.1 NIL", ListData(("\\Noselect",), None, ""), b'* LIST (\\Noselect) NIL ""\r\n'),
    ("RFC 5258 §5.4 CHILDINFO", ListData((), "/", "Foo", childinfo=("SUBSCRIBED",)),
     b'* LIST () "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n'),
    ("RFC 9051 §6.3.6 OLDNAME", ListData((), "/", "NewName", oldname="OldName"),
     b'* LIST () "/" NewName ("OLDNAME" (OldName))\r\n'),
    ("RFC 9051 §5.1.3 mUTF-7", ListData(("\\HasNoChildren",), "/", "Entwürfe"),
     b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe\r\n'),
    ("RFC 3501 §7.2.3 LSUB", ListData((), "/", "#news.comp.mail.mime", lsub=True),
     b'* LSUB () "/" #news.comp.mail.mime\r\n'),
    ("RFC 9051 §7.2.4", StatusData("blurdybloop", (("MESSAGES", 231), ("UIDNEXT", 44292))),
     b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"),
    ("RFC 8474 §4.2", StatusData("foo", (("MAILBOXID", "F2212ea8"),)),
     b"* STATUS foo (MAILBOXID (F2212ea8))\r\n"),
    ("RFC 9051 §7.3.5", FlagsData(("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")),
     b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"),
    ("RFC 9051 §7.4.1", ExistsData(23), b"* 23 EXISTS\r\n"),
    ("RFC 3501 §7.3.2", RecentData(5), b"* 5 RECENT\r\n"),
    ("RFC 9051 §7.5.1", ExpungeData(44), b"* 44 EXPUNGE\r\n"),
    ("RFC 7162 §3.2.10", VanishedData(SequenceSet(((41, 41), (43, 116))), earlier=True),
     b"* VANISHED (EARLIER) 41,43:116\r\n"),
    ("RFC 7162 §3.2.10 plain", VanishedData(SequenceSet(((405, 405), (407, 407)))),
     b"* VANISHED 405,407\r\n"),
    ("RFC 4731 §3.1", ESearchData(tag="A282", min=2, count=3),
     b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'),
    ("RFC 4731 §3.1 ALL", ESearchData(tag="A283", uid=True, all=SequenceSet(((2, 2), (10, 11)))),
     b'* ESEARCH (TAG "A283") UID ALL 2,10:11\r\n'),
    ("RFC 4731 §3.1 nothing", ESearchData(tag="A284"), b'* ESEARCH (TAG "A284")\r\n'),
    ("RFC 7162 §3.1.5 ESEARCH", ESearchData(tag="a", min=2, modseq=917162500),
     b'* ESEARCH (TAG "a") MIN 2 MODSEQ 917162500\r\n'),
    ("RFC 9051 §7.2.5 (rev1)", SearchData((2, 84, 882)), b"* SEARCH 2 84 882\r\n"),
    ("RFC 3501 §7.2.5 empty", SearchData(()), b"* SEARCH\r\n"),
    ("RFC 7162 §3.1.5 SEARCH", SearchData((2, 5, 6), 917162500),
     b"* SEARCH 2 5 6 (MODSEQ 917162500)\r\n"),
    ("RFC 5256 §4", SortData((2, 84, 882)), b"* SORT 2 84 882\r\n"),
    ("RFC 5256 §4 THREAD",
     ThreadData((T(2), T(3, (T(6, (T(4, (T(23),)), T(44, (T(7, (T(96),)),)))),)))),
     b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"),
    ("RFC 5256 §4 dummy", ThreadData((T(None, (T(3), T(5))),)), b"* THREAD ((3)(5))\r\n"),
    ("RFC 5256 §4 empty", ThreadData(()), b"* THREAD\r\n"),
    ("RFC 9208 §5.1", QuotaData("", (("STORAGE", 10, 512),)), b'* QUOTA "" (STORAGE 10 512)\r\n'),
    ("RFC 9208 §5.2", QuotaRootData("INBOX", ("",)), b'* QUOTAROOT INBOX ""\r\n'),
    ("RFC 9208 §5.2 none", QuotaRootData("comp.mail.mime", ()), b"* QUOTAROOT comp.mail.mime\r\n"),
    ("RFC 9051 §7.3.3", NamespaceData((("", "/"),), None, (("Public Folders/", "/"),)),
     b'* NAMESPACE (("" "/")) NIL (("Public Folders/" "/"))\r\n'),
    ("RFC 2971 §3.4", IdData((("name", "Cyrus"), ("version", "1.5"), ("os", None))),
     b'* ID ("name" "Cyrus" "version" "1.5" "os" NIL)\r\n'),
    ("RFC 2971 §3.4 NIL", IdData(None), b"* ID NIL\r\n"),
    ("RFC 5464 §4.4.1", MetadataData("", (("/shared/comment", b"Shared comment"),)),
     b'* METADATA "" (/shared/comment "Shared comment")\r\n'),
    ("RFC 9051 §7.5.2 FETCH", FetchData(12, ((b"FLAGS", (Atom("\\Seen"), Atom("\\Deleted"))),)),
     b"* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\n"),
    ("RFC 9051 §8 FETCH",
     FetchData(12, ((b"FLAGS", (Atom("\\Seen"),)),
                    (b"INTERNALDATE", imap_datetime(datetime(1996, 7, 17, 2, 44, 25, tzinfo=PDT))),
                    (b"RFC822.SIZE", 4286))),
     b'* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" RFC822.SIZE 4286)\r\n'),
    ("RFC 9051 §7.5.2 BODY[]", FetchData(1, ((b"BODY[HEADER]", b"Subject: x\r\n\r\n"),)),
     b"* 1 FETCH (BODY[HEADER] {14}\r\nSubject: x\r\n\r\n)\r\n"),
    ("RFC 9051 §7.5.2 NIL",
     FetchData(1, ((b"BODY[1]<0>", None),)), b"* 1 FETCH (BODY[1]<0> NIL)\r\n"),
    ("RFC 3516 §4.2 literal8", FetchData(1, ((b"BINARY[1]", Binary(b"a\x00b")),
                                             (b"BINARY.SIZE[1]", 3))),
     b"* 1 FETCH (BINARY[1] ~{3}\r\na\x00b BINARY.SIZE[1] 3)\r\n"),
    ("RFC 7162 §3.1.4.1 MODSEQ", FetchData(1, ((b"UID", 4), (b"MODSEQ", (12121231000,)))),
     b"* 1 FETCH (UID 4 MODSEQ (12121231000))\r\n"),
    ("RFC 8474 §5", FetchData(1, ((b"EMAILID", (Atom("M6d99ac3275bb4e"),)), (b"THREADID", None))),
     b"* 1 FETCH (EMAILID (M6d99ac3275bb4e) THREADID NIL)\r\n"),
    ("RFC 8970 §4", FetchData(1, ((b"PREVIEW", "Hello world"),)),
     b'* 1 FETCH (PREVIEW "Hello world")\r\n'),
]


@pytest.mark.parametrize(("where", "response", "wire"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_examples(where: str, response: Response, wire: bytes) -> None:
    assert response.render() == wire


def test_utf8_mode_names_and_strings() -> None:
    """RFC 9051 §5.1 / RFC 6855 §3: UTF-8 names and quoted strings once enabled."""
    wire = ListData((), "/", "Entwürfe").render(utf8=True)
    assert wire == '* LIST () "/" "Entwürfe"\r\n'.encode()
    assert render("Grüße") == b"{7}\r\nGr\xc3\xbc\xc3\x9fe"
    assert render("Grüße", utf8=True) == '"Grüße"'.encode()


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"plain", b'"plain"'),
        (b'say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        (b"two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        (b"\xff\xfe", b"{2}\r\n\xff\xfe"),  # 8-bit needs a literal (RFC 9051 §4.3)
        (b"nul\x00", b"~{4}\r\nnul\x00"),  # NUL needs literal8 (RFC 3516 §4.3)
        (b"", b'""'),
    ],
)
def test_string_forms(data: bytes, wire: bytes) -> None:
    assert render_string(data) == wire


def test_nil_and_numbers() -> None:
    assert render(None) == b"NIL"
    assert render("NIL") == b'"NIL"'
    assert render((1, "a", None, (Atom("X"),))) == b'(1 "a" NIL (X))'


@given(st.binary(max_size=50), st.booleans())
def test_strings_parse_back(data: bytes, utf8: bool) -> None:
    """Whatever form is chosen, the grammar reads the same octets back."""
    wire = render_string(data, utf8) + b"\r\n"
    assert Cursor(wire).string(allow8=True) == data


def test_response_text_never_breaks_the_line() -> None:
    assert Tagged("a", "BAD", "bad\r\n* OK injected").render() == b"a BAD bad  * OK injected\r\n"
    assert Tagged("a", "OK", "").render() == b"a OK done\r\n"


def test_every_code_of_the_extensions_is_known() -> None:
    wanted = {
        "APPENDUID", "COPYUID", "UIDNOTSTICKY", "HIGHESTMODSEQ", "NOMODSEQ", "MODIFIED",
        "CLOSED", "OVERQUOTA", "TRYCREATE", "ALREADYEXISTS", "NONEXISTENT", "TOOBIG", "LIMIT",
        "SERVERBUG", "UNAVAILABLE", "AUTHENTICATIONFAILED", "CANNOT", "INUSE", "EXPUNGEISSUED",
        "MAILBOXID", "USEATTR", "COMPRESSIONACTIVE", "NOTSAVED", "METADATA", "BADCHARSET",
    }
    assert wanted <= CODES


MESSAGE = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev2 WG mtg summary and minutes\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello\r\n"
)


def test_envelope_and_body_from_the_summary() -> None:
    """RFC 9051 §8: the sample's ENVELOPE and BODY, from the stored summary."""
    summary = parse_message(MESSAGE)
    wire = FetchData(12, ((b"ENVELOPE", EnvelopeOf(summary)),
                          (b"BODY", BodyStructureOf(summary, extensible=False)))).render()
    assert wire == (
        b'* 12 FETCH (ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" '
        b'"IMAP4rev2 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>") '
        b'BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 7 1))\r\n'
    )


def test_deep_thread_trees_render() -> None:
    """A reply tree deeper than the interpreter's stack still renders."""
    node = T(10_001)
    for n in range(10_000, 0, -1):
        node = T(n, (node, T(100_000 + n)))
    wire = ThreadData((node,)).render()
    assert wire.startswith(b"* THREAD (1 (2 (3 (") and wire.endswith(b"(100001))\r\n")


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
    st.booleans(),
)
def test_mailbox_names_read_back(name: str, utf8: bool) -> None:
    """What LIST / STATUS send is what a client sends back in SELECT (RFC 9051 §5.1); a
    UTF-8 name is read in NFC (Net-Unicode, which every name CREATE makes is)."""
    wire = mailbox_name(name, utf8) + b"\r\n"
    expected = "INBOX" if name.upper() == "INBOX" else name
    if utf8:
        expected = unicodedata.normalize("NFC", expected)
    assert Cursor(wire, utf8=utf8).mailbox() == expected
