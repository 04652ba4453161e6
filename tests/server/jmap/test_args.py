"""The argument helpers the standard methods share (RFC 8620 section 5), each with the
error the RFC names."""

from __future__ import annotations

from typing import Any

import pytest

from server.directory.base import Principal
from server.jmap.args import (
    check_get_all,
    check_known,
    check_set_size,
    check_state,
    check_too_many,
    from_account_arg,
    ids_arg,
    int_arg,
    is_id,
    max_changes_arg,
    pick,
    properties_arg,
    string_arg,
)
from server.jmap.errors import MethodError
from server.jmap.methods import CORE, Account, CallContext, Limits

LIMITS = Limits(max_size_upload=1000, max_concurrent_upload=1, max_size_request=1000,
                max_concurrent_requests=1, max_calls_in_request=4, max_objects_in_get=3,
                max_objects_in_set=3)


def ctx(created: dict[str, str] | None = None) -> CallContext:
    alice = Principal("alice", "alice", "individual", ("alice@example.com",))
    account = Account("alice", "alice@example.com", capabilities={CORE: {}})
    return CallContext(alice, {"alice": account}, frozenset({CORE}), LIMITS, "s", "c",
                       "Foo/get", CORE, created if created is not None else {})


def error_of(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(MethodError) as caught:
        fn(*args, **kwargs)
    return caught.value.type


def test_ids() -> None:
    c = ctx({"k1": "M1"})
    assert ids_arg(c, {}) is None
    assert ids_arg(c, {"ids": None}) is None
    assert ids_arg(c, {"ids": ["a", "#k1", "#k9"]}) == ["a", "M1", "#k9"]
    assert ids_arg(c, {"ids": ["a", "b", "a"]}) == ["a", "b"]  # each id once
    assert error_of(ids_arg, c, {"ids": ["a", "b", "c", "d"]}) == "requestTooLarge"
    assert ids_arg(c, {"ids": ["a", "b", "c", "d"]}, limit=10) == ["a", "b", "c", "d"]
    for bad in ("a", [1], {"a": 1}, True):
        assert error_of(ids_arg, c, {"ids": bad}) == "invalidArguments"


def test_id_syntax() -> None:
    assert is_id("Ma-b_9")
    assert not is_id("") and not is_id("a b") and not is_id("x" * 256) and not is_id("é")


def test_properties_always_include_id_and_refuse_unknown_names() -> None:
    supported = ("id", "name", "role")
    assert properties_arg({}, supported, ("name",)) == ("id", "name")
    assert properties_arg({"properties": None}, supported, supported) == supported
    assert properties_arg({"properties": ["role"]}, supported, ()) == ("id", "role")
    assert properties_arg({"properties": []}, supported, supported) == ("id",)
    assert error_of(properties_arg, {"properties": ["nope"]}, supported, ()) \
        == "invalidArguments"
    assert error_of(properties_arg, {"properties": "name"}, supported, ()) \
        == "invalidArguments"
    assert pick({"id": "1", "name": "n", "role": None}, ("id", "role")) == {
        "id": "1", "role": None}


def test_if_in_state() -> None:
    check_state({}, "s5")
    check_state({"ifInState": None}, "s5")
    check_state({"ifInState": "s5"}, "s5")
    assert error_of(check_state, {"ifInState": "s4"}, "s5") == "stateMismatch"
    assert error_of(check_state, {"ifInState": 4}, "s5") == "invalidArguments"


def test_max_changes_and_too_many_changes() -> None:
    assert max_changes_arg({}) is None
    assert max_changes_arg({"maxChanges": 5}) == 5
    for bad in (0, -1, "5", 1.5, True, 2**53):
        assert error_of(max_changes_arg, {"maxChanges": bad}) == "invalidArguments"
    check_too_many(5, 5)
    check_too_many(500, None)
    assert error_of(check_too_many, 6, 5) == "tooManyChanges"


def test_set_size() -> None:
    c = ctx()
    check_set_size(c, {"create": {"a": {}}, "update": {"b": {}}, "destroy": ["c"]})
    assert error_of(check_set_size, c, {"create": {"a": {}, "b": {}}, "destroy": ["c", "d"]}
                    ) == "requestTooLarge"


def test_scalars_and_unknown_arguments() -> None:
    assert int_arg({"n": 3.0}, "n") == 3
    assert int_arg({}, "n", 7) == 7
    assert error_of(int_arg, {"n": -1}, "n", minimum=0) == "invalidArguments"
    assert string_arg({"s": "x"}, "s") == "x"
    assert error_of(string_arg, {}, "s", required=True) == "invalidArguments"
    check_known({"accountId": "a"}, ("accountId", "ids"))
    assert error_of(check_known, {"accountId": "a", "bogus": 1}, ("accountId",)) \
        == "invalidArguments"


def test_all_ids_within_max_objects_in_get() -> None:
    check_get_all(ctx(), 3)
    assert error_of(check_get_all, ctx(), 4) == "requestTooLarge"


def test_copy_from_account_errors_have_their_own_names() -> None:
    c = ctx()
    assert from_account_arg(c, {"fromAccountId": "alice"}).id == "alice"
    assert error_of(from_account_arg, c, {"fromAccountId": "bob"}) == "fromAccountNotFound"
    assert error_of(from_account_arg, c, {}) == "invalidArguments"
    other = CallContext(c.principal, c.accounts, c.using, c.limits, "s", "c", "Foo/copy",
                        "urn:x", {})
    assert error_of(from_account_arg, other, {"fromAccountId": "alice"}) \
        == "fromAccountNotSupportedByMethod"
