"""Base subjects (RFC 5256 section 2.1) and Message-ID normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdb_layers.mail.threads import base_subject, normalise_message_id
from mailtext.subjects import casemap


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Hello", "hello"),
        ("Re: Hello", "hello"),
        ("RE:  re: Hello ", "hello"),
        ("Fwd: Hello", "hello"),
        ("Fw: Hello", "hello"),
        ("Re[2]: Hello", "hello"),
        ("[list] Re: Hello", "hello"),
        ("Re: [list] Hello", "hello"),
        ("Hello (fwd)", "hello"),
        ("[Fwd: Hello]", "hello"),
        ("Re: [Fwd: Re: Hello (fwd)]", "hello"),
        ("[only a blob]", "[only a blob]"),
        ("Hello\r\n   world", "hello world"),
        ("", ""),
    ],
)
def test_base_subject(subject: str, base: str) -> None:
    assert base_subject(subject) == casemap(base)


@given(st.text())
def test_base_subject_is_idempotent(s: str) -> None:
    once = base_subject(s)
    assert base_subject(once) == once


def test_message_id() -> None:
    assert normalise_message_id(" <a@b> ") == "a@b"
    assert normalise_message_id("<>") is None
    assert normalise_message_id("x" * 2000) is None
