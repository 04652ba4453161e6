"""/query arguments (RFC 8620 section 5.5): filters, sort, and the result window."""

from __future__ import annotations

from typing import Any

import pytest

from server.jmap.errors import MethodError
from server.jmap.query import (
    Comparator,
    FilterCondition,
    FilterOperator,
    Window,
    apply_window,
    filter_arg,
    sort_arg,
    unsupported_filter,
    window_arg,
)

IDS = [f"m{i}" for i in range(10)]


def _check(condition: dict[str, Any]) -> None:
    if set(condition) - {"text", "inMailbox"}:
        raise unsupported_filter(f"cannot filter on {sorted(condition)}")


def error_of(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(MethodError) as caught:
        fn(*args, **kwargs)
    return caught.value.type


def test_filter_tree() -> None:
    assert filter_arg({}, _check) is None
    assert filter_arg({"filter": {"text": "x"}}, _check) == FilterCondition({"text": "x"})
    tree: Any = {"operator": "AND", "conditions": [
        {"text": "a"}, {"operator": "NOT", "conditions": [{"inMailbox": "b"}]}]}
    assert filter_arg({"filter": tree}, _check) == FilterOperator("AND", (
        FilterCondition({"text": "a"}),
        FilterOperator("NOT", (FilterCondition({"inMailbox": "b"}),))))


@pytest.mark.parametrize(("value", "kind"), [
    ({"color": "red"}, "unsupportedFilter"),
    ({"operator": "OR", "conditions": [{"text": "a"}, {"size": 1}]}, "unsupportedFilter"),
    ({"operator": "XOR", "conditions": []}, "invalidArguments"),
    ({"operator": "AND"}, "invalidArguments"),
    ({"operator": "AND", "conditions": {}}, "invalidArguments"),
    ("text", "invalidArguments"),
    ({"operator": "AND", "conditions": ["x"]}, "invalidArguments"),
])
def test_bad_filters(value: Any, kind: str) -> None:
    assert error_of(filter_arg, {"filter": value}, _check) == kind


def test_too_deep_a_filter_is_unsupported() -> None:
    deep: Any = {"text": "x"}
    for _ in range(40):
        deep = {"operator": "NOT", "conditions": [deep]}
    assert error_of(filter_arg, {"filter": deep}, _check) == "unsupportedFilter"


def test_sort() -> None:
    assert sort_arg({}, ("receivedAt",)) == ()
    assert sort_arg({"sort": [{"property": "receivedAt", "isAscending": False}]},
                    ("receivedAt",)) == (Comparator("receivedAt", False),)
    assert sort_arg({"sort": [{"property": "subject", "collation": "i;ascii-casemap"}]},
                    ("subject",))[0].collation == "i;ascii-casemap"
    assert error_of(sort_arg, {"sort": [{"property": "size"}]}, ("receivedAt",)) \
        == "unsupportedSort"
    assert error_of(sort_arg, {"sort": [{"property": "subject", "collation": "i;octet"}]},
                    ("subject",)) == "unsupportedSort"
    assert error_of(sort_arg, {"sort": [{"isAscending": True}]}, ("subject",)) \
        == "invalidArguments"
    assert error_of(sort_arg, {"sort": {"property": "subject"}}, ("subject",)) \
        == "invalidArguments"
    assert error_of(sort_arg, {"sort": [{"property": "hasKeyword"}]}, ("hasKeyword",),
                    keyword_properties=("hasKeyword",)) == "invalidArguments"


def w(**kwargs: Any) -> Window:
    return window_arg(kwargs)


@pytest.mark.parametrize(("window", "start", "ids"), [
    (w(), 0, IDS[:4]),
    (w(position=3, limit=2), 3, ["m3", "m4"]),
    (w(position=-3), 7, ["m7", "m8", "m9"]),        # counts from the end
    (w(position=-30, limit=2), 0, ["m0", "m1"]),     # clamped to 0
    (w(position=20), 20, []),                         # past the end: empty
    (w(anchor="m5", position=9), 5, IDS[5:9]),        # position ignored with an anchor
    (w(anchor="m5", anchorOffset=-2, limit=3), 3, ["m3", "m4", "m5"]),
    (w(anchor="m1", anchorOffset=-5, limit=2), 0, ["m0", "m1"]),  # clamped to 0
    (w(anchor="m8", anchorOffset=1), 9, ["m9"]),
    (w(limit=0), 0, []),
])
def test_window(window: Window, start: int, ids: list[str]) -> None:
    assert apply_window(IDS, window, 4)[:2] == (start, ids)


def test_window_reports_a_capped_limit_and_a_missing_anchor() -> None:
    assert apply_window(IDS, w(limit=50), 4)[2] == 4
    assert apply_window(IDS, w(limit=3), 4)[2] is None
    assert apply_window(IDS, w(), 4)[2] is None
    assert error_of(apply_window, IDS, w(anchor="nope"), 4) == "anchorNotFound"
    assert error_of(window_arg, {"limit": -1}) == "invalidArguments"
    assert error_of(window_arg, {"position": "1"}) == "invalidArguments"
    assert w(calculateTotal=True).calculate_total
