"""JMAP over HTTP on Starlette: the session resource and the API endpoint.

:func:`jmap_routes` returns the routes given their dependencies, so that the node mounts
JMAP with one line (``routes=[*jmap_routes(...)]`` in :func:`server.node.http.build_app`)."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Histogram
from starlette.requests import ClientDisconnect, HTTPConnection
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from server.directory.base import Directory, Principal
from server.logs import connection_id

from .api import execute
from .auth import Authenticator, TokenVerifier
from .core import Echo, core_capability
from .errors import Refused, RequestError
from .json import JsonObject
from .limits import Clock, FailureWindow, InFlight
from .methods import CORE, Limits, Registry
from .request import Response as ApiResponse
from .request import parse_request
from .settings import JmapSettings
from .session import API_PATH, SESSION_PATHS, SessionStates, session_resource

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

Handler = Callable[[HttpRequest, Principal], Awaitable[Response]]
ApiRunner = Callable[[bytes, Principal], Awaitable[ApiResponse]]
"""Runs one API request (its raw JSON) for a principal: what JMAP over
WebSocket (RFC 8887) shares with the HTTP API endpoint.  Raises RequestError."""
WebSocketHandler = Callable[[WebSocket, Principal, ApiRunner], Awaitable[None]]

# CORS (Fetch standard), so that a web client on another origin can call us: credentials
# travel in the Authorization header, never in cookies, so any origin may be allowed.
CORS = {"Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "WWW-Authenticate, Retry-After, "
                                         "Content-Disposition, Content-Range"}
PREFLIGHT = {**CORS, "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
             "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept, Range",
             "Access-Control-Max-Age": "86400"}

REQUESTS = Counter(
    "fdbmail_jmap_requests_total",
    "JMAP HTTP requests (session and API) by result: 'ok', a request-level error type "
    "(notJSON, notRequest, limit, unknownCapability), a refusal (unauthorized, "
    "tlsRequired, rateLimited, unavailable) or 'disconnected' (the client left while "
    "sending its request).",
    ["endpoint", "result"])
REQUEST_DURATION = Histogram(
    "fdbmail_jmap_request_duration_seconds",
    "Time to answer one JMAP HTTP request, by endpoint (session, api).",
    ["endpoint"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """An endpoint besides the session and the API (upload, download): served behind the
    same authentication, problem+json refusals, CORS and metrics (``name`` labels them)."""

    path: str
    name: str
    handler: Handler
    methods: tuple[str, ...] = ("GET",)
    password_only: bool = False  # Basic with the directory's password only (auth.py)


@dataclass(frozen=True, slots=True)
class WsRoute:
    """A WebSocket endpoint behind the same authentication (checked on the upgrade
    request; refused with the problem+json answer when the server can send one)."""

    path: str
    name: str
    handler: WebSocketHandler


def core_registry(limits: Limits) -> Registry:
    """A registry with the core capability and Core/echo; method packages add theirs."""
    return Registry([core_capability(limits)], [Echo()])


def jmap_routes(directory: Directory, settings: JmapSettings, registry: Registry, *,
                tokens: TokenVerifier | None = None,
                clock: Clock = time.monotonic,
                extra: Sequence[HttpRoute | WsRoute] = ()) -> list[BaseRoute]:
    """The session resource (``/.well-known/jmap`` and ``/jmap/session``), the API
    endpoint (``/jmap/api``) and the ``extra`` endpoints."""
    return _Endpoints(directory, settings, registry, tokens, clock).routes(extra)


class _Endpoints:
    def __init__(self, directory: Directory, settings: JmapSettings, registry: Registry,
                 tokens: TokenVerifier | None, clock: Clock) -> None:
        core = registry.capabilities.get(CORE)
        if core is None or any(core.session.get(k) != v
                               for k, v in settings.limits.to_json().items()):
            raise ValueError("the registry must hold the core capability with the limits "
                             "of the settings (core_registry(settings.limits))")
        self.settings, self.registry = settings, registry
        self.auth = Authenticator(
            directory, FailureWindow(settings.auth_failures, settings.auth_failure_window,
                                     clock=clock),
            require_tls=settings.auth_require_tls, tokens=tokens)
        self.in_flight = InFlight(settings.limits.max_concurrent_requests)
        self.capabilities = frozenset(registry.capabilities)
        self.sessions = SessionStates(registry)

    def routes(self, extra: Sequence[HttpRoute | WsRoute] = ()) -> list[BaseRoute]:
        session = self._endpoint("session", self.session)
        http = [r for r in extra if isinstance(r, HttpRoute)]
        return [*(Route(p, session, methods=["GET"]) for p in SESSION_PATHS),
                Route(API_PATH, _ApiApp(self), methods=["POST"]),
                *(Route(r.path, self._endpoint(r.name, r.handler, r.password_only),
                        methods=list(r.methods))
                  for r in http),
                *(WebSocketRoute(r.path, self._websocket(r))
                  for r in extra if isinstance(r, WsRoute)),
                *(Route(p, _preflight, methods=["OPTIONS"])
                  for p in (*SESSION_PATHS, API_PATH, *(r.path for r in http)))]

    def _websocket(self, route: WsRoute) -> Callable[[WebSocket], Awaitable[None]]:
        async def endpoint(ws: WebSocket) -> None:
            request_id = connection_id.set("jmap-" + secrets.token_hex(6))
            try:
                client = ws.client.host if ws.client is not None else ""
                try:
                    principal = await self.auth.authenticate(
                        ws.headers.get("authorization"), client=client,
                        secure=ws.url.scheme == "wss")
                except Refused as e:
                    REQUESTS.labels(route.name, e.reason).inc()
                    if "websocket.http.response" in ws.scope.get("extensions", {}):
                        await ws.send_denial_response(
                            _problem(e.problem(), e.status, {**e.headers, **CORS}))
                    else:
                        await ws.close(code=1008)
                    return
                REQUESTS.labels(route.name, "ok").inc()
                base = self.settings.public_url or str(ws.base_url).rstrip("/").replace(
                    "ws", "http", 1)  # ws:// -> http://, wss:// -> https://

                async def run(raw: bytes, who: Principal) -> ApiResponse:
                    return await self.run_api(raw, who, base)
                await route.handler(ws, principal, run)
            finally:
                connection_id.reset(request_id)
        return endpoint

    async def run_api(self, raw: bytes, principal: Principal, base_url: str) -> ApiResponse:
        """One API request, counted against maxConcurrentRequests (WebSocket)."""
        if len(raw) > self.settings.limits.max_size_request:
            raise RequestError("limit", f"the request is larger than "
                               f"{self.settings.limits.max_size_request} octets",
                               limit="maxSizeRequest")
        if not self.in_flight.acquire(principal.id):
            raise RequestError("limit", "too many requests in progress for this account",
                               limit="maxConcurrentRequests")
        try:
            return await self._execute(raw, principal, base_url)
        finally:
            self.in_flight.release(principal.id)

    async def _execute(self, raw: bytes, principal: Principal, base_url: str) -> ApiResponse:
        parsed = parse_request(raw, capabilities=self.capabilities,
                               max_calls=self.settings.limits.max_calls_in_request)
        accounts, state = self.sessions.get(principal, base_url)
        return await execute(parsed, self.registry, principal=principal, accounts=accounts,
                             limits=self.settings.limits, session_state=state)

    def _endpoint(self, name: str, handler: Handler, password_only: bool = False
                  ) -> Callable[[HttpRequest], Awaitable[Response]]:
        """``handler`` behind authentication, with its refusals and request-level
        errors answered as problem+json, counted and timed."""
        ok, duration = REQUESTS.labels(name, "ok"), REQUEST_DURATION.labels(name)

        async def endpoint(request: HttpRequest) -> Response:
            started = time.perf_counter()
            request_id = connection_id.set("jmap-" + secrets.token_hex(6))  # on every line
            try:
                principal = await self._principal(request, password_only)
                response, result = await handler(request, principal), "ok"
            except Refused as e:
                response, result = _problem(e.problem(), e.status, e.headers), e.reason
            except RequestError as e:
                response, result = _problem(e.problem(), e.status, {}), e.type
            except ClientDisconnect:  # gone while sending its body: nobody to answer
                response, result = Response(status_code=400), "disconnected"
            finally:
                connection_id.reset(request_id)
            response.headers.update(CORS)
            (ok if result == "ok" else REQUESTS.labels(name, result)).inc()
            duration.observe(time.perf_counter() - started)
            return response
        return endpoint

    def _base_url(self, request: HttpRequest) -> str:
        return self.settings.public_url or str(request.base_url).rstrip("/")

    async def _principal(self, request: HttpRequest, password_only: bool = False
                         ) -> Principal:
        client = request.client.host if request.client is not None else ""
        return await self.auth.authenticate(request.headers.get("authorization"),
                                            client=client,
                                            secure=request.scope.get("scheme") == "https",
                                            password_only=password_only)

    async def session(self, request: HttpRequest, principal: Principal) -> Response:
        body = session_resource(principal, self.registry, self._base_url(request))
        return JSONResponse(body, headers={"Cache-Control": "no-cache, no-store"})

def _check_json_type(content_type: str | None) -> None:
    """RFC 8620 section 3.6.1: a request whose content type is not application/json
    (parameters such as charset aside) is ``notJSON``."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise RequestError("notJSON", "the request's content type must be application/json,"
                           f" not {media_type[:100]!r}")


class _Disconnected(Exception):
    """The client left while sending its request's body."""


class _ApiApp:
    """The API endpoint (RFC 8620 section 3.1, POST to the apiUrl) as a raw ASGI app:
    every request of a JMAP client comes here, so it skips what Starlette's
    Request/Response objects cost and does what :meth:`_Endpoints._endpoint` does for
    the other endpoints: authentication, problem+json refusals and request-level errors
    (section 3.6.1), CORS, the request metrics; then maxConcurrentRequests, the content
    type and maxSizeRequest (from Content-Length before reading, else while streaming)."""

    def __init__(self, endpoints: _Endpoints) -> None:
        self.endpoints = endpoints
        self.ok, self.duration = REQUESTS.labels("api", "ok"), REQUEST_DURATION.labels("api")
        self._bases: dict[tuple[object, ...], str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = connection_id.set("jmap-" + secrets.token_hex(6))  # on every line
        headers = _first_headers(scope["headers"])
        extra: Mapping[str, str] = {}
        try:
            client = scope.get("client")
            principal = await self.endpoints.auth.authenticate(
                headers.get("authorization"), client=client[0] if client else "",
                secure=scope.get("scheme") == "https")
            status, media_type = 200, b"application/json"
            body, result = await self._answer(scope, receive, headers, principal), "ok"
        except Refused as e:
            status, media_type, extra = e.status, PROBLEM_JSON.encode(), e.headers
            body, result = _problem_bytes(e.problem()), e.reason
        except RequestError as e:
            status, media_type = e.status, PROBLEM_JSON.encode()
            body, result = _problem_bytes(e.problem()), e.type
        except _Disconnected:  # gone while sending its body: nobody to answer
            status, media_type, body, result = 400, b"", b"", "disconnected"
        finally:
            connection_id.reset(request_id)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        if media_type:
            raw.append((b"content-type", media_type))
        raw.extend(_RAW_CORS)
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        (self.ok if result == "ok" else REQUESTS.labels("api", result)).inc()
        self.duration.observe(time.perf_counter() - started)

    async def _answer(self, scope: Scope, receive: Receive, headers: dict[str, str],
                      principal: Principal) -> bytes:
        endpoints = self.endpoints
        account = principal.id
        if not endpoints.in_flight.acquire(account):
            raise RequestError("limit", "too many requests in progress for this account",
                               limit="maxConcurrentRequests")
        try:
            _check_json_type(headers.get("content-type"))
            raw = await self._body(receive, headers.get("content-length", ""))
            base = endpoints.settings.public_url or self._base_url(scope)
            response = await endpoints._execute(raw, principal, base)
        finally:
            endpoints.in_flight.release(account)
        return response.to_bytes()

    def _base_url(self, scope: Scope) -> str:
        """Starlette's base URL of the request (as the session resource computes it:
        the URLs and sessionState must agree), kept for the few (scheme, Host, server,
        root path) a node sees; the Host field is the client's, so at most 64 kept."""
        key = (scope.get("scheme"), _host(scope["headers"]), scope.get("server"),
               scope.get("root_path", ""), scope.get("app_root_path"))
        base = self._bases.get(key)
        if base is None:
            if len(self._bases) >= 64:
                self._bases.clear()
            base = self._bases[key] = str(HTTPConnection(scope).base_url).rstrip("/")
        return base

    async def _body(self, receive: Receive, declared: str) -> bytes:
        """The body, refused (``limit`` maxSizeRequest) as soon as it is known to be too
        large: from Content-Length before reading, else while streaming."""
        cap = self.endpoints.settings.limits.max_size_request
        too_large = RequestError("limit", f"the request is larger than {cap} octets",
                                 limit="maxSizeRequest")
        if declared.isdigit() and int(declared) > cap:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            if message["type"] != "http.request":
                continue
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _first_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's header fields by lower-case name, the first of each name (what
    Starlette's ``Headers.get`` answers), decoded as Latin-1."""
    out: dict[str, str] = {}
    for name, value in raw:
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _host(raw: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in raw:
        if name == b"host":  # what Starlette's URL takes (ASGI names are lower-case)
            return value
    return None


def _problem_bytes(body: JsonObject) -> bytes:
    """A problem details object (RFC 7807) as Starlette's JSONResponse writes it."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")


_RAW_CORS = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in CORS.items()]


async def _preflight(request: HttpRequest) -> Response:
    """A CORS preflight: answered without credentials, as browsers send none."""
    return Response(status_code=204, headers=PREFLIGHT)


def _problem(body: JsonObject, status: int, headers: Mapping[str, str]) -> Response:
    return JSONResponse(body, status_code=status, headers=dict(headers),
                        media_type=PROBLEM_JSON)
