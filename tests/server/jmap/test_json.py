"""The JSON a response is written as (server/jmap/json.py ``encode``): I-JSON (RFC 7493,
which RFC 8620 section 1.5 requires), UTF-8 (RFC 8259 section 8.1), the value given,
whichever encoder wrote it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.jmap.json import NotJson, decode, encode

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                max_size=4),
    max_leaves=20)


@given(values)
def test_encode_gives_the_value_back(value: Any) -> None:
    """Any JSON value, integers past 64 bits and every character included, is written as
    UTF-8 I-JSON text that reads back as itself, with members in their order."""
    text = encode(value)
    assert json.loads(text.decode("utf-8")) == value
    if isinstance(value, dict):
        assert list(json.loads(text)) == list(value)
    assert decode(text) == value


def test_a_lone_surrogate_becomes_a_question_mark() -> None:
    """A string from undecodable bytes may hold a lone surrogate, which UTF-8 (and so
    I-JSON, RFC 7493 section 2.1) cannot carry: it is written as "?"."""
    assert json.loads(encode({"subject": "a\udcffb", "n": [1, "\ud800"]})) == {
        "subject": "a?b", "n": [1, "?"]}


def test_the_text_is_compact_utf8() -> None:
    assert encode({"name": "Réunion", "list": [1, None, True]}) == \
        '{"name":"Réunion","list":[1,null,true]}'.encode()


def test_decode_refuses_lone_surrogates_and_deep_nesting_wherever_they_are() -> None:
    """RFC 7493 section 2.1: no unpaired surrogate, in a string or a member name (only a
    \\u escape can make one); nesting up to MAX_DEPTH (256) levels and no deeper."""
    for raw in (b'{"a": "\\ud800"}', b'{"\\udfff": 1}', b'[["x", {"k": ["\\uDBFF"]}]]',
                b"[" * 257 + b"]" * 257, b'{"a": ' * 257 + b"1" + b"}" * 257):
        with pytest.raises(NotJson):
            decode(raw)
    assert decode(b"[" * 256 + b"]" * 256) is not None
    assert decode(b'{"a": "\\u00e9\\ud83d\\ude00", "b": "[{"}') == {"a": "\u00e9\U0001f600",
                                                                   "b": "[{"}
