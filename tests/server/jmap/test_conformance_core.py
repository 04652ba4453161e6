"""RFC 8620 conformance, core: request-level errors (section 3.6.1), method-level errors
(3.6.2), ``using`` (3.3), result references (3.7) and creation ids (3.3, 5.3), each
checked with raw httpx requests against a real node, as a client sees them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import CORE, USING, mail_node

MAIL = "urn:ietf:params:jmap:mail"
PROBLEM = "urn:ietf:params:jmap:error:"
JSON_TYPE = {"Content-Type": "application/json"}


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path) as m:
        yield m


async def _problem(c: httpx.AsyncClient, body: bytes | Any,
                   headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The RFC 7807 body of a request-level error, checked: status 400 (section 3.6.1)
    and its media type."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = await c.post("/jmap/api", content=raw, headers=JSON_TYPE if headers is None
                     else headers)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = r.json()
    assert problem["status"] == 400
    return problem


async def _responses(c: httpx.AsyncClient, *calls: list[Any], using: list[str] = USING,
                     **extra: Any) -> list[list[Any]]:
    r = await c.post("/jmap/api", json={"using": using, "methodCalls": list(calls),
                                        **extra})
    assert r.status_code == 200, r.text
    responses: list[list[Any]] = r.json()["methodResponses"]
    return responses


async def test_request_level_errors_are_problems_with_status_400(mail: Mail) -> None:
    """RFC 8620 section 3.6.1: unknownCapability, notJSON (not I-JSON, or not of type
    application/json), notRequest, limit with the ``limit`` property; no method runs."""
    async with mail.client() as c:
        unknown = await _problem(c, {"using": [CORE, "urn:example:nope"],
                                     "methodCalls": [["Core/echo", {}, "0"]]})
        assert unknown["type"] == PROBLEM + "unknownCapability"
        for raw in (b"{", b'{"using": [], "methodCalls": [], "using": []}', b"\xff\xfe"):
            assert (await _problem(c, raw))["type"] == PROBLEM + "notJSON"
        valid = {"using": [CORE], "methodCalls": [["Core/echo", {}, "0"]]}
        for headers in ({"Content-Type": "text/plain"}, {}):
            typed = await _problem(c, valid, headers)
            assert typed["type"] == PROBLEM + "notJSON"
        assert (await c.post("/jmap/api", json=valid,
                             headers={"Content-Type": "application/json; charset=utf-8"})
                ).status_code == 200
        for not_request in ([], {"using": [CORE]}, {"methodCalls": []},
                            {"using": CORE, "methodCalls": []},
                            {"using": [CORE], "methodCalls": [["Core/echo", {}]]},
                            {"using": [CORE], "methodCalls": [["Core/echo", [], "0"]]}):
            assert (await _problem(c, not_request))["type"] == PROBLEM + "notRequest"
        session = (await c.get("/jmap/session")).json()
        most = session["capabilities"][CORE]["maxCallsInRequest"]
        limit = await _problem(c, {"using": [CORE], "methodCalls": [
            ["Core/echo", {}, str(i)] for i in range(most + 1)]})
        assert limit["type"] == PROBLEM + "limit"
        assert limit["limit"] == "maxCallsInRequest"


async def test_a_method_outside_using_is_unknown(mail: Mail) -> None:
    """RFC 8620 section 3.3 (``using``) and 3.6.2: a method whose capability the
    request does not use is ``unknownMethod``, as is a name no capability has; the
    next calls still run, and each response keeps its call id."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        responses = await _responses(
            c, ["Mailbox/get", {"accountId": alice, "ids": []}, "a"],
            ["Nothing/get", {}, "b"], ["Core/echo", {"x": 1}, "c"], using=[CORE])
        assert [r[0] for r in responses] == ["error", "error", "Core/echo"]
        assert [r[1].get("type") for r in responses[:2]] == ["unknownMethod"] * 2
        assert [r[2] for r in responses] == ["a", "b", "c"]
        echo = await _responses(c, ["Core/echo", {}, "a"], using=[MAIL])
        assert echo[0][1]["type"] == "unknownMethod"  # Core/echo needs core in using


async def test_method_level_errors_name_their_type(mail: Mail) -> None:
    """RFC 8620 section 3.6.2 and 5.1: accountNotFound for an account the user does not
    have (another user's included), invalidArguments for an unknown argument, a wrong
    type or an unknown property, requestTooLarge past maxObjectsInGet."""
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    async with mail.client() as c:
        session = (await c.get("/jmap/session")).json()
        most = session["capabilities"][CORE]["maxObjectsInGet"]
        responses = await _responses(
            c, ["Mailbox/get", {"accountId": bob, "ids": None}, "0"],
            ["Mailbox/get", {"accountId": "nobody", "ids": None}, "1"],
            ["Mailbox/get", {"accountId": alice, "ids": None, "sort": []}, "2"],
            ["Mailbox/get", {"accountId": alice, "ids": "inbox"}, "3"],
            ["Mailbox/get", {"accountId": alice, "ids": None, "properties": ["nope"]}, "4"],
            ["Mailbox/get", {"accountId": alice,
                             "ids": [f"m{i}" for i in range(most + 1)]}, "5"])
        assert [(r[0], r[1]["type"]) for r in responses] == [
            ("error", "accountNotFound"), ("error", "accountNotFound"),
            ("error", "invalidArguments"), ("error", "invalidArguments"),
            ("error", "invalidArguments"), ("error", "requestTooLarge")]


async def test_result_references_resolve_or_fail_as_invalid_result_reference(
        mail: Mail) -> None:
    """RFC 8620 section 3.7: ``#ids`` takes the value at ``path`` of the first earlier
    response with that call id; a reference to no response, to a response of another
    name (an error response included) or a path that does not resolve fails the call
    with invalidResultReference; an argument given both plain and as a reference is
    invalidArguments."""
    alice = mail.ids["alice"]
    query = {"accountId": alice, "sort": [{"property": "name"}]}

    def ref(result_of: str, name: str, path: str) -> dict[str, str]:
        return {"resultOf": result_of, "name": name, "path": path}
    async with mail.client() as c:
        responses = await _responses(
            c, ["Mailbox/query", query, "q"],
            ["Mailbox/get", {"accountId": alice, "#ids": ref("q", "Mailbox/query", "/ids"),
                             "properties": ["name"]}, "g"],
            ["Mailbox/get", {"accountId": alice,
                             "#ids": ref("g", "Mailbox/get", "/list/*/id")}, "g2"],
            ["Mailbox/get", {"accountId": alice,
                             "#ids": ref("none", "Mailbox/query", "/ids")}, "e1"],
            ["Mailbox/get", {"accountId": alice,
                             "#ids": ref("q", "Mailbox/get", "/ids")}, "e2"],
            ["Mailbox/get", {"accountId": alice,
                             "#ids": ref("q", "Mailbox/query", "/nothing")}, "e3"],
            ["Mailbox/get", {"accountId": "nobody", "ids": []}, "err"],
            ["Mailbox/get", {"accountId": alice,
                             "#ids": ref("err", "Mailbox/get", "/list")}, "e4"],
            ["Mailbox/get", {"accountId": alice, "ids": [],
                             "#ids": ref("q", "Mailbox/query", "/ids")}, "e5"])
        by_id = {r[2]: r for r in responses}
        ids = by_id["q"][1]["ids"]
        assert [m["id"] for m in by_id["g"][1]["list"]] == ids
        assert [m["id"] for m in by_id["g2"][1]["list"]] == ids
        for bad in ("e1", "e2", "e3", "e4"):
            assert by_id[bad][:2] == ["error", {"type": "invalidResultReference",
                                                "description": by_id[bad][1].get(
                                                    "description")}], bad
        assert by_id["e5"][1]["type"] == "invalidArguments"


async def test_creation_ids_are_usable_later_in_the_request_and_given_back(
        mail: Mail) -> None:
    """RFC 8620 section 5.3: a creation id is usable as ``#id`` wherever an id goes,
    in the same /set (a parent created in the same call) and in later calls; an unknown
    creation id is not an id (a /get reports it notFound, a /set update or destroy
    notFound, a foreign key invalidProperties).  Section 3.3/3.4: ``createdIds`` given
    in the request is used and returned with the new ones."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        r = await c.post("/jmap/api", json={"using": USING, "createdIds": {"old": "inbox"},
                                            "methodCalls": [
            ["Mailbox/set", {"accountId": alice, "create": {
                "child": {"name": "Child", "parentId": "#parent"},
                "parent": {"name": "Parent", "parentId": "#old"}}}, "s"],
            ["Mailbox/get", {"accountId": alice, "ids": ["#parent", "#child", "#nope"],
                             "properties": ["name", "parentId"]}, "g"],
            ["Mailbox/set", {"accountId": alice,
                             "update": {"#child": {"name": "Kid"}, "#nope": {"name": "x"}},
                             "destroy": ["#nope"],
                             "create": {"orphan": {"name": "O", "parentId": "#nope"}}},
             "u"]]})
        assert r.status_code == 200
        body = r.json()
        s, g, u = (x[1] for x in body["methodResponses"])
        parent, child = s["created"]["parent"]["id"], s["created"]["child"]["id"]
        assert body["createdIds"] == {"old": "inbox", "parent": parent, "child": child}
        assert g["list"] == [{"id": parent, "name": "Parent", "parentId": "inbox"},
                             {"id": child, "name": "Child", "parentId": parent}]
        assert g["notFound"] == ["#nope"]
        assert u["updated"] == {child: None}
        assert u["notUpdated"]["#nope"]["type"] == "notFound"
        assert u["notDestroyed"]["#nope"]["type"] == "notFound"
        assert u["notCreated"]["orphan"]["type"] == "invalidProperties"
        assert u["notCreated"]["orphan"]["properties"] == ["parentId"]
        plain = await c.post("/jmap/api", json={"using": USING, "methodCalls": [
            ["Core/echo", {}, "0"]]})
        assert "createdIds" not in plain.json()  # section 3.4: only when it was given


async def test_creation_ids_reach_other_types_and_patch_paths(mail: Mail) -> None:
    """RFC 8620 section 5.3: a Mailbox's creation id is an id wherever one is taken
    later in the request: Email/import's and Email/set's mailboxIds keys, a patch path
    (``mailboxIds/#k``), Email/get's ids.  Section 3.4: every response carries the
    Session's state as ``sessionState``."""
    alice = mail.ids["alice"]
    await mail.send("alice@example.com", "kept")
    async with mail.client() as c:
        session = (await c.get("/jmap/session")).json()
        [email] = (await _responses(c, ["Email/query", {"accountId": alice}, "q"]))[0][1][
            "ids"]
        up = await c.post(f"/upload/{alice}/", content=b"Subject: up\r\n\r\nhi\r\n",
                          headers={"Content-Type": "message/rfc822"})
        assert up.status_code == 201
        r = await c.post("/jmap/api", json={"using": USING, "methodCalls": [
            ["Mailbox/set", {"accountId": alice, "create": {"k": {"name": "K"}}}, "m"],
            ["Email/import", {"accountId": alice, "emails": {"i": {
                "blobId": up.json()["blobId"], "mailboxIds": {"#k": True}}}}, "i"],
            ["Email/set", {"accountId": alice,
                           "create": {"d": {"mailboxIds": {"#k": True}, "subject": "d"}},
                           "update": {email: {"mailboxIds/#k": True}}}, "s"],
            ["Email/get", {"accountId": alice, "ids": ["#i", "#d", email],
                           "properties": ["mailboxIds"]}, "g"]]})
        body = r.json()
        assert body["sessionState"] == session["state"]
        m, i, s, g = (x[1] for x in body["methodResponses"])
        box = m["created"]["k"]["id"]
        assert i["created"]["i"]["id"] and s["created"]["d"]["id"]
        assert s["updated"] == {email: None}
        assert [e["mailboxIds"] for e in g["list"]] == [
            {box: True}, {box: True}, {"inbox": True, box: True}]
