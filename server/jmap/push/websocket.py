"""JMAP over WebSocket (RFC 8887): API requests and responses as text messages on one
connection, and push (``WebSocketPushEnable`` / ``WebSocketPushDisable``) of
StateChange objects carrying a ``pushState``.

The ``jmap`` subprotocol is required (section 4.2); authentication is the upgrade
request's (the route is a :class:`~server.jmap.routes.WsRoute`).  Requests run one
after another in the order received; pushes are sent between them (one send at a
time).  A bad message gets a RequestError (section 4.3.4) and the connection stays
open: only a failure of the connection itself ends it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.directory.base import Principal

from ..errors import PROBLEM_PREFIX, Refused, RequestError
from ..json import JsonObject, JsonValue, NotJson, decode, encode
from ..mail import MailStore
from ..methods import Capability
from ..routes import ApiRunner, WsRoute
from ..session import WEBSOCKET, WEBSOCKET_PATH
from .eventsource import EVENTS, OPEN, Connections
from .state import TYPES, StateWatcher, changed_types, decode_token, encode_token, state_change

log = logging.getLogger(__name__)

SUBPROTOCOL = "jmap"
# Closing codes (RFC 6455 section 7.4.1).
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


def websocket_capability() -> Capability:
    """``urn:ietf:params:jmap:websocket`` (RFC 8887 section 4): the url is filled in by
    the session resource; push is supported."""
    return Capability(WEBSOCKET, {"url": "", "supportsPush": True})


def _request_error(type_: str, detail: str, request_id: JsonValue = None,
                   status: int = 400, limit: str | None = None) -> JsonObject:
    out: JsonObject = {"@type": "RequestError", "type": PROBLEM_PREFIX + type_,
                       "status": status, "detail": detail}
    if limit is not None:
        out["limit"] = limit
    if isinstance(request_id, str):
        out["requestId"] = request_id
    return out


class _Connection:
    def __init__(self, ws: WebSocket, principal: Principal, run: ApiRunner,
                 watcher: StateWatcher, max_size: int) -> None:
        self.ws, self.principal, self.run, self.watcher = ws, principal, run, watcher
        self.max_size = max_size
        self.send_lock = asyncio.Lock()
        self.pusher: asyncio.Task[None] | None = None

    async def send(self, message: JsonObject) -> None:
        async with self.send_lock:
            await self.ws.send_text(encode(message).decode())

    async def serve(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    await self.send(_request_error("notJSON", "JMAP messages are text "
                                                   "frames (RFC 8887 section 4.3)"))
                    continue
                await self.handle(text)
        finally:
            self.stop_push()

    async def handle(self, text: str) -> None:
        raw = text.encode()
        if len(raw) > self.max_size:
            await self.send(_request_error("limit", f"the message is larger than "
                                           f"{self.max_size} octets", limit="maxSizeRequest"))
            return
        try:
            value = decode(raw)
        except NotJson as e:
            await self.send(_request_error("notJSON", f"the message is not JSON: {e}"))
            return
        if not isinstance(value, dict):
            await self.send(_request_error("notRequest", "a message must be a JSON object"))
            return
        kind, request_id = value.get("@type"), value.get("id")
        if kind == "Request":
            await self.request(raw, request_id)
        elif kind == "WebSocketPushEnable":
            await self.enable(value)
        elif kind == "WebSocketPushDisable":
            self.stop_push()
        else:
            await self.send(_request_error(
                "notRequest", "@type must be Request, WebSocketPushEnable or "
                "WebSocketPushDisable", request_id))

    async def request(self, raw: bytes, request_id: JsonValue) -> None:
        if request_id is not None and not isinstance(request_id, str):
            await self.send(_request_error("notRequest", "id must be a string"))
            return
        try:
            response = await self.run(raw, self.principal)
        except RequestError as e:
            problem = e.problem()
            await self.send({"@type": "RequestError", **problem,
                             **({"requestId": request_id} if request_id is not None else {})})
            return
        out: JsonObject = {"@type": "Response", **response.to_json()}
        if request_id is not None:
            out["requestId"] = request_id
        await self.send(out)

    async def enable(self, value: JsonObject) -> None:
        types_value, push_state = value.get("dataTypes"), value.get("pushState")
        if types_value is not None and not (isinstance(types_value, list) and all(
                isinstance(t, str) for t in types_value)):
            await self.send(_request_error("notRequest", "dataTypes must be null or an "
                                           "array of type names"))
            return
        if push_state is not None and not isinstance(push_state, str):
            await self.send(_request_error("notRequest", "pushState must be a string"))
            return
        types = None if types_value is None else frozenset(
            t for t in types_value if isinstance(t, str) and t in TYPES)
        self.stop_push()
        known = decode_token(push_state)
        if known is None:
            # The states before the next message is read (RFC 8887 section 4.3.5: changes
            # from now on are pushed): a change the client makes or sees after this enable
            # is pushed, even when the push task starts after it.
            known = await self.watcher.current()
        self.pusher = asyncio.create_task(self.push(types, known))

    def stop_push(self) -> None:
        if self.pusher is not None:
            self.pusher.cancel()
            self.pusher = None

    async def push(self, types: frozenset[str] | None, known: dict[str, str]) -> None:
        """StateChanges until cancelled (section 4.3.5), from ``known``: a pushState the
        client gave, or the states when push was enabled."""
        try:
            while True:
                now = await self.watcher.next_change(known, types)
                assert now is not None
                changed = changed_types(known, now, types)
                known = now
                message = state_change(self.principal.id, changed)
                message["pushState"] = encode_token(now)
                EVENTS.labels("websocket", "state").inc()
                await self.send(message)
        except asyncio.CancelledError:
            raise
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the connection is gone; serve() notices too
        except Exception:
            log.exception("WebSocket push failed")


class WebSocketEndpoint:
    def __init__(self, store: MailStore, connections: Connections, max_size: int) -> None:
        self.store, self.connections, self.max_size = store, connections, max_size

    def route(self) -> WsRoute:
        return WsRoute(WEBSOCKET_PATH, "websocket", self.handle)

    async def handle(self, ws: WebSocket, principal: Principal, run: ApiRunner) -> None:
        if SUBPROTOCOL not in ws.scope.get("subprotocols", []):
            await ws.close(code=POLICY_VIOLATION, reason="the jmap subprotocol is required")
            return
        try:
            slot = self.connections.acquire(principal.id)
        except Refused as e:  # 429 when the server can answer the upgrade so
            if "websocket.http.response" in ws.scope.get("extensions", {}):
                await ws.send_denial_response(JSONResponse(
                    e.problem(), status_code=e.status, headers=e.headers,
                    media_type="application/problem+json"))
            else:
                await ws.close(code=TRY_AGAIN_LATER, reason="too many push connections")
            return
        OPEN.labels("websocket").inc()
        try:
            await ws.accept(subprotocol=SUBPROTOCOL)
            connection = _Connection(ws, principal, run, StateWatcher(self.store, principal),
                                     self.max_size)
            with contextlib.suppress(WebSocketDisconnect):
                await connection.serve()
        finally:
            OPEN.labels("websocket").dec()
            slot.release()
