"""PLAIN (RFC 4616): the message's syntax, its examples, and garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.sasl import Challenge, Credentials, Malformed, SequenceError
from server.sasl.plain import Plain, parse_message


def test_rfc4616_section4_examples() -> None:
    # "tim" logging in with password "tanstaaftanstaaf", no authzid
    assert parse_message(b"\0tim\0tanstaaftanstaaf") == Credentials("tim", "tanstaaftanstaaf")
    # "Kurt" acting as "Ursel" with password "xipj3plmq"
    assert parse_message(b"Ursel\0Kurt\0xipj3plmq") == \
        Credentials("Kurt", "xipj3plmq", "Ursel")


def test_utf8_identities_and_passwords() -> None:
    assert parse_message("\0jörg\0pässwörd".encode()) == Credentials("jörg", "pässwörd")


@pytest.mark.parametrize("message", [
    b"",                            # nothing
    b"tim",                         # no NUL
    b"\0tim",                       # two fields
    b"\0tim\0pw\0extra",            # four fields
    b"\0\0pw",                      # empty authcid
    b"\0tim\0",                     # empty password
    b"\0tim\0\xff\xfe",             # password not UTF-8
    b"\xc3\0tim\0pw",               # authzid not UTF-8
    b"\0" + b"t" * 256 + b"\0pw",   # a field over 255 octets
])
def test_malformed_messages(message: bytes) -> None:
    assert isinstance(parse_message(message), Malformed)


def test_without_initial_response_an_empty_challenge() -> None:
    m = Plain()
    assert m.start(None) == Challenge(b"")
    assert m.respond(b"\0tim\0pw") == Credentials("tim", "pw")
    with pytest.raises(SequenceError):
        m.respond(b"\0tim\0pw")


def test_with_initial_response_no_challenge() -> None:
    m = Plain()
    assert m.start(b"\0tim\0pw") == Credentials("tim", "pw")
    with pytest.raises(SequenceError):
        m.respond(b"more")


def test_secret_not_in_repr() -> None:
    assert "tanstaaf" not in repr(parse_message(b"\0tim\0tanstaaf"))


@given(st.binary(max_size=600))
def test_garbage_is_credentials_or_malformed(message: bytes) -> None:
    result = Plain().start(message)
    assert isinstance(result, Credentials | Malformed)
    if isinstance(result, Credentials):
        assert result.authcid and result.secret
        assert "\0".join((result.authzid, result.authcid, result.secret)).encode() == message


@given(st.binary(max_size=300))
def test_garbage_after_the_challenge(message: bytes) -> None:
    m = Plain()
    assert isinstance(m.start(None), Challenge)
    assert isinstance(m.respond(message), Credentials | Malformed)
