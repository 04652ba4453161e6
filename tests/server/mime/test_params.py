"""Content-Type parameters (RFC 2045 §5.1) and RFC 2231 continuations and charsets."""

from __future__ import annotations

import pytest

from server.mime.params import decode_params, parse_content_type, parse_params


def _decoded(value: str) -> dict[str, str]:
    parsed = parse_content_type(value)
    assert parsed is not None
    return decode_params(parsed[2])


def test_rfc2231_section3_continuations() -> None:
    params = _decoded(
        'message/external-body; access-type=URL;\r\n URL*0="ftp://";\r\n'
        ' URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"'
    )
    assert params["url"] == "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"
    assert params["access-type"] == "URL"


def test_rfc2231_section4_charset_and_language() -> None:
    params = _decoded(
        "application/x-stuff;\r\n title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A"
    )
    assert params["title"] == "This is ***fun***"


def test_rfc2231_section4_1_mixed_sections() -> None:
    params = _decoded(
        "application/x-stuff;\r\n title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n"
        ' title*1*=%2A%2A%2Afun%2A%2A%2A%20;\r\n title*2="isn\'t it!"'
    )
    assert params["title"] == "This is even more ***fun*** isn't it!"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/plain", ("text", "plain", ())),
        ('TEXT/Plain; Charset="us-ascii"', ("text", "plain", (("charset", "us-ascii"),))),
        ("text/plain (comment); charset=utf-8", ("text", "plain", (("charset", "utf-8"),))),
        # RFC 2045 §5.1 example: the quoted and unquoted forms are equivalent
        (
            'text/plain; charset="us-ascii" (Plain text)',
            ("text", "plain", (("charset", "us-ascii"),)),
        ),
        (
            'text/plain;; ;charset=x;novalue;y="a\\"b"',
            ("text", "plain", (("charset", "x"), ("y", 'a"b'))),
        ),
        (
            'multipart/mixed; boundary="unterminated',
            ("multipart", "mixed", (("boundary", "unterminated"),)),
        ),
    ],
)
def test_content_type(value: str, expected: tuple[str, str, tuple[tuple[str, str], ...]]) -> None:
    assert parse_content_type(value) == expected


@pytest.mark.parametrize(
    "value", ["", "text", "/plain", "text/", "te xt/plain", "text/pl@in", "\u00e9/x"]
)
def test_invalid_content_type(value: str) -> None:
    assert parse_content_type(value) is None


@pytest.mark.parametrize(
    ("params", "name"),
    [
        # RFC 2231 filename with a UTF-8 charset
        ((("filename*", "UTF-8''%E2%82%AC%20rates.txt"),), "\u20ac rates.txt"),
        # unordered sections are put in order
        ((("filename*1", "b.txt"), ("filename*0", "a")), "ab.txt"),
        # RFC 2047 in a quoted value: forbidden but common
        ((("filename", "=?utf-8?B?w6kudHh0?="),), "\u00e9.txt"),
        # the RFC 2231 form wins over a plain duplicate
        ((("filename", "plain.txt"), ("filename*", "utf-8''better.txt")), "better.txt"),
        # unknown charset and bad escapes do not raise
        ((("filename*", "x-nope''%ZZ%41"),), "%ZZA"),
        ((("filename*", "no-quotes-at-all"),), "no-quotes-at-all"),
    ],
)
def test_decode_filenames(params: tuple[tuple[str, str], ...], name: str) -> None:
    assert decode_params(params)["filename"] == name


def test_parameter_count_is_capped() -> None:
    text = "".join(f"; p{i}=v" for i in range(10_000))
    assert len(parse_params(text)) == 64
