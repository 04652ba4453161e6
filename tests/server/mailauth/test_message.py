"""The From: domains that signing and DMARC use (RFC 7489 section 3.1.1, 6.6.1)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, strategies as st

from dkim import MessageFormatError, rfc822_parse

from server.mailauth.message import NoAuthorDomain, author_domain, from_domains, header_fields


def test_from_domains() -> None:
    m = (b"Subject: x\r\nFrom: \"A, B\" <a@Example.TEST.>,\r\n c@example.test\r\n"
         b"To: d@other.test\r\n\r\nFrom: e@body.test\r\n")
    assert from_domains(m) == ["example.test", "example.test"]
    assert author_domain(m) == "example.test"


@pytest.mark.parametrize("message", [
    b"Subject: no from\r\n\r\n",
    b"From: a@one.test, b@two.test\r\n\r\n",           # section 6.6.1: several domains
    b"From: a@one.test\r\nFrom: b@two.test\r\n\r\n",
    b"From: undisclosed\r\n\r\n",
])
def test_no_single_author_domain(message: bytes) -> None:
    with pytest.raises(NoAuthorDomain):
        author_domain(message)


@given(st.binary(max_size=300))
@example(b" ")  # dkimpy's parser raised IndexError on a leading continuation line
def test_any_bytes_give_a_domain_or_no_author_domain(data: bytes) -> None:
    try:
        assert isinstance(author_domain(data), str)
    except NoAuthorDomain:
        pass


def _dkimpy_fields(message: bytes) -> list[tuple[bytes, bytes]]:
    try:
        headers, _ = rfc822_parse(message)
    except (MessageFormatError, IndexError):
        return []
    return [(bytes(n), bytes(v)) for n, v in headers]


_LINES = st.lists(st.sampled_from([b"From: a@x.test", b"Subject: s", b" folded", b"",
                                   b"To: b@y.test", b"body line", b"\r", b":x"]), max_size=12)


@given(_LINES, st.sampled_from([b"\r\n", b"\n"]), st.binary(max_size=40))
@example([b"", b"From: a@x.test"], b"\r\n", b"")     # empty first line: no header section
@example([b"From: a@x.test", b"", b"From: b@x.test"], b"\n", b"")
def test_header_fields_read_only_the_header_section_as_dkimpy_does(
        lines: list[bytes], newline: bytes, tail: bytes) -> None:
    """header_fields gives dkimpy only the header section (RFC 5322 section 2.1: it ends
    at the first empty line): the same fields as dkimpy reading the whole message."""
    message = newline.join(lines) + tail
    assert header_fields(message) == _dkimpy_fields(message)
