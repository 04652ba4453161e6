"""JMAP over WebSocket (RFC 8887), end to end: a real node and the ``websockets``
client; requests and responses, request errors, and push."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.server.jmap.push import PATIENCE
from tests.server.jmap.test_mail import PASSWORDS
from tests.server.jmap.writes import CORE, calls, mail_node

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

ERROR = "urn:ietf:params:jmap:error:"


def _auth(user: str = "alice") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _url(base: str) -> str:
    return base.replace("http", "ws", 1) + "/jmap/ws"


async def _receive(ws: ClientConnection) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), PATIENCE))
    return out


async def _send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def test_requests_and_responses(tmp_path: Path) -> None:
    """Section 4.3.1-4.3.3: a Request with an id gets the Response with that
    ``requestId`` and the session's ``sessionState``; the ``jmap`` subprotocol is
    agreed."""
    async with mail_node(tmp_path) as mail, mail.client() as c:
        session = (await c.get("/jmap/session")).json()
        url = session["capabilities"]["urn:ietf:params:jmap:websocket"]["url"]
        async with connect(url, subprotocols=["jmap"], additional_headers=_auth()) as ws:
            assert ws.subprotocol == "jmap"
            await _send(ws, {"@type": "Request", "id": "r1", "using": [CORE],
                             "methodCalls": [["Core/echo", {"hello": True}, "0"]]})
            response = await _receive(ws)
            assert response == {"@type": "Response", "requestId": "r1",
                                "methodResponses": [["Core/echo", {"hello": True}, "0"]],
                                "sessionState": session["state"]}
            await _send(ws, {"@type": "Request", "using": [CORE, "urn:ietf:params:jmap:mail"],
                             "methodCalls": [["Mailbox/get", {
                                 "accountId": mail.ids["alice"], "ids": []}, "m"]]})
            response = await _receive(ws)
            assert "requestId" not in response
            assert response["methodResponses"][0][0] == "Mailbox/get"


@pytest.mark.parametrize(("message", "kind"), [
    ("{not json", "notJSON"),
    ('["an", "array"]', "notRequest"),
    ('{"@type": "Nonsense", "id": "x"}', "notRequest"),
    ('{"@type": "Request", "id": "x", "using": "core", "methodCalls": []}', "notRequest"),
    ('{"@type": "Request", "id": "x", "using": ["urn:x:unknown"], "methodCalls": []}',
     "unknownCapability"),
    ('{"@type": "WebSocketPushEnable", "dataTypes": "Email"}', "notRequest"),
])
async def test_bad_messages_get_a_request_error_and_the_connection_stays(
        tmp_path: Path, message: str, kind: str) -> None:
    """Section 4.3.4: a RequestError (a problem details object with ``@type``), with
    the ``requestId`` when the request had an id; the connection goes on."""
    async with mail_node(tmp_path) as mail:
        async with connect(_url(mail.base), subprotocols=["jmap"],
                           additional_headers=_auth()) as ws:
            await ws.send(message)
            error = await _receive(ws)
            assert error["@type"] == "RequestError" and error["type"] == ERROR + kind
            assert error["status"] == 400
            if '"id": "x"' in message and kind != "notRequest":
                assert error["requestId"] == "x"
            await ws.send(b"\x00binary")  # JMAP messages are text frames
            assert (await _receive(ws))["type"] == ERROR + "notJSON"
            await _send(ws, {"@type": "Request", "id": "ok", "using": [CORE],
                             "methodCalls": [["Core/echo", {}, "0"]]})
            assert (await _receive(ws))["requestId"] == "ok"


async def test_the_handshake_needs_credentials_and_the_subprotocol(tmp_path: Path) -> None:
    """Section 4.2: authentication is the upgrade request's; the ``jmap`` subprotocol
    must be asked for."""
    async with mail_node(tmp_path) as mail:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(_url(mail.base), subprotocols=["jmap"]):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as refused:
            async with connect(_url(mail.base), additional_headers=_auth()):
                pass
        assert refused.value.response.status_code == 403


async def test_push_enable_disable_and_push_state(tmp_path: Path) -> None:
    """Section 4.3.5: after WebSocketPushEnable, StateChanges with a ``pushState``;
    none after WebSocketPushDisable; enabling again with that pushState sends what
    changed since at once."""
    async with mail_node(tmp_path) as mail:
        alice = mail.ids["alice"]
        async with connect(_url(mail.base), subprotocols=["jmap"],
                           additional_headers=_auth()) as ws:
            await _send(ws, {"@type": "WebSocketPushEnable", "dataTypes": None})
            await mail.send("alice@example.com", "pushed")
            change = await _receive(ws)
            assert change["@type"] == "StateChange"
            assert "Email" in change["changed"][alice]
            push_state = change["pushState"]
            await _send(ws, {"@type": "WebSocketPushDisable"})
            await mail.send("alice@example.com", "not pushed")
            await _send(ws, {"@type": "Request", "id": "after", "using": [CORE],
                             "methodCalls": [["Core/echo", {}, "0"]]})
            assert (await _receive(ws))["requestId"] == "after"  # no StateChange first
            await _send(ws, {"@type": "WebSocketPushEnable", "dataTypes": ["Email"],
                             "pushState": push_state})
            caught_up = await _receive(ws)
            assert caught_up["@type"] == "StateChange"
            assert set(caught_up["changed"][alice]) == {"Email"}
            assert caught_up["pushState"] != push_state


async def test_data_types_limit_what_is_pushed(tmp_path: Path) -> None:
    """Section 4.3.5.2: ``dataTypes`` lists the types to push."""
    async with mail_node(tmp_path) as mail, mail.client() as c:
        alice = mail.ids["alice"]
        async with connect(_url(mail.base), subprotocols=["jmap"],
                           additional_headers=_auth()) as ws:
            await _send(ws, {"@type": "WebSocketPushEnable", "dataTypes": ["Identity"]})
            await mail.send("alice@example.com", "not pushed here")
            await calls(c, ["Identity/set", {"accountId": alice, "create": {
                "n": {"email": "alice@example.com", "name": "Alice"}}}, "0"])
            change = await _receive(ws)
            assert set(change["changed"][alice]) == {"Identity"}


async def test_push_connections_are_limited_per_account(tmp_path: Path) -> None:
    """``push_max_connections`` counts WebSockets too: one more is refused (429)."""
    async with mail_node(tmp_path, "push_max_connections = 1\n") as mail:
        async with connect(_url(mail.base), subprotocols=["jmap"],
                           additional_headers=_auth()) as ws:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(_url(mail.base), subprotocols=["jmap"],
                                   additional_headers=_auth()):
                    pass
            assert refused.value.response.status_code == 429
            async with connect(_url(mail.base), subprotocols=["jmap"],
                               additional_headers=_auth("bob")) as other:
                assert other.subprotocol == "jmap"
            await _send(ws, {"@type": "Request", "id": "still", "using": [CORE],
                             "methodCalls": [["Core/echo", {}, "0"]]})
            assert (await _receive(ws))["requestId"] == "still"
