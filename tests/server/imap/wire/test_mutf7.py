"""Mailbox name encodings: modified UTF-7 (RFC 3501 §5.1.3 / RFC 9051 §5.1.3) and UTF-8."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.imap.wire.mutf7 import (
    MailboxNameError, decode_mailbox, decode_mutf7, encode_mailbox, encode_mutf7,
)

EXAMPLES = [
    # RFC 3501 §5.1.3: "~peter/mail/台北/日本語"
    ("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Entw\u00fcrfe", b"Entw&APw-rfe"),
    ("&", b"&-"),
    ("a&b", b"a&-b"),
    ("\U0001f600", b"&2D3eAA-"),  # outside the BMP: a surrogate pair
    ("", b""),
]


@pytest.mark.parametrize(("name", "wire"), EXAMPLES)
def test_rfc_examples(name: str, wire: bytes) -> None:
    assert encode_mutf7(name) == wire
    assert decode_mutf7(wire) == name


@pytest.mark.parametrize(
    "wire",
    [
        b"&Jjo!",  # RFC 3501 §5.1.3: "&Jjo!" is not valid (unterminated, bad char)
        b"&U,BTFw-&ZeVnLIqe-",  # two adjacent runs: the shortest form is one run
        b"&AGE-",  # "a" encoded: printable US-ASCII must be itself
        b"&ACY-",  # "&" encoded instead of "&-"
        b"&2D3-",  # lone high surrogate
        b"&AP-",  # partial UTF-16 unit
        b"&APx-",  # non-zero padding bits
        b"&A-",  # one base64 character
        b"caf\xc3\xa9",  # 8-bit octets are not modified UTF-7
        b"tab\there",
        b"&/w-",  # "/" is not in modified base64 ("," replaces it)
    ],
)
def test_invalid_forms_are_refused(wire: bytes) -> None:
    with pytest.raises(MailboxNameError):
        decode_mutf7(wire)


def test_inbox_is_case_insensitive() -> None:
    assert decode_mailbox(b"inbox", utf8=False) == "INBOX"
    assert decode_mailbox(b"InBoX", utf8=True) == "INBOX"
    assert decode_mailbox(b"INBOX/sub", utf8=False) == "INBOX/sub"


def test_utf8_mode() -> None:
    assert decode_mailbox("Entwürfe".encode(), utf8=True) == "Entwürfe"
    assert encode_mailbox("Entwürfe", utf8=True) == "Entwürfe".encode()
    # in UTF-8 mode "&" is just a character (RFC 9051 §5.1: no modified UTF-7 in rev2)
    assert decode_mailbox(b"a&b", utf8=True) == "a&b"
    with pytest.raises(MailboxNameError):
        decode_mailbox(b"\xff\xfe", utf8=True)
    with pytest.raises(MailboxNameError):
        decode_mailbox(b"a\x01b", utf8=True)


@given(st.text())
def test_round_trip(name: str) -> None:
    try:
        wire = encode_mutf7(name)
    except UnicodeEncodeError:  # lone surrogates have no UTF-16 form
        return
    assert decode_mutf7(wire) == name


@given(st.binary(max_size=40))
def test_decoding_is_canonical(data: bytes) -> None:
    """Every accepted wire form is the one encoding of its name (a bijection)."""
    try:
        name = decode_mutf7(data)
    except MailboxNameError:
        return
    assert encode_mutf7(name) == data


def test_utf8_names_are_taken_in_nfc_and_mutf7_names_as_sent() -> None:
    """RFC 9051 §5.1: UTF-8 names are Net-Unicode (NFC); a server MAY accept a denormalized
    one and convert it to NFC.  Appendix A.1: a modified UTF-7 name is preserved exactly."""
    decomposed = "Cafe\u0301"
    assert decode_mailbox(decomposed.encode(), utf8=True) == "Caf\u00e9"
    assert decode_mailbox("Caf\u00e9".encode(), utf8=True) == "Caf\u00e9"
    assert decode_mailbox(encode_mutf7(decomposed), utf8=False) == decomposed
