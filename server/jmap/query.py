"""/query arguments (RFC 8620 section 5.5): the filter tree, the sort comparators and the
window (position / anchor / anchorOffset / limit) over a result list.  A /query method
parses its arguments with these and runs its own search."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from .args import bool_arg, int_arg, string_arg
from .errors import MethodError, invalid_arguments
from .json import JsonObject, JsonValue

# RFC 4790 collations we implement; advertised as the core capability's
# collationAlgorithms (RFC 8620 section 2).
COLLATIONS = ("i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap")
DEFAULT_COLLATION = "i;unicode-casemap"
OPERATORS = ("AND", "OR", "NOT")


@dataclass(frozen=True, slots=True)
class Comparator:
    property: str
    is_ascending: bool = True
    collation: str = DEFAULT_COLLATION
    keyword: str | None = None  # RFC 8621 hasKeyword & co. carry one


@dataclass(frozen=True, slots=True)
class FilterOperator:
    operator: str
    conditions: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class FilterCondition:
    condition: JsonObject


Filter: TypeAlias = "FilterOperator | FilterCondition"


def evaluate(tree: Filter | None, matches: Callable[[JsonObject], bool]) -> bool:
    """Whether an object passes a filter tree (RFC 8620 5.5), given a test of one
    condition against it; no filter passes everything."""
    if tree is None:
        return True
    if isinstance(tree, FilterCondition):
        return matches(tree.condition)
    results = [evaluate(sub, matches) for sub in tree.conditions]
    if tree.operator == "AND":
        return all(results)
    if tree.operator == "OR":
        return any(results)
    return not any(results)

ConditionCheck = Callable[[JsonObject], None]
"""Checks one FilterCondition: raises ``unsupportedFilter`` (or invalidArguments) for one
the method cannot run."""


def filter_arg(args: JsonObject, check: ConditionCheck, *, max_depth: int = 32
               ) -> Filter | None:
    """``filter: FilterOperator|FilterCondition|null``."""
    value = args.get("filter")
    if value is None:
        return None
    return _filter(value, check, max_depth)


def _filter(value: JsonValue, check: ConditionCheck, depth: int) -> Filter:
    if not isinstance(value, dict):
        raise invalid_arguments("a filter must be an object")
    if depth <= 0:
        raise MethodError("unsupportedFilter", "the filter is nested too deeply")
    if "operator" not in value:
        check(value)
        return FilterCondition(value)
    operator, conditions = value.get("operator"), value.get("conditions")
    if set(value) != {"operator", "conditions"} or operator not in OPERATORS \
            or not isinstance(operator, str) or not isinstance(conditions, list):
        raise invalid_arguments("a FilterOperator is {operator: AND|OR|NOT, "
                                "conditions: [Filter]}")
    return FilterOperator(operator, tuple(_filter(c, check, depth - 1) for c in conditions))


def unsupported_filter(description: str) -> MethodError:
    return MethodError("unsupportedFilter", description)


def sort_arg(args: JsonObject, properties: Collection[str], *,
             keyword_properties: Collection[str] = ()) -> tuple[Comparator, ...]:
    """``sort: Comparator[]|null``: a property not in ``properties`` or a collation we do
    not implement is ``unsupportedSort``."""
    value = args.get("sort")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid_arguments("'sort' must be an array of Comparators")
    out: list[Comparator] = []
    for item in value:
        if not isinstance(item, dict):
            raise invalid_arguments("a Comparator must be an object")
        prop = string_arg(item, "property", required=True)
        assert prop is not None
        ascending = bool_arg(item, "isAscending", True)
        collation = string_arg(item, "collation", default=DEFAULT_COLLATION)
        assert collation is not None
        keyword = string_arg(item, "keyword")
        if prop not in properties:
            raise MethodError("unsupportedSort", f"cannot sort by {prop!r}")
        if collation not in COLLATIONS:
            raise MethodError("unsupportedSort", f"unknown collation {collation!r}")
        if prop in keyword_properties and keyword is None:
            raise invalid_arguments(f"sorting by {prop!r} needs a 'keyword'")
        out.append(Comparator(prop, ascending, collation, keyword))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Window:
    position: int
    anchor: str | None
    anchor_offset: int
    limit: int | None
    calculate_total: bool


def window_arg(args: JsonObject) -> Window:
    """position / anchor / anchorOffset / limit / calculateTotal of a /query call."""
    limit = int_arg(args, "limit", minimum=0)
    anchor = string_arg(args, "anchor")
    return Window(int_arg(args, "position", 0) or 0, anchor,
                  int_arg(args, "anchorOffset", 0) or 0, limit,
                  bool_arg(args, "calculateTotal"))


def apply_window(ids: Sequence[str], window: Window, max_limit: int
                 ) -> tuple[int, list[str], int | None]:
    """The slice of ``ids`` the window names (RFC 8620 section 5.5): the start position,
    the ids, and the limit used when the client asked for more than ``max_limit`` (None
    otherwise; section 5.5: the response then includes it).

    With an anchor, ``position`` is ignored and the window starts ``anchorOffset`` from
    the anchor (clamped to 0): ``anchorNotFound`` when the anchor is not in ``ids``.
    A negative position counts from the end (clamped to 0)."""
    total = len(ids)
    if window.anchor is not None:
        try:
            start = ids.index(window.anchor) + window.anchor_offset
        except ValueError:
            raise MethodError("anchorNotFound") from None
    else:
        start = window.position + total if window.position < 0 else window.position
    start = max(0, start)
    limit, capped = window.limit, None
    if limit is None:
        limit = max_limit
    elif limit > max_limit:  # the response then says which limit was used
        limit = capped = max_limit
    return start, list(ids[start:start + limit]), capped
