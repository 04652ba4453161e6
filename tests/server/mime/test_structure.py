"""Part offsets and section lookup, checked by slicing the raw message."""

from __future__ import annotations

import pytest

from server.mime import parse_message

from .samples import MIXED, NESTED, PLAIN, crlf

# The structure of the RFC 3501 §6.4.5 / RFC 9051 §6.4.5 FETCH BODY example.
RFC_SECTIONS = crlf(
    "Subject: the section example\n"
    "Content-Type: MULTIPART/MIXED; boundary=b0\n"
    "\n"
    "--b0\n"
    "Content-Type: TEXT/PLAIN\n"
    "\n"
    "body 1\n"
    "--b0\n"
    "Content-Type: APPLICATION/OCTET-STREAM\n"
    "\n"
    "body 2\n"
    "--b0\n"
    "Content-Type: MESSAGE/RFC822\n"
    "\n"
    "Subject: message 3\n"
    "Content-Type: MULTIPART/MIXED; boundary=b3\n"
    "\n"
    "--b3\n"
    "Content-Type: TEXT/PLAIN\n"
    "\n"
    "body 3.1\n"
    "--b3\n"
    "Content-Type: APPLICATION/OCTET-STREAM\n"
    "\n"
    "body 3.2\n"
    "--b3--\n"
    "--b0\n"
    "Content-Type: MULTIPART/MIXED; boundary=b4\n"
    "\n"
    "--b4\n"
    "Content-Type: IMAGE/GIF\n"
    "\n"
    "body 4.1\n"
    "--b4\n"
    "Content-Type: MESSAGE/RFC822\n"
    "\n"
    "Subject: message 4.2\n"
    "Content-Type: MULTIPART/MIXED; boundary=b42\n"
    "\n"
    "--b42\n"
    "Content-Type: TEXT/PLAIN\n"
    "\n"
    "body 4.2.1\n"
    "--b42\n"
    "Content-Type: MULTIPART/ALTERNATIVE; boundary=b422\n"
    "\n"
    "--b422\n"
    "Content-Type: TEXT/PLAIN\n"
    "\n"
    "body 4.2.2.1\n"
    "--b422\n"
    "Content-Type: TEXT/RICHTEXT\n"
    "\n"
    "body 4.2.2.2\n"
    "--b422--\n"
    "--b42--\n"
    "--b4--\n"
    "--b0--\n"
)


def _slice(raw: bytes, spec: str) -> bytes:
    summary = parse_message(raw, fallback=False)
    rng = summary.section(spec)
    assert rng is not None, spec
    return raw[rng[0] : rng[1]]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1", b"body 1"),
        ("2", b"body 2"),
        ("3.1", b"body 3.1"),
        ("3.2", b"body 3.2"),
        ("4.1", b"body 4.1"),
        ("4.2.1", b"body 4.2.1"),
        ("4.2.2.1", b"body 4.2.2.1"),
        ("4.2.2.2", b"body 4.2.2.2"),
        ("1.MIME", b"Content-Type: TEXT/PLAIN\r\n\r\n"),
        ("4.1.MIME", b"Content-Type: IMAGE/GIF\r\n\r\n"),
        ("3.HEADER", b"Subject: message 3\r\nContent-Type: MULTIPART/MIXED; boundary=b3\r\n\r\n"),
        (
            "4.2.HEADER",
            b"Subject: message 4.2\r\nContent-Type: MULTIPART/MIXED; boundary=b42\r\n\r\n",
        ),
        (
            "HEADER",
            b"Subject: the section example\r\nContent-Type: MULTIPART/MIXED; boundary=b0\r\n\r\n",
        ),
    ],
)
def test_rfc9051_section_6_4_5_example(spec: str, expected: bytes) -> None:
    assert _slice(RFC_SECTIONS, spec) == expected


def test_rfc9051_section_6_4_5_text_parts() -> None:
    assert _slice(RFC_SECTIONS, "3.TEXT").startswith(b"--b3\r\n")
    assert _slice(RFC_SECTIONS, "3.TEXT").endswith(b"--b3--")
    assert _slice(RFC_SECTIONS, "3") == _slice(RFC_SECTIONS, "3.HEADER") + _slice(
        RFC_SECTIONS, "3.TEXT"
    )
    assert _slice(RFC_SECTIONS, "4.2.2").startswith(b"--b422\r\n")
    assert _slice(RFC_SECTIONS, "TEXT").startswith(b"--b0\r\n")
    assert _slice(RFC_SECTIONS, "TEXT").endswith(b"--b0--\r\n")
    assert _slice(RFC_SECTIONS, "") == RFC_SECTIONS


def test_rfc_section_example_types() -> None:
    s = parse_message(RFC_SECTIONS, fallback=False)
    types = {p.path: p.media_type for p in s.parts if not p.is_message}
    assert types == {
        "1": "text/plain",
        "2": "application/octet-stream",
        "3": "message/rfc822",
        "3.1": "text/plain",
        "3.2": "application/octet-stream",
        "4": "multipart/mixed",
        "4.1": "image/gif",
        "4.2": "message/rfc822",
        "4.2.1": "text/plain",
        "4.2.2": "multipart/alternative",
        "4.2.2.1": "text/plain",
        "4.2.2.2": "text/richtext",
    }


@pytest.mark.parametrize("spec", ["5", "1.1", "0", "1.HEADER", "2.TEXT", "4.3", "x", "HEADER.X"])
def test_missing_sections(spec: str) -> None:
    assert parse_message(RFC_SECTIONS).section(spec) is None


def test_single_part_message_is_part_one() -> None:
    s = parse_message(PLAIN, fallback=False)
    body = PLAIN[PLAIN.index(b"\r\n\r\n") + 4 :]
    assert _slice(PLAIN, "1") == body
    assert _slice(PLAIN, "TEXT") == body
    assert _slice(PLAIN, "HEADER") == PLAIN[: PLAIN.index(b"\r\n\r\n") + 4]
    assert _slice(PLAIN, "1.MIME") == _slice(PLAIN, "HEADER")
    assert s.header_end == len(PLAIN) - len(body)
    assert s.part("1") is s.root


def test_nested_single_part_message() -> None:
    assert _slice(NESTED, "2.1") == b"Noon?"
    assert _slice(NESTED, "2.TEXT") == b"Noon?"
    assert _slice(NESTED, "2.HEADER").startswith(b"From: Alice Example")
    assert (
        _slice(NESTED, "2.MIME")
        == b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
    )
    assert _slice(NESTED, "1") == b"Forwarding this."


def test_mixed_offsets() -> None:
    assert _slice(MIXED, "1") == b"See attached."
    assert _slice(MIXED, "3") == b"iVBORw0KGgo="
    assert _slice(MIXED, "2").endswith(b"XQ==")
    assert _slice(MIXED, "3.MIME").startswith(b"Content-Type: image/png\r\n")


def test_offsets_are_nested_and_ordered() -> None:
    for raw in (RFC_SECTIONS, MIXED, NESTED, PLAIN):
        s = parse_message(raw, fallback=False)
        for i, p in enumerate(s.parts):
            assert 0 <= p.header_start <= p.body_start <= p.body_end <= len(raw)
            if p.parent >= 0:
                parent = s.parts[p.parent]
                assert p.parent < i
                assert parent.body_start <= p.header_start
                assert p.body_end <= parent.body_end


def test_bare_lf_message() -> None:
    raw = (
        b"Subject: lf\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\none\n--x\n"
        b"Content-Type: text/html\n\n<p>two</p>\n--x--\n"
    )
    assert _slice(raw, "1") == b"one"
    assert _slice(raw, "2") == b"<p>two</p>"
    assert _slice(raw, "HEADER") == b"Subject: lf\nContent-Type: multipart/mixed; boundary=x\n\n"


def test_boundary_with_transport_padding_and_prefix_lookalikes() -> None:
    raw = crlf(
        'Content-Type: multipart/mixed; boundary="ab"\n\n'
        "--ab   \n\n"
        "one\n--abc\nstill one\n--ab-- \n"
        "epilogue\n"
    )
    assert _slice(raw, "1") == b"one\r\n--abc\r\nstill one"


def test_inner_boundary_missing_closed_by_outer() -> None:
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=out\n\n"
        "--out\n"
        "Content-Type: multipart/alternative; boundary=in\n\n"
        "--in\n\ninner one\n"
        "--out\n\nouter two\n"
        "--out--\n"
    )
    assert _slice(raw, "1.1") == b"inner one"
    assert _slice(raw, "2") == b"outer two"


def test_digest_default_type() -> None:
    raw = crlf(
        "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: first\n\nhello\n--d--\n"
    )
    s = parse_message(raw, fallback=False)
    part = s.part("1")
    assert part is not None and part.media_type == "message/rfc822"
    assert _slice(raw, "1.TEXT") == b"hello"


def test_encapsulated_header_ending_at_delimiter_stays_inside_its_part() -> None:
    # The blank line ending the nested header is also the line break owned by the delimiter;
    # the message/rfc822 part must still enclose its message (found by hypothesis).
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=b\n\n"
        "--b\nContent-Type: message/rfc822\n\nSubject: inner\n\n--b\n\nnext\n--b--\n"
    )
    s = parse_message(raw, fallback=False)
    outer, inner = s.parts[1], s.parts[2]
    assert inner.parent == 1
    assert outer.body_start <= inner.header_start and inner.body_end <= outer.body_end
    assert _slice(raw, "2") == b"next"
