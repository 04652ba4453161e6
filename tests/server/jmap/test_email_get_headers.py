"""Header forms (RFC 8621 section 4.1.2) on arbitrary octets: a value never raises, and
every form gives JSON of its type or null; property names are parsed or refused with
invalidArguments, nothing else."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from server.jmap.errors import MethodError
from server.jmap.headers import (
    FORMS,
    HeaderProperty,
    header_value,
    parse_date,
    parse_header_property,
)

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
