"""Managing app passwords over HTTP on the JMAP port (issue 13), for the user who owns
them; they are JMAP bearer tokens and IMAP/SMTP passwords
(:mod:`server.directory.apppasswords`).

* ``GET /auth/tokens``: ``{"tokens": [{id, name, created, lastUsed, revoked}]}``;
* ``POST /auth/tokens`` with ``{"name": "..."}``: 201 and the token, with its secret
  ``token`` shown this once (``Cache-Control: no-store``);
* ``DELETE /auth/tokens/{id}``: 204; 404 when the account has no such token.

Every one takes HTTP Basic with the directory's password (``password_only``): a
token cannot list, make or revoke tokens.  Bad input is a problem+json 400, never a
500.  Dates are UTC ``Date`` strings as JMAP writes them; null for never."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response

from fdb_layers.tokens import AppToken, TokenError, TooManyTokens
from server.directory.apppasswords import AppPasswords
from server.directory.base import Principal

from .json import JsonObject, JsonValue
from .routes import PROBLEM_JSON, HttpRoute

TOKENS_PATH = "/auth/tokens"
TOKEN_PATH = "/auth/tokens/{tokenId}"
MAX_BODY = 4096  # octets of a create request: a name and nothing more
NO_STORE = {"Cache-Control": "no-store"}


def _date(seconds: int) -> JsonValue:
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_json(t: AppToken) -> JsonObject:
    return {"id": t.id, "name": t.name, "created": _date(t.created),
            "lastUsed": _date(t.last_used), "revoked": _date(t.revoked)}


def _problem(status: int, detail: str) -> Response:
    title = {400: "Bad Request", 404: "Not Found", 409: "Conflict",
             413: "Content Too Large"}[status]
    return JSONResponse({"type": "about:blank", "title": title, "status": status,
                         "detail": detail}, status_code=status, media_type=PROBLEM_JSON,
                        headers=NO_STORE)


class TokenEndpoints:
    def __init__(self, passwords: AppPasswords) -> None:
        self.passwords = passwords

    def routes(self) -> list[HttpRoute]:
        return [HttpRoute(TOKENS_PATH, "tokens", self.collection, ("GET", "POST"),
                          password_only=True),
                HttpRoute(TOKEN_PATH, "tokens", self.one, ("DELETE",), password_only=True)]

    async def collection(self, request: HttpRequest, principal: Principal) -> Response:
        if request.method == "GET":
            tokens = await self.passwords.tokens_of(principal)
            return JSONResponse({"tokens": [token_json(t) for t in tokens]},
                                headers=NO_STORE)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _problem(413, f"a token request is at most {MAX_BODY} octets")
        try:
            args = json.loads(body)
        except (ValueError, RecursionError):
            return _problem(400, "the body is not JSON")
        if not isinstance(args, dict) or set(args) - {"name"} \
                or not isinstance(args.get("name"), str):
            return _problem(400, 'the body is {"name": "<what the token is for>"}')
        try:
            token, secret = await self.passwords.create(principal, args["name"])
        except ValueError as e:
            return _problem(400, str(e))
        except TooManyTokens as e:
            return _problem(409, str(e))
        except TokenError as e:  # a random id taken: astronomically rare, try again
            return _problem(409, str(e))
        return JSONResponse({**token_json(token), "token": secret}, status_code=201,
                            headers=NO_STORE)

    async def one(self, request: HttpRequest, principal: Principal) -> Response:
        token_id = str(request.path_params["tokenId"])
        if not await self.passwords.revoke(principal, token_id):
            return _problem(404, "no such token")
        return Response(status_code=204, headers=NO_STORE)
