"""Header forms (RFC 8621 section 4.1.2) on arbitrary octets: a value never raises, and
every form gives JSON of its type or null; property names are parsed or refused with
invalidArguments, nothing else."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from server.jmap.email_body import BytesReader
from server.jmap.email_get import PROPERTIES, render_email, view_arg
from server.jmap.errors import MethodError
from server.jmap.headers import (
    FORMS,
    HeaderProperty,
    header_value,
    parse_date,
    parse_header_property,
)
from server.mime import parse_message

FIELD_OCTETS = st.binary(max_size=300) | st.lists(
    st.sampled_from([b"=?utf-8?q?a=C3=A9?=", b"=?x?b?////?=", b"<a@b>", b", ", b";", b":",
                     b"\"q\\\"", b"(c)", b"\r\n ", b"\xff", b"\x00", b"Mon, 1 Jan 2024 ",
                     b"<http://x>", b"g: ", b"@", b"\xc3"]), max_size=20).map(b"".join)


@given(FIELD_OCTETS)
def test_every_form_of_any_value_is_json(value: bytes) -> None:
    for form, render in FORMS.items():
        out = render(value)
        json.dumps(out, ensure_ascii=False).encode("utf-8")  # no lone surrogates
        if form in ("asRaw", "asText"):
            assert isinstance(out, str) and "\x00" not in out
        elif form in ("asAddresses", "asGroupedAddresses"):
            assert isinstance(out, list)
        elif form == "asDate":
            assert out is None or isinstance(out, str)
        else:
            assert out is None or (isinstance(out, list) and out)


@given(st.lists(st.tuples(st.sampled_from(["X-A", "x-a", "Subject", "To"]), FIELD_OCTETS),
                max_size=5))
def test_all_is_every_instance_in_order_and_the_default_the_last(
        fields: list[tuple[str, bytes]]) -> None:
    values = [v for n, v in fields if n.lower() == "x-a"]
    every = header_value(HeaderProperty("x-a", "asRaw", True), fields)
    assert every == [v.replace(b"\x00", b"").decode("utf-8", "replace") for v in values]
    last = header_value(HeaderProperty("x-a", "asRaw", False), fields)
    assert last == (every[-1] if isinstance(every, list) and every else None)


@given(st.text(max_size=60))
def test_property_names_parse_or_are_invalid_arguments(name: str) -> None:
    try:
        parsed = parse_header_property("header:" + name)
    except MethodError as e:
        assert e.type == "invalidArguments"
    else:
        assert parsed is not None and parsed.form in FORMS


def test_dates_keep_their_offset() -> None:
    """Section 4.1.2.6: an RFC 3339 date-time with the offset of the field."""
    assert parse_date("Tue, 3 Mar 2026 09:59:58 -0330") == "2026-03-03T09:59:58-03:30"
    assert parse_date("3 Mar 2026 09:59 -0000") == "2026-03-03T09:59:00Z"
    assert parse_date("yesterday") is None


MESSAGE_PIECES = st.lists(st.sampled_from([
    b"Subject: =?utf-8?b?w6k=?=\r\n", b"To: a@b, g: c@d;\r\n",
    b"Date: Mon, 1 Jan 2024 00:00 +0100\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n", b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset=x-none\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"Content-Disposition: attachment;"
    b" filename*=utf-8''%E2%82\r\n", b"\r\n", b"--b\r\n", b"--b--\r\n", b"=C3=A9 =\r\n",
    b"\xff\xfe\x00", b"x-a: \r\n \r\n", b"QUJD\r\n", b"<p>a &amp; b</p>\r\n"]), max_size=30)


@settings(deadline=None)  # what renders is the question, not how fast on a busy machine
@given(MESSAGE_PIECES.map(b"".join))
def test_any_message_renders_every_property(raw: bytes) -> None:
    """Email/get (and Email/parse) of any octets: every property renders to JSON."""
    view = view_arg({"properties": [*PROPERTIES, "header:To:asGroupedAddresses:all",
                                    "header:Date:asDate", "header:X-A:asURLs"],
                     "bodyProperties": ["partId", "blobId", "size", "headers", "name",
                                        "type", "charset", "disposition", "cid", "language",
                                        "location", "subParts", "header:X-A:asText"],
                     "fetchAllBodyValues": True, "maxBodyValueBytes": 7}, PROPERTIES)
    out = asyncio.run(render_email(parse_message(raw, fallback=False), "b" * 64,
                                   BytesReader(raw), view))
    decoded: dict[str, Any] = json.loads(json.dumps(out, ensure_ascii=False).encode("utf-8"))
    for value in decoded["bodyValues"].values():
        assert len(value["value"].encode()) <= 7
