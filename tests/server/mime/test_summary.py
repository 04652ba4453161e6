"""MessageSummary contents: envelope, JMAP parts and bodies, preview, serialization."""

from __future__ import annotations

import json
import time
import zlib

import pytest

from server.mime import (
    FORMAT_VERSION,
    Address,
    Group,
    MessageSummary,
    parse_message,
    part_bytes,
    part_text,
)

from server.mime.serialize import envelope_from_bytes, head_from_bytes

from .samples import ALTERNATIVE, MIXED, NESTED, PLAIN, crlf


def test_envelope_fields() -> None:
    env = parse_message(ALTERNATIVE, fallback=False).envelope
    assert env.decoded_subject == "R\u00e9union de l'\u00e9quipe"
    assert env.subject == "=?UTF-8?B?UsOpdW5pb24gZGUgbCfDqXF1aXBl?="
    assert env.date == "Mon, 2 Mar 2026 18:30:00 +0100"
    assert env.timestamp == 1772472600  # 2026-03-02T17:30:00Z
    (sender,) = env.from_
    assert isinstance(sender, Address)
    assert sender.name == "Ren\u00e9e Dupr\u00e9"
    assert sender.email == "renee@example.fr"
    assert isinstance(env.to[1], Group) and env.to[1].name == "team"
    assert env.message_ids == ("alt-1@example.fr",)
    assert env.in_reply_to_ids == ("root@example.com",)
    assert env.reference_ids == ("root@example.com", "mid@example.com")


def test_plain_summary() -> None:
    s = parse_message(PLAIN, fallback=False)
    assert s.preview == "Hi Bob, lunch at noon? Alice"
    assert not s.has_attachment
    assert s.text_body == (0,) and s.html_body == (0,) and s.attachments == ()
    (leaf,) = s.leaves()
    assert (leaf.path, leaf.media_type, leaf.charset, leaf.encoding) == (
        "1",
        "text/plain",
        "us-ascii",
        "7bit",
    )


def test_alternative_bodies_and_qp_preview() -> None:
    s = parse_message(ALTERNATIVE, fallback=False)
    assert [s.parts[i].path for i in s.text_body] == ["1"]
    assert [s.parts[i].path for i in s.html_body] == ["2"]
    assert s.preview == "R\u00e9union demain \u2014 10h."
    assert s.parts[1].decoded_size == len("R\u00e9union demain \u2014 10h.".encode())


def test_html_only_preview_strips_markup() -> None:
    raw = crlf(
        "Content-Type: text/html; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: quoted-printable\n\n"
        "<html><head><title>T</title><style>.x{}</style><script>var a = '<p>';</script></head>\n"
        "<body><!-- hidden --><p>Caf=E9 &amp;   cr=\n"
        "=E8me</p><br>next</body></html>\n"
    )
    s = parse_message(raw, fallback=False)
    assert s.preview == "Caf\u00e9 & cr\u00e8me next"
    assert s.text_body == (0,) and s.html_body == (0,)


def test_preview_is_capped() -> None:
    s = parse_message(b"\r\n" + b"word " * 10_000, fallback=False)
    assert len(s.preview) <= 256
    assert s.preview.startswith("word word")


def test_mixed_attachments() -> None:
    s = parse_message(MIXED, fallback=False)
    assert s.has_attachment
    atts = s.attachment_parts
    assert [(p.path, p.name, p.media_type) for p in atts] == [
        ("2", "report.pdf", "application/pdf"),
        ("3", "\u20ac rates.png", "image/png"),
    ]
    pdf, png = atts
    assert pdf.decoded_size == 67 and pdf.description == "Quarterly report"
    assert png.cid == "img1@example.com" and png.language == ("en", "fr")
    assert png.location == "http://example.com/rates.png"
    assert png.disposition == "attachment"


def test_nested_message_is_a_jmap_leaf() -> None:
    s = parse_message(NESTED, fallback=False)
    assert [p.path for p in s.leaves()] == ["1", "2"]
    assert [s.parts[i].media_type for i in s.attachments] == ["message/rfc822"]
    nested = s.parts[3]
    assert nested.is_message and nested.envelope is not None
    assert nested.envelope.decoded_subject == "Lunch?"


def test_related_inline_image_is_not_counted_as_attachment() -> None:
    raw = crlf(
        "Content-Type: multipart/related; boundary=r\n\n"
        '--r\nContent-Type: text/html\n\n<img src="cid:logo">hello\n'
        "--r\nContent-Type: image/png\nContent-ID: <logo>\nContent-Disposition: inline\n\nAAAA\n"
        "--r--\n"
    )
    s = parse_message(raw, fallback=False)
    assert [s.parts[i].path for i in s.html_body] == ["1"]
    assert [s.parts[i].path for i in s.attachments] == ["2"]  # RFC 8621: listed...
    assert not s.has_attachment  # ...but an inline cid image is no attachment to a user


def test_rfc8621_alternative_fills_missing_kind() -> None:
    raw = crlf(
        "Content-Type: multipart/alternative; boundary=a\n\n"
        "--a\nContent-Type: text/plain\n\nonly text\n--a--\n"
    )
    s = parse_message(raw, fallback=False)
    assert s.text_body == s.html_body == (1,)


def test_date_forms() -> None:
    for value, ts in [
        ("Thu, 13 Feb 1969 23:32:54 -0330", -27723426),  # RFC 5322 A.1.3-ish obsolete year
        ("21 Nov 97 09:55:06 GMT", 880106106),  # RFC 5322 A.6.2 two-digit year
        ("not a date", None),
        ("Mon, 31 Feb 2026 25:61:00 +0000", None),
    ]:
        env = parse_message(f"Date: {value}\r\n\r\n".encode(), fallback=False).envelope
        assert env.date == value
        assert env.timestamp == ts


# -- serialization ------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [PLAIN, ALTERNATIVE, MIXED, NESTED, b"", b"\xff\x00garbage"])
def test_round_trip(raw: bytes) -> None:
    s = parse_message(raw, fallback=False)
    data = s.to_bytes()
    assert data[:3] == b"MS" + bytes((FORMAT_VERSION,))
    assert MessageSummary.from_bytes(data) == s


@pytest.mark.parametrize("raw", [PLAIN, ALTERNATIVE, MIXED, NESTED, b"", b"\xff\x00garbage",
                                 b"Subject: caf\xe9\r\nFrom: \xff <a@b>\r\n\r\n"])
def test_envelope_alone_is_the_summarys(raw: bytes) -> None:
    """What FETCH ENVELOPE decodes (RFC 9051 section 7.5.2) is the full decode's envelope."""
    data = parse_message(raw, fallback=False).to_bytes()
    assert envelope_from_bytes(data) == MessageSummary.from_bytes(data).envelope


@pytest.mark.parametrize("raw", [PLAIN, ALTERNATIVE, MIXED, NESTED, b"", b"\xff\x00garbage",
                                 b"Subject: caf\xe9\r\nFrom: \xff <a@b>\r\n\r\n"])
def test_head_alone_is_the_summarys(raw: bytes) -> None:
    """What a JMAP list view decodes (RFC 8621 section 4.1.3's convenience properties,
    preview, hasAttachment) is the full decode's."""
    data = parse_message(raw, fallback=False).to_bytes()
    full = MessageSummary.from_bytes(data)
    assert head_from_bytes(data) == (full.envelope, full.preview, full.has_attachment)


def test_surrogate_escaped_header_octets_round_trip() -> None:
    s = parse_message(b"Subject: caf\xe9\r\nFrom: \xff <a@b>\r\n\r\n", fallback=False)
    back = MessageSummary.from_bytes(s.to_bytes())
    assert back.envelope.subject == "caf\udce9"
    assert back == s


def test_newer_format_is_refused() -> None:
    data = parse_message(PLAIN).to_bytes()
    with pytest.raises(ValueError, match="newer"):
        MessageSummary.from_bytes(data[:2] + bytes((FORMAT_VERSION + 1,)) + data[3:])


def test_unknown_trailing_fields_are_ignored() -> None:
    s = parse_message(MIXED)
    doc = json.loads(zlib.decompress(s.to_bytes()[3:]))
    doc.append("a field from a later minor version")
    for part in doc[8]:
        part.append({"future": True})
    data = b"MS" + bytes((FORMAT_VERSION,)) + zlib.compress(json.dumps(doc).encode())
    assert MessageSummary.from_bytes(data) == s


_BAD_PART_INDEX = zlib.compress(b'[1,0,"",0,[5],[],[],0,[["1",-1,1,0,0,0]]]')


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"MS",
        b"XX\x01",
        b"MS\x01not zlib",
        b"MS\x01" + zlib.compress(b"{}"),
        b"MS\x01" + zlib.compress(b"[1,2,3]"),
        b"MS\x01" + zlib.compress(b'[1,0,"",0,[],[],[],0,[]]'),
        b"MS\x01" + _BAD_PART_INDEX,
    ],
)
def test_damaged_summaries(data: bytes) -> None:
    with pytest.raises(ValueError):
        MessageSummary.from_bytes(data)
    if not data.endswith(_BAD_PART_INDEX):  # the envelope alone reads no part index
        with pytest.raises(ValueError):
            envelope_from_bytes(data)
        with pytest.raises(ValueError):
            head_from_bytes(data)


def test_summary_stays_compact() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"".join(
        b'--b\r\nContent-Type: application/x-thing; name="file%05d.bin"\r\n'
        b'Content-Disposition: attachment; filename="file%05d.bin"\r\n\r\nxx\r\n' % (i, i)
        for i in range(5_000)
    )
    s = parse_message(raw, fallback=False)
    assert s.truncated and len(s.parts) == 1_000
    assert len(s.to_bytes()) < 100_000


# -- speed --------------------------------------------------------------------------------


def test_ten_kilobyte_message_is_fast() -> None:
    raw = MIXED.replace(b"See attached.", b"See attached. " * 700)
    assert 10_000 < len(raw) < 12_000
    parse_message(raw)
    best = min(_timed(raw) for _ in range(20))
    assert best < 0.005  # typically ~0.2 ms; generous for slow CI


def _timed(raw: bytes) -> float:
    start = time.perf_counter()
    parse_message(raw)
    return time.perf_counter() - start


def test_part_text_decodes_transfer_encoding_and_charset() -> None:
    s = parse_message(ALTERNATIVE, fallback=False)
    part = s.parts[1]
    body = ALTERNATIVE[part.body_start : part.body_end]
    assert part_text(body, part) == "R\u00e9union demain \u2014 10h."
    pdf = parse_message(MIXED, fallback=False).parts[2]
    assert part_bytes(MIXED[pdf.body_start : pdf.body_end], pdf).startswith(b"%PDF-1.4")


def test_preview_skips_inline_images_in_text_body() -> None:
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=m\n\n"
        "--m\nContent-Type: image/gif\n\nGIF89a\n"
        "--m\nContent-Type: text/plain\n\nafter the picture\n--m--\n"
    )
    s = parse_message(raw, fallback=False)
    assert [s.parts[i].path for i in s.text_body] == ["1", "2"]
    assert s.preview == "after the picture"


def test_too_deep_stored_summary_is_refused() -> None:
    parts = [["", -1, 1, 0, 0, 0]] + [[str(i), i - 1, 0, 0, 0, 0] for i in range(1, 400)]
    doc = [FORMAT_VERSION, 0, "", 0, [], [], [], 0, parts]
    data = b"MS" + bytes((FORMAT_VERSION,)) + zlib.compress(json.dumps(doc).encode())
    with pytest.raises(ValueError, match="deeply"):
        MessageSummary.from_bytes(data)


def test_bytearray_and_memoryview_input() -> None:
    s = parse_message(PLAIN, fallback=False)
    assert parse_message(bytearray(PLAIN), fallback=False) == s
    assert parse_message(memoryview(PLAIN), fallback=False) == s


def test_a_parser_bug_still_yields_an_opaque_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.mime import summary as summary_module
    from server.mime.imap_render import render_bodystructure, render_envelope

    def broken(buf: bytes) -> MessageSummary:
        raise RuntimeError("bug")

    monkeypatch.setattr(summary_module, "_summarize", broken)
    s = parse_message(PLAIN)
    assert s.truncated and s.size == len(PLAIN)
    assert s.section("1") == (0, len(PLAIN))
    assert render_bodystructure(s, False) == (
        b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "7BIT" %d)' % len(PLAIN)
    )
    assert render_envelope(s) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    with pytest.raises(RuntimeError):
        parse_message(PLAIN, fallback=False)
