"""Malformed and hostile messages: a best-effort summary, no exception, linear time, no deep
recursion. Time limits are generous (a slow CI machine must pass); the real costs are printed by
ops benchmarks, not asserted here."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest

from server.mime import MessageSummary, parse_message
from server.mime.imap_render import render_bodystructure, render_envelope
from server.mime.structure import MAX_DEPTH, MAX_PARTS

from .imap_syntax import check_body, check_envelope, read


@pytest.fixture
def low_recursion_limit() -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(450)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _full(raw: bytes, seconds: float = 5.0) -> MessageSummary:
    """Parse, render, serialise; check grammar and invariants; return the summary."""
    start = time.perf_counter()
    s = parse_message(raw, fallback=False)
    check_body(read(render_bodystructure(s, True)), True)
    check_body(read(render_bodystructure(s, False)), False)
    check_envelope(read(render_envelope(s)))
    assert MessageSummary.from_bytes(s.to_bytes()) == s
    assert time.perf_counter() - start < seconds
    assert s.size == len(raw)
    for p in s.parts:
        assert 0 <= p.header_start <= p.body_start <= p.body_end <= len(raw)
    return s


def test_ten_thousand_nested_multiparts(low_recursion_limit: None) -> None:
    n = 10_000
    raw = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(n)
    )
    raw += b"\r\nleaf\r\n" + b"".join(b"--b%d--\r\n" % i for i in reversed(range(n)))
    s = _full(raw)
    assert s.truncated
    assert len(s.parts) == MAX_DEPTH + 1
    deepest = s.parts[-1]
    assert deepest.path.count(".") == MAX_DEPTH - 1
    assert deepest.media_type == "multipart/mixed"  # kept, not descended into
    assert render_bodystructure(s, False).count(b'"APPLICATION" "OCTET-STREAM"') == 1


def test_ten_thousand_nested_multiparts_same_boundary(low_recursion_limit: None) -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" * 10_000 + b"\r\nleaf"
    s = _full(raw)
    assert len(s.parts) <= MAX_PARTS


def test_ten_thousand_nested_messages(low_recursion_limit: None) -> None:
    raw = b"Subject: x\r\nContent-Type: message/rfc822\r\n\r\n" * 10_000 + b"\r\nleaf"
    s = _full(raw)
    assert s.truncated
    assert len(s.parts) == MAX_DEPTH + 1


def test_many_parts_are_capped() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\nx\r\n" * 100_000
    s = _full(raw)
    assert s.truncated
    assert len(s.parts) == MAX_PARTS
    last = s.parts[-1]
    assert raw[last.body_start : last.body_end] == b"x"


def test_megabyte_header_lines() -> None:
    raw = (
        b"Subject: " + b"x" * (1 << 20) + b"\r\n"
        b"To: " + b"a@b.example, " * 100_000 + b"\r\n"
        b"X-Long: " + b"y" * (1 << 20) + b"\r\n\r\nbody"
    )
    s = _full(raw)
    assert s.truncated and s.envelope.truncated
    assert s.envelope.subject is not None
    assert 8_000 < len(s.envelope.subject) <= 8_192  # cut at the cap (after the leading blank)
    assert 0 < len(s.envelope.to) <= 1_000
    assert raw[s.header_end :] == b"body"
    assert len(s.to_bytes()) < 100_000


def test_megabyte_boundary_is_not_used() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=" + b"b" * (1 << 20) + b"\r\n\r\n--b\r\n"
    s = _full(raw)
    assert len(s.parts) == 1


def test_no_header_body_separator() -> None:
    s = _full(b"Subject: hi\r\nFrom: a@b.example\r\nThis line is not a header field\r\nmore")
    assert s.envelope.subject == "hi"
    assert s.header_end == len(b"Subject: hi\r\nFrom: a@b.example\r\n")
    s = _full(b"Subject: only a header")
    assert s.header_end == len(b"Subject: only a header")
    assert s.root.size == 0


def test_no_header_at_all() -> None:
    s = _full(b"\r\njust a body\r\n")
    assert s.header_end == 2
    assert s.preview == "just a body"


def test_bare_lf_and_bare_cr() -> None:
    s = _full(b"Subject: lf\nContent-Type: text/plain\n\nline one\nline two\n")
    assert s.envelope.subject == "lf"
    assert s.root.lines == 2
    s = _full(b"Subject: cr\rContent-Type: text/plain\r\rbody\r")
    assert s.envelope.subject is not None


def test_nul_bytes() -> None:
    raw = b"Subj\x00ect: a\x00b\r\nFrom: \x00<a\x00@b>\r\n\r\n\x00body\x00"
    s = _full(raw)
    assert b"\x00" not in render_envelope(s)
    _full(b"\x00" * 100_000)


def test_eight_bit_garbage_in_headers() -> None:
    raw = (
        b"Subject: \xff\xfe\x80 caf\xe9\r\n"
        b"From: \xc3\x28 <x\xff@\xfe.example>\r\n"
        b"Content-Type: text/plain; charset=\xff\r\n"
        b"\xff\xfe: weird name\r\n\r\nbody"
    )
    s = _full(raw)
    (addr,) = s.envelope.from_
    assert s.envelope.decoded_subject is not None
    assert b"\xff\xfe\x80 caf\xe9" in render_envelope(s)  # octets go out as received
    assert addr.email  # decodable text for JMAP


def test_unknown_and_hostile_charsets() -> None:
    for charset in (
        b"x-unknown",
        b"base64",
        b"zlib",
        b"rot13",
        b"idna",
        b"utf-7",
        b'""',
        b"a" * 500,
    ):
        raw = b"Content-Type: text/plain; charset=" + charset + b"\r\n\r\nbody \xff text"
        s = _full(raw)
        assert "body" in s.preview


def test_missing_and_unterminated_boundaries() -> None:
    s = _full(b"Content-Type: multipart/mixed\r\n\r\nno boundary parameter")
    assert render_bodystructure(s, False).startswith(b'("APPLICATION" "OCTET-STREAM"')
    s = _full(b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nno delimiter line")
    assert len(s.parts) == 1
    s = _full(b'Content-Type: multipart/mixed; boundary="zz\r\n\r\n--zz\r\n\r\nopen part')
    assert s.part("1") is not None
    raw = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n\r\nnever closed"
    s = _full(raw)
    part = s.part("1")
    assert part is not None and raw[part.body_start : part.body_end] == b"never closed"


def test_huge_base64_with_bad_padding() -> None:
    body = (b"QUJD" * 19 + b"\r\n") * 100_000 + b"QQ=\r\n=\r\n===A"
    raw = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body
    s = _full(raw)
    assert s.preview.startswith("ABCABC")
    assert abs(s.root.decoded_size - 57 * 100_000) < 10


def test_binary_noise() -> None:
    import random

    rng = random.Random(7)
    for size in (1, 17, 4096, 1 << 20):
        _full(bytes(rng.getrandbits(8) for _ in range(min(size, 4096))) * max(1, size // 4096))


def test_many_dash_lines_in_multipart_body() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
        + b"--\r\n--bx\r\n" * 200_000
    )
    _full(raw)


def test_hostile_html_preview() -> None:
    raw = (
        b"Content-Type: text/html\r\n\r\n" + b"<script" * 50_000 + b"<!--" * 50_000 + b"<" * 50_000
    )
    _full(raw)
    raw = b"Content-Type: text/html\r\n\r\n<p>" + b"&amp;" * 100_000
    assert _full(raw).preview.startswith("&&&")


def test_hostile_structured_headers() -> None:
    raw = (
        b"Subject: " + b"=?" * 300_000 + b"\r\n"
        b"To: " + b"(" * 300_000 + b"\r\n"
        b"Cc: " + b'"\\' * 300_000 + b"\r\n"
        b"Date: " + b"9" * 300_000 + b"\r\n"
        b"Content-Type: text/plain; " + b"a*0*=x;" * 100_000 + b"\r\n"
        b"Content-Disposition: attachment; " + b"filename*" * 100_000 + b"\r\n\r\n"
    )
    _full(raw)


def test_fifty_megabyte_message() -> None:
    attachment = (b"QUJD" * 19 + b"\r\n") * (50 * 1024 * 1024 // 78)
    raw = (
        b"Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment + b"\r\n--b--\r\n"
    )
    s = _full(raw, seconds=10.0)
    part = s.part("2")
    assert part is not None and part.size == len(attachment)
    assert s.preview == "see attachment"
    assert s.has_attachment


def test_summary_budget_bounds_many_large_parts() -> None:
    # 1,000 parts with 8 KB descriptions and forwarded messages with long address lists
    noise = bytes(range(33, 127)) * 90
    part = (
        b"--b\r\nContent-Type: message/rfc822\r\nContent-Description: " + noise[:8000] + b"\r\n\r\n"
        b"To: "
        + b", ".join(b"u%d-%s@x.example" % (i, noise[i : i + 40]) for i in range(150))
        + b"\r\nSubject: "
        + noise[:8000]
        + b"\r\n\r\nbody\r\n"
    )
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + part * 600 + b"--b--\r\n"
    s = _full(raw, seconds=20.0)
    assert s.truncated
    assert len(s.parts) == 1_000
    assert len(s.to_bytes()) < 400_000
    for p in s.parts[1:]:
        if p.is_message:
            assert raw[p.body_start : p.body_end] == b"body"


def test_millions_of_continuation_lines() -> None:
    raw = b"Subject: x\n" + b" x\n" * 2_000_000 + b"To: a@b.example\n\nbody"
    s = _full(raw)
    assert raw[s.header_end :] == b"body"
    assert s.envelope.truncated and s.envelope.to


def test_thousand_parts_with_huge_headers() -> None:
    part = b"--b\r\n" + b"X-A: b\r\n" * 1_990 + b"content-TYPE: text/html\r\n\r\nx\r\n"
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + part * 999
    s = _full(raw, seconds=10.0)
    assert len(s.parts) == 1_000
    assert all(p.media_type == "text/html" for p in s.parts[1:])
