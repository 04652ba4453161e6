"""The request limits of the core capability (RFC 8620 section 2), each enforced with its
error: request-level ``limit`` problems, and ``requestTooLarge`` for the per-call ones;
and hostile bodies get their JMAP error, never a 500."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.jmap.args import check_set_size, ids_arg
from server.jmap.methods import CORE
from tests.server.jmap.conftest import JSON, TEST_CAPABILITY, Fixed, Jmap, call, error_type

USING = [CORE, TEST_CAPABILITY]


def _limit(r: httpx.Response, name: str) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "urn:ietf:params:jmap:error:limit"
    assert body["limit"] == name


async def _kilobytes(count: int, sent: list[int]) -> AsyncIterator[bytes]:
    """``count`` chunks of 1 KiB (JSON whitespace), noting each one the server pulls."""
    for i in range(count):
        sent.append(i)
        yield b" " * 1024


async def test_a_declared_oversize_body_is_refused_before_it_is_read(jmap: Jmap) -> None:
    small = jmap.with_settings(limits={"max_size_request": 2048})
    sent: list[int] = []
    async with small.client() as c:
        r = await c.post("/jmap/api", content=_kilobytes(100, sent),
                         headers={**JSON, "Content-Length": str(100 * 1024)})
    _limit(r, "maxSizeRequest")
    assert len(sent) <= 1  # nothing past the first chunk was asked for


async def test_an_undeclared_oversize_body_is_cut_while_streaming(jmap: Jmap) -> None:
    small = jmap.with_settings(limits={"max_size_request": 2048})
    sent: list[int] = []
    async with small.client() as c:
        # chunked: no Content-Length
        r = await c.post("/jmap/api", content=_kilobytes(100, sent), headers=JSON)
    _limit(r, "maxSizeRequest")
    assert len(sent) < 10
    # a request just under the limit is fine
    async with small.client() as c:
        echo: list[Any] = ["Core/echo", {"p": "x" * 1900}, "a"]
        assert len(json.dumps({"using": [CORE], "methodCalls": [echo]})) <= 2048
        assert (await call(c, echo))["methodResponses"][0][0] \
            == "Core/echo"


async def test_ten_thousand_method_calls_are_a_limit_problem(jmap: Jmap) -> None:
    calls = [["Core/echo", {}, str(i)] for i in range(10_000)]
    async with jmap.client() as c:
        r = await c.post("/jmap/api", json={"using": [CORE], "methodCalls": calls})
        _limit(r, "maxCallsInRequest")
        n = jmap.settings.limits.max_calls_in_request
        ok = await call(c, *calls[:n])
    assert len(ok["methodResponses"]) == n


async def test_concurrent_requests_per_account_are_limited(jmap: Jmap) -> None:
    two = jmap.with_settings(limits={"max_concurrent_requests": 2})
    entered = asyncio.Semaphore(0)
    release = asyncio.Event()

    async def wait(ctx: Any, args: Any) -> Any:
        entered.release()
        await release.wait()
        return {}
    app = two.app(two.registry(Fixed("Test/wait", fn=wait)))
    async with two.client(app) as alice, two.client(app, user="bob") as bob:
        blocked = [asyncio.create_task(call(alice, ["Test/wait", {}, "w"], using=USING))
                   for _ in range(2)]
        for _ in range(2):
            await entered.acquire()
        _limit(await alice.post("/jmap/api", json={"using": [CORE], "methodCalls": []}),
               "maxConcurrentRequests")
        # another account has its own allowance
        assert (await call(bob, ["Core/echo", {}, "b"]))["methodResponses"]
        release.set()
        for task in blocked:
            assert (await task)["methodResponses"] == [["Test/wait", {}, "w"]]
        # released: alice may call again
        assert (await call(alice, ["Core/echo", {}, "c"]))["methodResponses"]


async def test_a_refused_request_releases_its_slot(jmap: Jmap) -> None:
    one = jmap.with_settings(limits={"max_concurrent_requests": 1})
    async with one.client() as c:
        for _ in range(3):
            assert (await c.post("/jmap/api", content=b"not json", headers=JSON)).status_code == 400
        assert (await call(c, ["Core/echo", {}, "a"]))["methodResponses"]


def _get(ctx: Any, args: Any) -> Any:
    return {"ids": ids_arg(ctx, args)}


def _set(ctx: Any, args: Any) -> Any:
    check_set_size(ctx, args)
    return {}


async def test_max_objects_in_get_and_set_are_request_too_large(jmap: Jmap) -> None:
    small = jmap.with_settings(limits={"max_objects_in_get": 3, "max_objects_in_set": 3})
    app = small.app(small.registry(Fixed("Test/get", fn=_get), Fixed("Test/set", fn=_set)))
    async with small.client(app) as c:
        response = await call(
            c, ["Test/get", {"ids": ["a", "b", "c", "d"]}, "g1"],
            ["Test/get", {"ids": ["a", "b", "c"]}, "g2"],
            ["Test/get", {"ids": None}, "g3"],
            ["Test/set", {"create": {"x": {}, "y": {}}, "update": {"a": {}},
                          "destroy": ["b"]}, "s1"],
            ["Test/set", {"create": {"x": {}}, "update": {"a": {}}, "destroy": ["b"]}, "s2"],
            using=USING)
    assert error_type(response, 0) == "requestTooLarge"
    assert response["methodResponses"][1][1] == {"ids": ["a", "b", "c"]}
    assert response["methodResponses"][2][1] == {"ids": None}
    assert error_type(response, 3) == "requestTooLarge"
    assert response["methodResponses"][4] == ["Test/set", {}, "s2"]


async def test_hostile_bodies_get_their_error_not_a_500(jmap: Jmap) -> None:
    bodies = {
        b"[" * 200_000: "notJSON",
        b'{"using": [], "methodCalls": [' + b"[" * 50_000 + b"]": "notJSON",
        b"\xc3\x28": "notJSON",
        b'{"using":[],"methodCalls":[["Core/echo",' + b'{"a":' * 5000 + b"1"
        + b"}" * 5000 + b',"c"]]}': "notJSON",
        json.dumps({"using": [CORE], "methodCalls": [["Core/echo", {}, "a"]] * 3,
                    "createdIds": "x"}).encode(): "notRequest",
    }
    async with jmap.client() as c:
        for raw, kind in bodies.items():
            r = await c.post("/jmap/api", content=raw, headers=JSON)
            assert r.status_code == 400, (raw[:50], r.text)
            assert r.json()["type"] == f"urn:ietf:params:jmap:error:{kind}"


async def test_nesting_up_to_the_limit_is_echoed_and_deeper_is_not_json(
        jmap: Jmap) -> None:
    deep: Any = 1
    for _ in range(127):  # with the request's own 4 levels: 258 > MAX_DEPTH (256)
        deep = {"a": [deep]}
    async with jmap.client() as c:
        response = await call(c, ["Core/echo", {"d": deep["a"][0]}, "a"])
        assert response["methodResponses"][0][1] == {"d": deep["a"][0]}
        r = await c.post("/jmap/api", json={"using": [CORE],
                                            "methodCalls": [["Core/echo", {"d": deep}, "a"]]})
    assert r.status_code == 400 and r.json()["type"].endswith(":notJSON")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25)

requests = st.fixed_dictionaries({}, optional={
    "using": st.lists(st.sampled_from([CORE, "urn:x"]), max_size=2) | json_values,
    "methodCalls": st.lists(st.tuples(
        st.sampled_from(["Core/echo", "Foo/get", "x"]) | json_values,
        st.dictionaries(st.sampled_from(["a", "#a", "#b", "accountId"]), json_values
                        | st.fixed_dictionaries({"resultOf": st.sampled_from(["0", "1"]),
                                                 "name": st.sampled_from(["Core/echo"]),
                                                 "path": st.sampled_from(
                                                     ["", "/a", "/a/*", "/*", "/a/0"])}),
                        max_size=3) | json_values,
        st.sampled_from(["0", "1"]) | json_values).map(list), max_size=4) | json_values,
    "createdIds": st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)
    | json_values,
})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(requests.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64)))
def test_random_requests_get_a_jmap_answer_never_a_500(jmap: Jmap, raw: bytes) -> None:
    async def post() -> httpx.Response:
        async with jmap.client() as c:
            return await c.post("/jmap/api", content=raw, headers=JSON)
    r = asyncio.run(post())
    assert r.status_code in (200, 400), r.text
    body = r.json()
    if r.status_code == 400:
        assert body["type"].startswith("urn:ietf:params:jmap:error:")
    else:
        for name, args, _ in body["methodResponses"]:
            assert name in ("Core/echo", "error")
            if name == "error":
                assert args["type"] in ("unknownMethod", "invalidResultReference",
                                        "invalidArguments")


async def test_a_client_gone_mid_body_frees_its_slot(jmap: Jmap) -> None:
    one = jmap.with_settings(limits={"max_concurrent_requests": 1})
    app = one.app()
    token = base64.b64encode(b"alice:wonderland")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/jmap/api", "raw_path": b"/jmap/api",
             "query_string": b"", "root_path": "", "server": ("jmap.test", 80),
             "client": ("127.0.0.1", 40000),
             "headers": [(b"host", b"jmap.test"), (b"authorization", b"Basic " + token)]}
    incoming: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"using": [', "more_body": True},
        {"type": "http.disconnect"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
    await app(scope, receive, send)  # answered, not raised out of the app
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400
    # the account's one slot is free again
    async with one.client(app) as c:
        assert (await call(c, ["Core/echo", {}, "a"]))["methodResponses"]
