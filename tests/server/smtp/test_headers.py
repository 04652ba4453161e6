"""The author addresses of a submission (server/smtp/headers.py): the plain-address fast
path gives what email.utils.getaddresses gives, and everything else still goes through it."""

from __future__ import annotations

from email.utils import getaddresses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.smtp.headers import UnparsableAuthor, author_addresses

_ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"


def _message(*fields: str) -> bytes:
    return ("".join(f"{f}\r\n" for f in fields) + "Subject: s\r\n\r\nbody\r\n").encode()


def _reference(value: str) -> list[str]:
    return [a for _, a in getaddresses([value]) if a]


@given(st.lists(st.text(_ATEXT, min_size=1, max_size=6), min_size=1, max_size=3),
       st.lists(st.text("abz09-", min_size=1, max_size=6), min_size=1, max_size=3))
def test_a_plain_address_is_what_getaddresses_reads(local: list[str], domain: list[str]) -> None:
    """RFC 5322 section 3.4.1: a dot-atom addr-spec alone in the field."""
    address = ".".join(local) + "@" + ".".join(domain)
    assert author_addresses(_message(f"From: {address}")) == _reference(address) == [address]


@pytest.mark.parametrize("value", [
    "Alice <alice@example.com>",
    "alice@example.com (Alice)",
    '"al ice"@example.com',
    "alice@example.com, bob@example.org",
    "=?utf-8?q?Al=C3=AFce?= <alice@example.com>",
    "alice@[192.0.2.1]",
    "alice@example.com.",
])
def test_other_forms_go_through_getaddresses(value: str) -> None:
    assert author_addresses(_message(f"From: {value}")) == _reference(value)


def test_every_from_and_sender_counts_and_a_bad_one_is_reported() -> None:
    message = _message("From: alice@example.com", "Sender: Bob <bob@example.org>",
                       "From: carol@example.net")
    assert author_addresses(message) == ["alice@example.com", "bob@example.org",
                                         "carol@example.net"]
    with pytest.raises(UnparsableAuthor):
        author_addresses(_message("From: alice"))
