"""RFC 4515 escaping: no value changes a filter's structure (checked with ldap3's own filter
parser and encoder, which build what goes on the wire)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ldap3.operation.search import (
    MATCH_EQUAL,
    MATCH_SUBSTRING,
    ROOT,
    AND,
    parse_filter,
)
from ldap3.protocol.convert import prepare_filter_for_sending

from server.directory.ldapfilter import escape_filter_value, fill_filter, unescape_filter_value


def _parse(text: str):  # type: ignore[no-untyped-def]
    return parse_filter(text, None, auto_escape=False, auto_encode=False, validator=None,
                        check_names=False)


@pytest.mark.parametrize(("value", "escaped"), [
    ("alice", "alice"),
    ("*", "\\2a"),
    ("*)(uid=*", "\\2a\\29\\28uid=\\2a"),
    ("a\\b", "a\\5cb"),
    ("nul\x00", "nul\\00"),
    ("x)(|(objectClass=*", "x\\29\\28|\\28objectClass=\\2a"),
    ("sp ace", "sp\\20ace"),
    ("é", "é"),
])
def test_escape_examples(value: str, escaped: str) -> None:
    assert escape_filter_value(value) == escaped
    assert unescape_filter_value(escaped) == value.encode()


def test_rfc4515_section4_example_value() -> None:
    # RFC 4515 section 4: (o=Parens R Us \28for all your parenthetical needs\29)
    value = "Parens R Us (for all your parenthetical needs)"
    node = _parse(fill_filter("(o=?)", value)).elements[0]
    assert node.tag == MATCH_EQUAL
    assert prepare_filter_for_sending(node.assertion["value"]) == value.encode()


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError):
        escape_filter_value("bad\ud800")


@given(st.text())
@example("*)(uid=*")
@example("\x00")
@example("\\")
@example("\\2a")
@example(" leading and trailing ")
@example("a>=b")
def test_equality_filter_keeps_its_structure(value: str) -> None:
    root = _parse(fill_filter("(&(objectClass=person)(uid=?))", value))
    assert root.tag == ROOT and len(root.elements) == 1
    conj = root.elements[0]
    assert conj.tag == AND and len(conj.elements) == 2
    cls, uid = conj.elements
    assert cls.tag == MATCH_EQUAL and cls.assertion["attr"] == "objectClass"
    assert uid.tag == MATCH_EQUAL and uid.assertion["attr"] == "uid"
    assert prepare_filter_for_sending(uid.assertion["value"]) == value.encode("utf-8")


@given(st.text())
def test_substring_filter_keeps_its_structure(value: str) -> None:
    root = _parse(fill_filter("(mail=*@?)", value))
    node = root.elements[0]
    assert node.tag == MATCH_SUBSTRING and node.assertion["attr"] == "mail"
    assert "initial" not in node.assertion and "any" not in node.assertion
    assert prepare_filter_for_sending(node.assertion["final"]) == b"@" + value.encode("utf-8")


@given(st.text())
def test_escaped_value_has_no_filter_metacharacters(value: str) -> None:
    escaped = escape_filter_value(value)
    assert not set(escaped) & set("*()\x00")
    assert unescape_filter_value(escaped) == value.encode("utf-8")
