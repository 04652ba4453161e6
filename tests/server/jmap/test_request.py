"""The Request parser (RFC 8620 sections 3.3 and 3.6.1): bytes in, a Request or a
request-level error out, and nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.jmap.errors import RequestError
from server.jmap.methods import CORE
from server.jmap.request import Invocation, Request, Response, parse_request

CAPS = frozenset({CORE, "urn:ietf:params:jmap:mail"})


def parse(raw: bytes | str, max_calls: int = 16) -> Request:
    data = raw.encode() if isinstance(raw, str) else raw
    return parse_request(data, capabilities=CAPS, max_calls=max_calls)


def test_rfc8620_section_3_3_1_example() -> None:
    request = parse(json.dumps({
        "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
        "methodCalls": [["method1", {"arg1": "arg1data", "arg2": "arg2data"}, "c1"],
                        ["method2", {"arg1": "arg1data"}, "c2"],
                        ["method3", {}, "c3"]]}))
    assert request.using == (CORE, "urn:ietf:params:jmap:mail")
    assert request.method_calls[0] == Invocation(
        "method1", {"arg1": "arg1data", "arg2": "arg2data"}, "c1")
    assert [c.call_id for c in request.method_calls] == ["c1", "c2", "c3"]
    assert request.created_ids is None


def test_created_ids_are_kept() -> None:
    request = parse('{"using": [], "methodCalls": [], "createdIds": {"k1": "M1"}}')
    assert request.created_ids == {"k1": "M1"}


@pytest.mark.parametrize(("raw", "kind"), [
    (b"", "notJSON"),
    (b"{", "notJSON"),
    (b"\xff\xfe{}", "notJSON"),                                  # not UTF-8
    ("\ufeff{}".encode(), "notJSON"),                             # byte order mark
    (b'{"using": [], "methodCalls": [], "x": NaN}', "notJSON"),  # not I-JSON
    (b'{"using": [], "using": [], "methodCalls": []}', "notJSON"),  # duplicate name
    (b'{"using": ["\\ud800"], "methodCalls": []}', "notJSON"),    # lone surrogate
    (b"[" * 100_000 + b"]" * 100_000, "notJSON"),                 # nesting
    (b'{"using": [], "methodCalls": [["a", {"x": ' + b"[" * 300 + b"]" * 300
     + b'}, "c"]]}', "notJSON"),                                  # nesting past 256
    (b'{"using": [], "methodCalls": [["a", {"x": 1e400}, "c"]]}', "notJSON"),  # inf
    (b"[]", "notRequest"),
    (b'"x"', "notRequest"),
    (b"{}", "notRequest"),
    (b'{"using": [], "methodCalls": {}}', "notRequest"),
    (b'{"using": "urn:ietf:params:jmap:core", "methodCalls": []}', "notRequest"),
    (b'{"using": [1], "methodCalls": []}', "notRequest"),
    (b'{"methodCalls": []}', "notRequest"),
    (b'{"using": [], "methodCalls": [["a", {}]]}', "notRequest"),
    (b'{"using": [], "methodCalls": [["a", [], "c"]]}', "notRequest"),
    (b'{"using": [], "methodCalls": [[1, {}, "c"]]}', "notRequest"),
    (b'{"using": [], "methodCalls": [["a", {}, 1]]}', "notRequest"),
    (b'{"using": [], "methodCalls": [], "createdIds": []}', "notRequest"),
    (b'{"using": [], "methodCalls": [], "createdIds": {"a": 1}}', "notRequest"),
    (b'{"using": ["urn:x:unknown"], "methodCalls": []}', "unknownCapability"),
])
def test_request_level_errors(raw: bytes, kind: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse(raw)
    assert caught.value.type == kind
    problem = caught.value.problem()
    assert problem["type"] == f"urn:ietf:params:jmap:error:{kind}"
    assert problem["status"] == 400


def test_too_many_calls_is_a_limit_problem_naming_the_limit() -> None:
    calls = [["Core/echo", {}, str(i)] for i in range(17)]
    with pytest.raises(RequestError) as caught:
        parse(json.dumps({"using": [CORE], "methodCalls": calls}), max_calls=16)
    assert caught.value.problem()["limit"] == "maxCallsInRequest"
    assert caught.value.type == "limit"
    assert len(parse(json.dumps({"using": [CORE], "methodCalls": calls[:16]}),
                     max_calls=16).method_calls) == 16


def test_response_serialises_created_ids_only_when_asked() -> None:
    calls = (Invocation("Core/echo", {"a": 1}, "c1"),)
    assert json.loads(Response(calls, "s1").to_bytes()) == {
        "methodResponses": [["Core/echo", {"a": 1}, "c1"]], "sessionState": "s1"}
    assert json.loads(Response(calls, "s1", {"k": "M1"}).to_bytes())["createdIds"] == {
        "k": "M1"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25)

request_like = st.fixed_dictionaries({}, optional={
    "using": st.lists(st.sampled_from([CORE, "urn:x"]) | st.integers(), max_size=3)
    | json_values,
    "methodCalls": st.lists(
        st.tuples(st.text(max_size=5) | json_values, json_values,
                  st.text(max_size=3) | json_values).map(list)
        | json_values, max_size=3) | json_values,
    "createdIds": st.dictionaries(st.text(max_size=3), st.text(max_size=3) | json_values,
                                  max_size=2) | json_values,
})


def _only_request_errors(raw: bytes) -> None:
    try:
        request = parse(raw)
    except RequestError as e:
        assert e.type in ("notJSON", "notRequest", "unknownCapability", "limit")
    else:
        assert isinstance(request, Request)


@given(st.binary(max_size=200))
def test_any_bytes_give_a_request_or_a_request_error(raw: bytes) -> None:
    _only_request_errors(raw)


@given(json_values)
def test_any_json_gives_a_request_or_a_request_error(value: Any) -> None:
    _only_request_errors(json.dumps(value).encode())


@given(request_like)
def test_request_shaped_json_gives_a_request_or_a_request_error(value: Any) -> None:
    _only_request_errors(json.dumps(value).encode())
