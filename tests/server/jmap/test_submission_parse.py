"""The pure parts of sending: Bcc removal (RFC 5322 section 3.6.3) and the
Return-Path read by the vacation responder (RFC 5321 section 4.4), with hypothesis:
every other byte kept, no Bcc left, garbage never raises."""

from __future__ import annotations

import email
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.jmap.submission import without_bcc
from server.outbound.vacation import automatic, return_path

names = st.sampled_from(["From", "To", "Subject", "Cc", "X-Bcc-Note", "Received"])
values = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                 max_size=20)
folds = st.lists(values, max_size=2)
newline = st.sampled_from([b"\r\n", b"\n"])


def _field(name: str, value: str, folded: list[str], nl: bytes) -> bytes:
    return f"{name}: {value}".encode() + b"".join(nl + b"\t" + f.encode() for f in folded) + nl


@settings(max_examples=200, deadline=None)
@given(fields=st.lists(st.tuples(names, values, folds), max_size=6),
       bccs=st.lists(st.tuples(st.sampled_from(["Bcc", "BCC", "bcc"]), values, folds),
                     max_size=3),
       positions=st.lists(st.integers(0, 6), min_size=3, max_size=3),
       body=st.binary(max_size=200), nl=newline)
def test_bcc_fields_go_and_everything_else_stays(
        fields: list[tuple[str, str, list[str]]], bccs: list[tuple[str, str, list[str]]],
        positions: list[int], body: bytes, nl: bytes) -> None:
    kept = [_field(n, v, f, nl) for n, v, f in fields]
    mixed = list(kept)
    for (name, value, folded), at in zip(bccs, positions, strict=False):
        mixed.insert(min(at, len(mixed)), _field(name, value, folded, nl))
    raw = b"".join(mixed) + nl + body
    assert without_bcc(raw) == b"".join(kept) + nl + body
    parsed = email.message_from_bytes(without_bcc(raw), policy=email.policy.compat32)
    assert parsed.get_all("Bcc") is None


@given(st.binary(max_size=300))
def test_garbage_never_raises(raw: bytes) -> None:
    out = without_bcc(raw)
    assert len(out) <= len(raw)
    return_path(raw)


@pytest.mark.parametrize("raw, expected", [
    (b"Return-Path: <a@b.example>\r\nReceived: x\r\n\r\n", "a@b.example"),
    (b"Return-Path: <>\r\n\r\n", ""),
    (b"Received: x\r\nReturn-Path: <a@b.example>\r\n\r\n", None),  # only ours, first
    (b"", None),
])
def test_return_path(raw: bytes, expected: str | None) -> None:
    assert return_path(raw) == expected


@pytest.mark.parametrize("headers, why", [
    ({"Auto-Submitted": "no"}, None),
    ({"Auto-Submitted": "auto-replied; owner=x"}, "skipped_automatic"),
    ({"List-Post": "<mailto:l@x>"}, "skipped_list"),
    ({"Precedence": "Junk"}, "skipped_list"),
    ({"Precedence": "first-class"}, None),
])
def test_automatic(headers: dict[str, str], why: str | None) -> None:
    """RFC 3834 section 2 and 5; RFC 2369 List-* fields."""
    message = email.message.Message()
    for k, v in headers.items():
        message[k] = v
    assert automatic(message) == why
