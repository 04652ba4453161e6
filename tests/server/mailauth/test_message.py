"""The From: domains that signing and DMARC use (RFC 7489 section 3.1.1, 6.6.1)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, strategies as st

from server.mailauth.message import NoAuthorDomain, author_domain, from_domains


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
