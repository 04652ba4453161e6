"""ENVELOPE, BODY and BODYSTRUCTURE wire syntax (RFC 9051 §7.5.2, §9)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.mime import parse_message
from server.mime.imap_render import _string, imap_string, render_bodystructure, render_envelope

from .imap_syntax import check_body, check_envelope, read
from .samples import ALTERNATIVE, MIXED, NESTED, PLAIN, crlf

TERRY = b'(("Terry Gray" NIL "gray" "cac.washington.edu"))'

# RFC 9051 §8: the sample FETCH response; the body is sized to give its 3028 octets, 92 lines.
RFC_MESSAGE = crlf(
    "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n"
    "From: Terry Gray <gray@cac.washington.edu>\n"
    "Subject: IMAP4rev1 WG mtg summary and minutes\n"
    "To: imap@cac.washington.edu\n"
    "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\n"
    "Message-Id: <B27397-0100000@cac.washington.edu>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\n"
    "\n" + ("x" * 31 + "\n") * 91 + "y" * 23 + "\n"
)


def test_rfc9051_section8_envelope() -> None:
    s = parse_message(RFC_MESSAGE, fallback=False)
    assert render_envelope(s) == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
        + TERRY
        + b" "
        + TERRY
        + b" "
        + TERRY
        + b' ((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )


def test_rfc9051_section8_body() -> None:
    s = parse_message(RFC_MESSAGE, fallback=False)
    assert render_bodystructure(s, extensible=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)'
    )
    assert render_bodystructure(s, extensible=True) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL)'
    )


def test_plain() -> None:
    s = parse_message(PLAIN, fallback=False)
    assert render_envelope(s) == (
        b'("Tue, 3 Mar 2026 09:59:58 +0100" "Lunch?" '
        b'(("Alice Example" NIL "alice" "example.org")) '
        b'(("Alice Example" NIL "alice" "example.org")) '
        b'(("Alice Example" NIL "alice" "example.org")) '
        b'(("Bob" NIL "bob" "example.net")) NIL NIL NIL "<lunch-1@example.org>")'
    )
    # no Content-Type: text/plain; charset=us-ascii (RFC 2045 §5.2)
    assert render_bodystructure(s, False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 40 5)'
    )


def test_alternative_with_encoded_words_and_group() -> None:
    s = parse_message(ALTERNATIVE, fallback=False)
    renee = b'(("=?UTF-8?Q?Ren=C3=A9e_Dupr=C3=A9?=" NIL "renee" "example.fr"))'
    assert render_envelope(s) == (
        b'("Mon, 2 Mar 2026 18:30:00 +0100" "=?UTF-8?B?UsOpdW5pb24gZGUgbCfDqXF1aXBl?=" '
        + renee
        + b" "
        + renee
        + b" "
        + renee
        + b" "
        b'(("Smith, John" NIL "john" "example.com")(NIL NIL "team" NIL)'
        b'(NIL NIL "a" "example.com")(NIL NIL "b" "example.com")(NIL NIL NIL NIL)) '
        b'NIL NIL "<root@example.com>" "<alt-1@example.fr>")'
    )
    plain = len(b"R=C3=A9union demain =E2=80=94 10h.")
    html = len(
        b"<html><head><style>p {color: red}</style></head>"
        b"<body><p>R&eacute;union <b>demain</b></p></body></html>"
    )
    assert render_bodystructure(s, True) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" %d 1 NIL NIL NIL NIL)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" %d 1 NIL NIL NIL NIL) '
        b'"ALTERNATIVE" ("BOUNDARY" "alt-boundary") NIL NIL NIL)' % (plain, html)
    )
    assert render_bodystructure(s, False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" %d 1)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" %d 1) "ALTERNATIVE")' % (plain, html)
    )


def test_mixed_with_attachments_and_rfc2231_filename() -> None:
    s = parse_message(MIXED, fallback=False)
    assert render_bodystructure(s, True) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 13 1 NIL NIL NIL NIL)'
        b'("APPLICATION" "PDF" ("NAME" "report.pdf") NIL "Quarterly report" "BASE64" 94 NIL '
        b'("ATTACHMENT" ("FILENAME" "report.pdf")) NIL NIL)'
        b'("IMAGE" "PNG" NIL "<img1@example.com>" NIL "BASE64" 12 NIL '
        b'("ATTACHMENT" ("FILENAME*0*" "UTF-8\'\'%E2%82%AC%20rates" "FILENAME*1" ".png")) '
        b'("en" "fr") "http://example.com/rates.png") '
        b'"MIXED" ("BOUNDARY" "outer") NIL NIL NIL)'
    )
    assert render_bodystructure(s, False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 13 1)'
        b'("APPLICATION" "PDF" ("NAME" "report.pdf") NIL "Quarterly report" "BASE64" 94)'
        b'("IMAGE" "PNG" NIL "<img1@example.com>" NIL "BASE64" 12) "MIXED")'
    )


def test_nested_message_rfc822() -> None:
    s = parse_message(NESTED, fallback=False)
    inner = crlf(
        "From: Alice Example <alice@example.org>\n"
        "To: Bob <bob@example.net>\n"
        "Subject: Lunch?\n"
        "Date: Tue, 3 Mar 2026 09:59:58 +0100\n"
        "Message-ID: <lunch-1@example.org>\n"
        "\n"
        "Noon?"
    )
    alice = b'(("Alice Example" NIL "alice" "example.org"))'
    envelope = (
        b'("Tue, 3 Mar 2026 09:59:58 +0100" "Lunch?" '
        + alice
        + b" "
        + alice
        + b" "
        + alice
        + b' (("Bob" NIL "bob" "example.net")) NIL NIL NIL "<lunch-1@example.org>")'
    )
    assert render_bodystructure(s, True) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 16 1 NIL NIL NIL NIL)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" %d '
        % len(inner)
        + envelope
        + b' ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL) 7 '
        b'NIL ("INLINE" NIL) NIL NIL) "MIXED" ("BOUNDARY" "fwd") NIL NIL NIL)'
    )


def test_absent_and_empty_fields() -> None:
    # RFC 9051 §7.5.2: absent Date/Subject/In-Reply-To/Message-ID are NIL, empty ones "";
    # an empty or absent From is NIL; absent Sender/Reply-To repeat From.
    s = parse_message(b"Subject:\r\nFrom:\r\nMessage-ID: \r\n\r\nbody", fallback=False)
    assert render_envelope(s) == b'(NIL "" NIL NIL NIL NIL NIL NIL NIL "")'
    s = parse_message(b"From: a@b.c\r\nSender: s@b.c\r\nReply-To:\r\n\r\n", fallback=False)
    assert render_envelope(s) == (
        b'(NIL NIL ((NIL NIL "a" "b.c")) ((NIL NIL "s" "b.c")) ((NIL NIL "a" "b.c")) '
        b"NIL NIL NIL NIL NIL)"
    )


def test_address_without_domain() -> None:
    s = parse_message(b"To: undisclosed-recipients\r\n\r\n", fallback=False)
    assert render_envelope(s) == (
        b'(NIL NIL NIL NIL NIL ((NIL NIL "undisclosed-recipients" "MISSING_DOMAIN")) '
        b"NIL NIL NIL NIL)"
    )


def test_eight_bit_header_goes_out_as_literal_verbatim() -> None:
    s = parse_message(b'Subject: caf\xe9 "x"\r\n\r\n', fallback=False)
    env = render_envelope(s)
    assert b'{8}\r\ncaf\xe9 "x"' in env
    check_envelope(read(env))


def test_utf8_mode_quotes_valid_utf8() -> None:
    s = parse_message("Subject: Gr\u00fc\u00dfe\r\n\r\n".encode(), fallback=False)
    assert render_envelope(s, utf8=True).startswith('(NIL "Gr\u00fc\u00dfe"'.encode())
    assert render_envelope(s).startswith(b"(NIL {7}\r\n")


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("plain", b'"plain"'),
        ("", b'""'),
        ('say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        ("tab\there", b'"tab\there"'),
        ("line\r\nbreak", b"{11}\r\nline\r\nbreak"),
        ("nul\x00dropped", b'"nuldropped"'),
        ("\u00e9", b"{2}\r\n\xc3\xa9"),
        ("\udce9", b"{1}\r\n\xe9"),
    ],
)
def test_imap_string(text: str, wire: bytes) -> None:
    assert imap_string(text) == wire


@given(st.one_of(st.text(), st.text(st.characters(max_codepoint=0x7F))), st.booleans())
def test_imap_string_fast_path_is_the_general_one(text: str, utf8: bool) -> None:
    """RFC 9051 §4.3: the shortcut for printable ASCII quotes exactly as the general rule."""
    assert imap_string(text, utf8) == _string(text, utf8)


@pytest.mark.parametrize("raw", [PLAIN, ALTERNATIVE, MIXED, NESTED, RFC_MESSAGE])
def test_rendered_grammar(raw: bytes) -> None:
    s = parse_message(raw, fallback=False)
    check_envelope(read(render_envelope(s)))
    check_body(read(render_bodystructure(s, True)), True)
    check_body(read(render_bodystructure(s, False)), False)


def test_opaque_parts_render_as_octet_stream() -> None:
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=b\n\n"
        "--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA==\n"
        "--b\nContent-Type: multipart/related; boundary=never\n\nno parts here\n"
        "--b--\n"
    )
    s = parse_message(raw, fallback=False)
    body = render_bodystructure(s, False)
    assert body == (
        b'(("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 16)'
        b'("APPLICATION" "OCTET-STREAM" ("BOUNDARY" "never") NIL NIL "7BIT" 13) "MIXED")'
    )
