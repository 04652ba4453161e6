"""The JMAP Request and Response objects (RFC 8620 sections 3.2-3.4), parsed and
serialised without I/O: bytes in, a frozen :class:`Request` or a :class:`RequestError` out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import RequestError
from .json import JsonObject, JsonValue, NotJson, decode, encode


@dataclass(frozen=True, slots=True)
class Invocation:
    """``[name, arguments, methodCallId]`` (RFC 8620 section 3.2)."""

    name: str
    arguments: Mapping[str, JsonValue]
    call_id: str

    def to_json(self) -> JsonValue:
        return [self.name, dict(self.arguments), self.call_id]


@dataclass(frozen=True, slots=True)
class Request:
    using: tuple[str, ...]
    method_calls: tuple[Invocation, ...]
    created_ids: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Response:
    method_responses: tuple[Invocation, ...]
    session_state: str
    created_ids: Mapping[str, str] | None = None

    def to_json(self) -> JsonObject:
        out: JsonObject = {"methodResponses": [r.to_json() for r in self.method_responses]}
        if self.created_ids is not None:  # section 3.4: only when the request had it
            out["createdIds"] = dict(self.created_ids)
        out["sessionState"] = self.session_state
        return out

    def to_bytes(self) -> bytes:
        return encode(self.to_json())


def parse_request(raw: bytes, *, capabilities: frozenset[str],
                  max_calls: int) -> Request:
    """A Request from the body of a POST to the API URL.

    Errors, in the order checked: ``notJSON`` (not I-JSON in UTF-8), ``notRequest`` (not
    of the Request type), ``unknownCapability`` (``using`` names a capability this server
    does not have), ``limit`` with ``maxCallsInRequest``."""
    try:
        value = decode(raw)
    except NotJson as e:
        raise RequestError("notJSON", f"the request is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise RequestError("notRequest", "the request must be a JSON object")
    using = _using(value.get("using"))
    calls = _method_calls(value.get("methodCalls"))
    created = _created_ids(value.get("createdIds"), "createdIds" in value)
    unknown = [u for u in using if u not in capabilities]
    if unknown:
        raise RequestError("unknownCapability",
                           f"unknown capability in using: {', '.join(unknown)}")
    if len(calls) > max_calls:
        raise RequestError("limit", f"{len(calls)} method calls; at most {max_calls} are "
                           "allowed in one request", limit="maxCallsInRequest")
    return Request(using, calls, created)


def _using(value: JsonValue) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise RequestError("notRequest", "'using' must be an array of capability URIs")
    return tuple(dict.fromkeys(u for u in value if isinstance(u, str)))


def _method_calls(value: JsonValue) -> tuple[Invocation, ...]:
    if not isinstance(value, list):
        raise RequestError("notRequest", "'methodCalls' must be an array of Invocations")
    return tuple(_invocation(i, item) for i, item in enumerate(value))


def _invocation(index: int, item: JsonValue) -> Invocation:
    if isinstance(item, list) and len(item) == 3:
        name, arguments, call_id = item
        if isinstance(name, str) and isinstance(arguments, dict) \
                and isinstance(call_id, str):
            return Invocation(name, arguments, call_id)
    raise RequestError("notRequest", f"methodCalls[{index}] is not [String, Object, String]")


def _created_ids(value: JsonValue, present: bool) -> dict[str, str] | None:
    if not present:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise RequestError("notRequest", "'createdIds' must map creation ids to ids")
    return {k: v for k, v in value.items() if isinstance(v, str)}

