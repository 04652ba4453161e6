"""JSON Pointer (RFC 6901) with JMAP's ``*`` (RFC 8620 section 3.7)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.jmap.pointer import PointerError, escape_token, parse_pointer, resolve_pointer

# RFC 6901 section 5: the example document and every pointer of its table.
DOC: dict[str, Any] = {
    "foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5,
    "k\"l": 6, " ": 7, "m~n": 8,
}
RFC6901 = [
    ("", DOC), ("/foo", ["bar", "baz"]), ("/foo/0", "bar"), ("/", 0), ("/a~1b", 1),
    ("/c%d", 2), ("/e^f", 3), ("/g|h", 4), ("/i\\j", 5), ("/k\"l", 6), ("/ ", 7),
    ("/m~0n", 8),
]


@pytest.mark.parametrize(("pointer", "expected"), RFC6901)
def test_rfc6901_section5_examples(pointer: str, expected: Any) -> None:
    assert resolve_pointer(DOC, pointer) == expected


def test_star_maps_over_an_array_and_flattens_arrays() -> None:
    # RFC 8620 section 3.7: results that are arrays are spliced into the output
    value: Any = {"list": [{"id": "a", "ids": ["1", "2"]}, {"id": "b", "ids": ["3"]},
                      {"id": "c", "ids": []}]}
    assert resolve_pointer(value, "/list/*/id") == ["a", "b", "c"]
    assert resolve_pointer(value, "/list/*/ids") == ["1", "2", "3"]
    # `*` as the last token returns the items; arrays among them are flattened
    assert resolve_pointer({"a": [[1, 2], 3]}, "/a/*") == [1, 2, 3]
    assert resolve_pointer({"a": []}, "/a/*/x") == []
    assert resolve_pointer({"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": [{"c": 3}]}]},
                           "/a/*/b/*/c") == [1, 2, 3]


def test_star_is_a_plain_member_name_in_an_object() -> None:
    assert resolve_pointer({"*": 5}, "/*") == 5


@pytest.mark.parametrize(("value", "pointer"), [
    ({"a": 1}, "a"),              # no leading slash
    ({"a": 1}, "/b"),             # no such member
    ({"a": [1]}, "/a/1"),         # past the end
    ({"a": [1]}, "/a/-"),         # "-" names the element after the last
    ({"a": [1, 2]}, "/a/01"),     # leading zero
    ({"a": [1]}, "/a/x"),         # not an index
    ({"a": [1]}, "/a/+0"),
    ({"a": [1]}, "/a/\u0661"),    # a non-ASCII digit
    ({"a": 1}, "/a/b"),           # into a number
    ({"a": "s"}, "/a/0"),         # into a string
    ({"a": None}, "/a/*"),        # `*` on null
    ({"a": {"b": 1}}, "/a/*"),    # `*` on an object without such a member
    ({"a~b": 1}, "/a~b"),         # "~" not followed by 0 or 1
    ({"a": 1}, "/a~"),
    ({"a": [{"b": 1}, {}]}, "/a/*/b"),  # one item lacks the member
])
def test_failures_raise_pointer_error(value: Any, pointer: str) -> None:
    with pytest.raises(PointerError):
        resolve_pointer(value, pointer)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20)


@given(st.lists(st.text(max_size=6), max_size=5))
def test_escape_round_trip(tokens: list[str]) -> None:
    pointer = "".join("/" + escape_token(t) for t in tokens)
    assert parse_pointer(pointer) == tuple(tokens)


@given(json_values, st.text(max_size=20))
def test_any_pointer_on_any_value_resolves_or_raises_pointer_error(value: Any,
                                                                     pointer: str) -> None:
    try:
        resolve_pointer(value, pointer)
    except PointerError:
        pass


def _paths(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = [(prefix, value)]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, f"{prefix}/{escape_token(k)}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, f"{prefix}/{i}")
    return out


@given(json_values)
def test_every_path_of_a_value_resolves_to_what_it_names(value: Any) -> None:
    for pointer, expected in _paths(value):
        assert resolve_pointer(value, pointer) == expected


@given(st.lists(st.dictionaries(st.sampled_from(["x", "y"]), json_values, min_size=2),
                max_size=5))
def test_star_equals_resolving_each_item(items: list[dict[str, Any]]) -> None:
    expected: list[Any] = []
    for item in items:
        got = item["x"]
        expected.extend(got if isinstance(got, list) else [got])
    value: Any = {"list": items}
    assert resolve_pointer(value, "/list/*/x") == expected
