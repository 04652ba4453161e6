"""The API endpoint (RFC 8620 section 3): dispatch, per-call errors, result references
and created ids, through HTTP against the real directory."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest

from server.directory.base import DirectoryError
from server.jmap.errors import MethodError
from server.jmap.methods import CORE
from tests.support.metrics import assert_promtool_accepts
from tests.server.jmap.conftest import JSON, TEST_CAPABILITY, Fixed, Jmap, call, error_type

USING = [CORE, TEST_CAPABILITY]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_core_echo_returns_its_arguments(jmap: Jmap) -> None:
    args = {"hello": True, "high": 5, "nested": {"a": [1, "x", None]}, "ü": "ß"}
    async with jmap.client() as c:
        response = await call(c, ["Core/echo", args, "b3ff"])
    assert response["methodResponses"] == [["Core/echo", args, "b3ff"]]
    assert isinstance(response["sessionState"], str) and response["sessionState"]
    assert "createdIds" not in response


async def test_calls_run_in_order_and_keep_their_call_ids(jmap: Jmap) -> None:
    async with jmap.client() as c:
        response = await call(c, *[["Core/echo", {"n": i}, f"c{i}"] for i in range(5)])
    assert response["methodResponses"] == [["Core/echo", {"n": i}, f"c{i}"]
                                           for i in range(5)]


async def test_unknown_method_and_method_outside_using(jmap: Jmap) -> None:
    app = jmap.app(jmap.registry(Fixed("Test/get")))
    before = metric("fdbmail_jmap_method_calls_total", method="unknown",
                    result="unknownMethod")
    async with jmap.client(app) as c:
        response = await call(c, ["Foo/bar", {}, "a"], ["Test/get", {}, "b"],
                              ["Core/echo", {"still": "runs"}, "c"])
    assert error_type(response, 0) == "unknownMethod"
    assert error_type(response, 1) == "unknownMethod"  # its capability is not in using
    assert response["methodResponses"][2] == ["Core/echo", {"still": "runs"}, "c"]
    assert [r[2] for r in response["methodResponses"]] == ["a", "b", "c"]
    # any unregistered name is counted under one label
    assert metric("fdbmail_jmap_method_calls_total", method="unknown",
                  result="unknownMethod") == before + 1
    assert metric("fdbmail_jmap_method_calls_total", method="Test/get",
                  result="unknownMethod") >= 1


@pytest.mark.parametrize("kind", [
    "forbidden", "serverPartialFail", "accountReadOnly", "stateMismatch", "requestTooLarge",
    "cannotCalculateChanges", "anchorNotFound", "unsupportedFilter", "unsupportedSort",
    "tooManyChanges", "serverUnavailable", "invalidArguments", "accountNotFound",
])
async def test_method_errors_become_error_responses(jmap: Jmap, kind: str) -> None:
    def fail(ctx: Any, args: Any) -> Any:
        raise MethodError(kind, "told to")
    app = jmap.app(jmap.registry(Fixed("Test/fail", fn=fail)))
    async with jmap.client(app) as c:
        response = await call(c, ["Test/fail", {}, "x"], ["Core/echo", {}, "y"],
                              using=USING)
    assert response["methodResponses"][0] == ["error", {"type": kind,
                                                        "description": "told to"}, "x"]
    assert response["methodResponses"][1] == ["Core/echo", {}, "y"]


async def test_a_bug_is_server_fail_logged_with_its_traceback(
        jmap: Jmap, caplog: pytest.LogCaptureFixture) -> None:
    def boom(ctx: Any, args: Any) -> Any:
        raise ZeroDivisionError("a bug")
    app = jmap.app(jmap.registry(Fixed("Test/boom", fn=boom)))
    async with jmap.client(app) as c:
        response = await call(c, ["Test/boom", {}, "x"], ["Core/echo", {"a": 1}, "y"],
                              using=USING)
    assert error_type(response) == "serverFail"
    assert "a bug" not in str(response)  # the client sees no internals
    assert response["methodResponses"][1] == ["Core/echo", {"a": 1}, "y"]
    failed = [r for r in caplog.records if r.exc_info and r.exc_info[0] is ZeroDivisionError]
    assert failed, "the traceback is logged"
    assert failed[0].__dict__["call_id"] == "x"


async def test_a_string_json_cannot_carry_is_replaced_not_a_500(jmap: Jmap) -> None:
    def undecodable(ctx: Any, args: Any) -> Any:
        return {"subject": "caf\udce9"}  # what surrogateescape makes of a Latin-1 byte
    app = jmap.app(jmap.registry(Fixed("Test/get", fn=undecodable)))
    async with jmap.client(app) as c:
        response = await call(c, ["Test/get", {}, "x"], using=USING)
    assert response["methodResponses"][0][1] == {"subject": "caf?"}


async def test_a_directory_outage_inside_a_method_is_server_unavailable(jmap: Jmap) -> None:
    def down(ctx: Any, args: Any) -> Any:
        raise DirectoryError("ldap down")
    app = jmap.app(jmap.registry(Fixed("Test/down", fn=down)))
    async with jmap.client(app) as c:
        response = await call(c, ["Test/down", {}, "x"], using=USING)
    assert error_type(response) == "serverUnavailable"


async def test_a_method_may_answer_with_several_responses(jmap: Jmap) -> None:
    def two(ctx: Any, args: Any) -> Any:
        return (("Test/copy", {"a": 1}), ("Test/set", {"b": 2}))
    app = jmap.app(jmap.registry(Fixed("Test/copy", fn=two)))
    async with jmap.client(app) as c:
        response = await call(c, ["Test/copy", {}, "k"], using=USING)
    assert response["methodResponses"] == [["Test/copy", {"a": 1}, "k"],
                                           ["Test/set", {"b": 2}, "k"]]


# -- result references (section 3.7) --------------------------------------------------

async def test_rfc8620_section_3_7_example(jmap: Jmap) -> None:
    """The four-call example of section 3.7: query, then get threadIds, then threads,
    then every email of those threads, each call's ids taken from the one before."""
    query = Fixed("Email/query", {"accountId": "ue150411c", "queryState": "09aa9a",
                                  "canCalculateChanges": True, "position": 0,
                                  "total": 101, "ids": ["Msg1023", "Msg223", "Msg110"]})
    get = Fixed("Email/get", {"accountId": "ue150411c", "state": "^234", "notFound": [],
                              "list": [{"id": "Msg1023", "threadId": "Trd194"},
                                       {"id": "Msg223", "threadId": "Trd114"},
                                       {"id": "Msg110", "threadId": "Trd194"}]})
    threads = Fixed("Thread/get", {"accountId": "ue150411c", "state": "123456",
                                   "notFound": [],
                                   "list": [{"id": "Trd194",
                                             "emailIds": ["Msg1020", "Msg1021", "Msg1023"]},
                                            {"id": "Trd114",
                                             "emailIds": ["Msg201", "Msg223"]}]})

    def second_get(ctx: Any, args: Any) -> Any:
        return get.result if len(get.seen) == 1 else {"list": [], "notFound": args["ids"]}
    get.fn = second_get
    app = jmap.app(jmap.registry(query, get, threads))

    def ref(result_of: str, name: str, path: str) -> dict[str, str]:
        return {"resultOf": result_of, "name": name, "path": path}
    async with jmap.client(app) as c:
        response = await call(
            c,
            ["Email/query", {"accountId": "ue150411c", "filter": {"inMailbox": "id_inbox"},
                             "sort": [{"property": "receivedAt", "isAscending": False}],
                             "collapseThreads": True, "position": 0, "limit": 10,
                             "calculateTotal": True}, "t0"],
            ["Email/get", {"accountId": "ue150411c",
                           "#ids": ref("t0", "Email/query", "/ids"),
                           "properties": ["threadId"]}, "t1"],
            ["Thread/get", {"accountId": "ue150411c",
                            "#ids": ref("t1", "Email/get", "/list/*/threadId")}, "t2"],
            ["Email/get", {"accountId": "ue150411c",
                           "#ids": ref("t2", "Thread/get", "/list/*/emailIds"),
                           "properties": ["from", "receivedAt", "subject"]}, "t3"],
            using=USING)
    assert get.seen[0] == {"accountId": "ue150411c", "ids": ["Msg1023", "Msg223", "Msg110"],
                           "properties": ["threadId"]}
    assert threads.seen[0]["ids"] == ["Trd194", "Trd114", "Trd194"]
    assert get.seen[1]["ids"] == ["Msg1020", "Msg1021", "Msg1023", "Msg201", "Msg223"]
    assert [r[0] for r in response["methodResponses"]] == [
        "Email/query", "Email/get", "Thread/get", "Email/get"]


@pytest.mark.parametrize("reference", [
    {"resultOf": "nope", "name": "Core/echo", "path": "/a"},       # no such call id
    {"resultOf": "c1", "name": "Foo/get", "path": "/a"},           # another name
    {"resultOf": "c1", "name": "Core/echo", "path": "/missing"},   # path names nothing
    {"resultOf": "c1", "name": "Core/echo", "path": "a"},          # not a pointer
    {"resultOf": "c1", "name": "Core/echo", "path": "/a/5"},       # past the end
    {"resultOf": "c1", "name": "Core/echo", "path": "/a/~2"},      # bad escape
    {"resultOf": "c1", "name": "Core/echo"},                       # no path
    {"resultOf": "c1", "name": "Core/echo", "path": "/a", "x": 1},  # extra member
    {"resultOf": "c1", "name": "Core/echo", "path": 5},            # wrong type
    "c1",                                                          # not an object
])
async def test_bad_result_references_are_invalid_result_reference(
        jmap: Jmap, reference: Any) -> None:
    async with jmap.client() as c:
        response = await call(c, ["Core/echo", {"a": [1, 2]}, "c1"],
                              ["Core/echo", {"#b": reference}, "c2"])
    assert error_type(response, 1) == "invalidResultReference"


async def test_a_reference_to_a_later_call_or_to_an_error_fails(jmap: Jmap) -> None:
    async with jmap.client() as c:
        response = await call(
            c, ["Core/echo", {"#b": {"resultOf": "c2", "name": "Core/echo", "path": ""}},
                "c1"],
            ["Core/echo", {"a": 1}, "c2"],
            ["Nope/nope", {}, "c3"],
            ["Core/echo", {"#b": {"resultOf": "c3", "name": "Nope/nope", "path": ""}},
             "c4"])
    assert error_type(response, 0) == "invalidResultReference"
    assert error_type(response, 3) == "invalidResultReference"  # c3 is an "error"


async def test_the_first_response_with_the_call_id_is_used(jmap: Jmap) -> None:
    async with jmap.client() as c:
        response = await call(
            c, ["Core/echo", {"v": 1}, "dup"], ["Core/echo", {"v": 2}, "dup"],
            ["Core/echo", {"#v": {"resultOf": "dup", "name": "Core/echo", "path": "/v"}},
             "r"])
    assert response["methodResponses"][2] == ["Core/echo", {"v": 1}, "r"]


async def test_an_argument_both_plain_and_referenced_is_invalid_arguments(
        jmap: Jmap) -> None:
    async with jmap.client() as c:
        response = await call(
            c, ["Core/echo", {"a": 1}, "c1"],
            ["Core/echo", {"a": 2, "#a": {"resultOf": "c1", "name": "Core/echo",
                                          "path": "/a"}}, "c2"])
    assert error_type(response, 1) == "invalidArguments"


async def test_a_whole_response_and_star_paths_resolve(jmap: Jmap) -> None:
    async with jmap.client() as c:
        response = await call(
            c, ["Core/echo", {"list": [{"ids": ["a", "b"]}, {"ids": ["c"]}]}, "c1"],
            ["Core/echo", {"#all": {"resultOf": "c1", "name": "Core/echo", "path": ""},
                           "#ids": {"resultOf": "c1", "name": "Core/echo",
                                    "path": "/list/*/ids"}}, "c2"])
    assert response["methodResponses"][1][1] == {
        "all": {"list": [{"ids": ["a", "b"]}, {"ids": ["c"]}]}, "ids": ["a", "b", "c"]}


# -- created ids (sections 3.3 and 5.3) -------------------------------------------------

def _creating(ctx: Any, args: Any) -> Any:
    created = {}
    for creation_id in args.get("create", {}):
        new_id = f"M{len(ctx.created_ids) + 1}"
        ctx.record_created(creation_id, new_id)
        created[creation_id] = {"id": new_id}
    return {"created": created}


def _getting(ctx: Any, args: Any) -> Any:
    from server.jmap.args import ids_arg
    ids = ids_arg(ctx, args) or []
    return {"list": [{"id": i} for i in ids if not i.startswith("#")],
            "notFound": [i for i in ids if i.startswith("#")]}


async def test_created_ids_flow_across_calls_and_back_to_the_client(jmap: Jmap) -> None:
    app = jmap.app(jmap.registry(Fixed("Test/set", fn=_creating),
                                 Fixed("Test/get", fn=_getting)))
    async with jmap.client(app) as c:
        response = await call(
            c, ["Test/set", {"create": {"k1": {}, "k2": {}}}, "s"],
            ["Test/get", {"ids": ["#k2", "#k1", "#nope", "M9"]}, "g"],
            using=USING, createdIds={"old": "M0"})
    assert response["createdIds"] == {"old": "M0", "k1": "M2", "k2": "M3"}
    assert response["methodResponses"][1][1] == {
        "list": [{"id": "M3"}, {"id": "M2"}, {"id": "M9"}], "notFound": ["#nope"]}


async def test_created_ids_from_the_request_are_usable(jmap: Jmap) -> None:
    app = jmap.app(jmap.registry(Fixed("Test/get", fn=_getting)))
    async with jmap.client(app) as c:
        response = await call(c, ["Test/get", {"ids": ["#earlier"]}, "g"], using=USING,
                              createdIds={"earlier": "M77"})
    assert response["methodResponses"][0][1]["list"] == [{"id": "M77"}]
    assert response["createdIds"] == {"earlier": "M77"}


async def test_metrics_count_requests_and_calls(jmap: Jmap) -> None:
    ok = metric("fdbmail_jmap_requests_total", endpoint="api", result="ok")
    echo = metric("fdbmail_jmap_method_calls_total", method="Core/echo", result="ok")
    async with jmap.client() as c:
        await call(c, ["Core/echo", {}, "a"], ["Core/echo", {}, "b"])
        await c.post("/jmap/api", content=b"nope", headers=JSON)
    assert metric("fdbmail_jmap_requests_total", endpoint="api", result="ok") == ok + 1
    assert metric("fdbmail_jmap_method_calls_total", method="Core/echo",
                  result="ok") == echo + 2
    assert metric("fdbmail_jmap_requests_total", endpoint="api", result="notJSON") >= 1
    assert metric("fdbmail_jmap_method_duration_seconds_count", method="Core/echo") >= 2
    assert_promtool_accepts(generate_latest().decode())
