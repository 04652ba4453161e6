"""The one base-subject implementation (RFC 5256 section 2.1) and its comparison form
(RFC 5051 i;unicode-casemap), as JMAP threading and IMAP THREAD/SORT both use it."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fdb_layers.mail.threads
import server.mime
from mailtext.subjects import base_subject, casemap, extract_base_subject


def test_the_layer_and_the_parser_agree() -> None:
    # they disagreed: "straße" (str.lower) against "strasse" (str.casefold)
    for subject in ("[list] Re: Straße", "Re: ǅemal", "Fwd: ﬁle", "RE: ΣΊΣΥΦΟΣ"):
        assert fdb_layers.mail.threads.base_subject(subject) == server.mime.base_subject(subject)
    assert fdb_layers.mail.threads.base_subject is server.mime.base_subject


@given(st.text(alphabet=st.sampled_from(list("reRfwdFWD[]():  \tßẞﬁǆé")) | st.characters()))
@settings(max_examples=300)
def test_one_function_everywhere(subject: str) -> None:
    assert fdb_layers.mail.threads.base_subject(subject) == server.mime.base_subject(subject)


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("[list] Re: Straße", "Straße"),  # RFC 5256 section 2.1 steps 3 and 4
        ("Re: [Fwd: Re: Hello (fwd)]", "Hello"),
        ("[only a blob]", "[only a blob]"),
        ("Re[2]:   Mixed  Case", "Mixed Case"),
        ("Ｒｅ： x", "Ｒｅ： x"),  # ABNF strings are ASCII: not a leader as written
    ],
)
def test_extraction_keeps_the_text(subject: str, base: str) -> None:
    assert extract_base_subject(subject) == base


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("Straße", "STRASSE", False),  # simple titlecase mappings leave ß alone (RFC 5051)
        ("Straße", "STRAßE", True),
        ("ǆ", "ǅ", True),  # titlecase, not uppercase: ǆ, ǅ and Ǆ are one letter
        ("Ǆ", "ǆ", True),
        ("ｆｏｏ", "FOO", True),  # NFKD: full-width forms
        ("e\u0301", "\u00e9", True),  # NFKD: precomposed and combining
        ("\u00c9", "\u00e9", True),
        ("ﬁ", "FI", True),  # the form is its own form: NFKD gives "fi", titlecased again
        ("σ", "ς", True),  # both titlecase to Σ
        ("K", "\u212a", True),  # Kelvin sign: NFKD
        ("i", "\u0130", False),  # İ is I with a dot, not i
    ],
)
def test_casemap_equality(a: str, b: str, equal: bool) -> None:
    assert (casemap(a) == casemap(b)) is equal
    assert (base_subject(a) == base_subject(b)) is equal


def test_straße_and_strasse_are_different_threads() -> None:
    assert base_subject("[list] Re: Straße") == base_subject("straße") != base_subject("Strasse")


@given(st.text())
def test_casemap_is_its_own_form(s: str) -> None:
    form = casemap(s)
    assert casemap(form) == form
    assert unicodedata.is_normalized("NFKD", form)


@given(st.text())
def test_extraction_is_idempotent(s: str) -> None:
    once = extract_base_subject(s)
    assert extract_base_subject(once) == once
