"""FETCH response items built from typed values (RFC 9051 §7.5.2 and the extensions)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from server.imap.wire.fetch import FetchBinarySize, FetchBody, Section
from server.imap.wire.fetch_data import (
    FetchData, item_binary_size, item_body, item_bodystructure, item_emailid, item_flags,
    item_internaldate, item_modseq, item_preview, item_savedate, item_section, item_size,
    item_threadid, item_uid,
)
from server.mime.summary import parse_message

MESSAGE = b"Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"


def test_every_item() -> None:
    when = datetime(2024, 3, 5, 9, 8, 7, tzinfo=timezone(timedelta(hours=2)))
    data = FetchData(7, (
        item_uid(42),
        item_flags(("\\Seen", "$Forwarded")),
        item_internaldate(when),
        item_savedate(None),
        item_size(1234),
        item_modseq(917162500),
        item_emailid("M6d99ac3275bb4e"),
        item_threadid(None),
        item_preview("Hello"),
        item_section(FetchBody(Section((1,), "MIME"), peek=True, partial=(0, 5)), b"abc"),
        item_section(FetchBody(Section((1,)), binary=True), b"a\x00"),
        item_section(FetchBody(Section((9,))), None),
        item_binary_size(FetchBinarySize((1,)), 2),
    ))
    assert data.render() == (
        b'* 7 FETCH (UID 42 FLAGS (\\Seen $Forwarded) INTERNALDATE " 5-Mar-2024 09:08:07 +0200" '
        b"SAVEDATE NIL RFC822.SIZE 1234 MODSEQ (917162500) EMAILID (M6d99ac3275bb4e) "
        b'THREADID NIL PREVIEW "Hello" BODY[1.MIME]<0> "abc" BINARY[1] ~{2}\r\na\x00 '
        b"BODY[9] NIL BINARY.SIZE[1] 2)\r\n"
    )


def test_body_and_bodystructure_come_from_the_summary() -> None:
    """RFC 9051 §7.5.2: BODY is BODYSTRUCTURE without the extension data."""
    summary = parse_message(MESSAGE)
    body = FetchData(1, (item_body(summary),)).render()
    structure = FetchData(1, (item_bodystructure(summary),)).render()
    assert body == b'* 1 FETCH (BODY ("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 7 1))\r\n'
    assert structure == (
        b'* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 7 1 '
        b"NIL NIL NIL NIL))\r\n"
    )


def test_utf8_mode_quotes_8bit_text() -> None:
    """RFC 6855 §3: after ENABLE UTF8=ACCEPT, UTF-8 goes in quoted strings."""
    item = item_preview("Grüße")
    assert FetchData(1, (item,)).render(utf8=True) == '* 1 FETCH (PREVIEW "Grüße")\r\n'.encode()
    assert FetchData(1, (item,)).render() == b"* 1 FETCH (PREVIEW {7}\r\nGr\xc3\xbc\xc3\x9fe)\r\n"


def test_body_section_never_carries_nul() -> None:
    """RFC 9051 §9 / §4.3.1: BODY[] is an nstring (a literal is *CHAR8, no NUL); only
    BINARY[] may use literal8.  A NUL goes out as 0x80, the size unchanged."""
    body = item_section(FetchBody(Section(), partial=(2, 3)), b"b\x00c")
    binary = item_section(FetchBody(Section(), binary=True, partial=(2, 3)), b"b\x00c")
    assert FetchData(1, (body, binary)).render() == (
        b"* 1 FETCH (BODY[]<2> {3}\r\nb\x80c BINARY[]<2> ~{3}\r\nb\x00c)\r\n")
