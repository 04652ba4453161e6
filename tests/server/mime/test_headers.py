"""Header sections located by offsets (RFC 5322 §2.2, §3.6), for BODY[HEADER.FIELDS] and Sieve."""

from __future__ import annotations

from server.mime import get_header, header_end, header_field_spans, header_fields
from server.mime.headers import MAX_FIELDS, names_regex, scan_header

from .samples import PLAIN


def test_fields_keep_raw_values_and_folding() -> None:
    raw = b"Subject: one\r\n two\r\nX-Empty:\r\nTo : a@b\r\nsubject: again\r\n\r\nbody"
    assert header_fields(raw) == [
        ("Subject", b" one\r\n two"),
        ("X-Empty", b""),
        ("To", b" a@b"),
        ("subject", b" again"),
    ]
    assert get_header(raw, "SUBJECT") == [b" one\r\n two", b" again"]
    assert get_header(raw, "missing") == []
    assert header_end(raw) == len(raw) - 4


def test_spans_slice_whole_fields() -> None:
    spans = header_field_spans(PLAIN)
    names = [s.name for s in spans]
    assert names[:3] == ["return-path", "received", "from"]
    received = spans[1]
    assert PLAIN[received.start : received.end].startswith(b"Received: from mx.example.org")
    assert PLAIN[received.value_start : received.end] == (
        b" from mx.example.org by mx.example.net; Tue, 3 Mar 2026 10:00:00 +0000"
    )


def test_mbox_from_line_is_skipped() -> None:
    raw = b"From alice@example.org Tue Mar  3 10:00:00 2026\nSubject: x\n\nbody"
    assert header_fields(raw) == [("Subject", b" x")]
    assert raw[header_end(raw) :] == b"body"


def test_header_ends_at_first_non_field_line() -> None:
    raw = b"Subject: x\r\nnot a field\r\n\r\nbody"
    assert header_end(raw) == len(b"Subject: x\r\n")
    raw = b"Subject: x\r\n\xff\xfe: 8-bit name\r\n\r\nbody"
    assert header_end(raw) == len(b"Subject: x\r\n")


def test_leading_continuation_is_ignored() -> None:
    assert header_fields(b" orphan\r\nSubject: x\r\n\r\n") == [("Subject", b" x")]


def test_header_stops_at_enclosing_boundary() -> None:
    raw = b"Content-Type: text/plain\r\n--b\r\nrest"
    spans, body = scan_header(raw, 0, len(raw), lambda s, e: raw[s:e] == b"--b")
    assert [s.name for s in spans] == ["content-type"]
    assert body == raw.index(b"--b")


def test_boundary_with_colon_is_not_a_field() -> None:
    raw = b"Content-Type: text/plain\r\n--=_Part:1\r\n"
    spans, body = scan_header(raw, 0, len(raw), lambda s, e: raw[s:e] == b"--=_Part:1")
    assert len(spans) == 1 and body == raw.index(b"--=_Part:1")


def test_field_count_cap_still_finds_the_body() -> None:
    raw = b"a: b\r\n" * (MAX_FIELDS + 500) + b"\r\nbody"
    assert len(header_field_spans(raw)) == MAX_FIELDS
    assert raw[header_end(raw) :] == b"body"


def test_no_separator_at_all() -> None:
    raw = b"Subject: x\r\nTo: y"
    assert header_end(raw) == len(raw)
    assert header_fields(raw) == [("Subject", b" x"), ("To", b" y")]


def test_wanted_fields_are_still_found_past_the_field_cap() -> None:
    raw = (
        b"X-A: 1\r\n" * 10
        + b"content-TYPE: text/html\r\n folded\r\nSubject: s\r\n--not-a-field\r\nbody"
    )
    spans, body = scan_header(raw, 0, len(raw), None, 5, names_regex(["content-type"]))
    assert [s.name for s in spans] == ["x-a"] * 5 + ["content-type"]
    ct = spans[-1]
    assert raw[ct.value_start : ct.end] == b" text/html\r\n folded"
    assert raw[body:] == b"--not-a-field\r\nbody"


def test_skip_mode_stops_at_a_non_field_line_and_after_the_blank_line() -> None:
    fields = b"X-A: 1\r\n" * 10
    assert scan_header(fields + b"junk line\r\n", 0, 200, None, 5)[1] == len(fields)
    raw = fields + b"\r\nbody"
    assert raw[scan_header(raw, 0, len(raw), None, 5)[1] :] == b"body"
    raw = fields + b"\nbody"
    assert raw[scan_header(raw, 0, len(raw), None, 5)[1] :] == b"body"
