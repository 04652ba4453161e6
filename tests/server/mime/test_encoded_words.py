"""RFC 2047 encoded words and RFC 6532 UTF-8 header text."""

from __future__ import annotations

import pytest

from server.mime import decode_header_value, decode_words
from server.mime.encoded_words import header_text, unfold

# RFC 2047 §8, the table of encoded text in comments and its displayed form.
RFC2047_SECTION8 = [
    ("(=?ISO-8859-1?Q?a?=)", "(a)"),
    ("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
    ("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
    ("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
    ("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"),
    ("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
    ("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
]


@pytest.mark.parametrize(("encoded", "shown"), RFC2047_SECTION8)
def test_rfc2047_section8_table(encoded: str, shown: str) -> None:
    assert decode_header_value(encoded.encode()) == shown


# RFC 2047 §8, the example message header.
@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>"),
        (
            b"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>",
            "Keld J\u00f8rn Simonsen <keld@dkuug.dk>",
        ),
        (
            b"=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
            "Andr\u00e9 Pirard <PIRARD@vm1.ulg.ac.be>",
        ),
        (
            b"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
            b"    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
            "If you can read this you understand the example.",
        ),
        (
            # unfolding keeps the white space of the continuation line (RFC 5322 §2.2.3)
            b"Nathaniel Borenstein <nsb@thumper.bellcore.com>\r\n"
            b"    (=?iso-8859-8?b?7eXs+SDv4SDp7Oj08A==?=)",
            "Nathaniel Borenstein <nsb@thumper.bellcore.com>    ("
            "\u05dd\u05d5\u05dc\u05e9 \u05df\u05d1 \u05d9\u05dc\u05d8\u05e4\u05e0)",
        ),
    ],
)
def test_rfc2047_section8_header(raw: bytes, text: str) -> None:
    assert decode_header_value(raw) == text


def test_rfc2231_section5_language_in_encoded_word() -> None:
    assert decode_words("=?US-ASCII*EN?Q?Keith_Moore?=") == "Keith Moore"


def test_multibyte_character_split_across_words() -> None:
    # "é" (C3 A9) split between two base64 words in one charset
    assert decode_words("=?utf-8?B?w6==?= =?utf-8?B?qQ==?=") == "\u00e9"
    assert decode_words("=?utf-8?q?=C3?= =?utf-8?q?=A9t=C3=A9?=") == "\u00e9t\u00e9"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=?x-unknown?Q?abc?=", "abc"),  # unknown charset: UTF-8
        ("=?base64?Q?abc?=", "abc"),  # a codec that is not a text encoding
        ("=?utf-8?B?w6k?=", "\u00e9"),  # missing padding
        ("=?utf-8?B?w6k=====?=", "\u00e9"),  # extra padding
        ("=?utf-8?B?!!!?=", ""),  # no base64 at all
        ("=?utf-8?Q?a=ZZb?=", "a=ZZb"),  # broken escape kept
        ("=?utf-8?X?abc?=", "=?utf-8?X?abc?="),  # unknown encoding: not a word
        ("=?utf-8?Q?unterminated", "=?utf-8?Q?unterminated"),
        ("pre=?utf-8?Q?mid?=post", "premidpost"),  # inside a word, as mailers do
        ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        ("=?utf-8?q?=FF?=", "\ufffd"),
    ],
)
def test_damaged_words(text: str, expected: str) -> None:
    assert decode_words(text) == expected


def test_rfc6532_utf8_and_garbage() -> None:
    assert decode_header_value("Gr\u00fc\u00dfe".encode()) == "Gr\u00fc\u00dfe"
    assert decode_header_value(b"caf\xe9 \x00x") == "caf\ufffd x"
    assert header_text(b"caf\xe9") == "caf\udce9"  # raw octets kept for IMAP


def test_unfold() -> None:
    assert unfold(b"a\r\n b\n\tc") == b"a b\tc"
    assert unfold(b"a\r\nb") == b"ab"
