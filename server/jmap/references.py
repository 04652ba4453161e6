"""Result references (RFC 8620 section 3.7): an argument named ``#name`` whose value is a
ResultReference ``{"resultOf", "name", "path"}`` takes its value from an earlier response
in the same request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import MethodError
from .json import JsonValue
from .pointer import PointerError, resolve_pointer
from .request import Invocation


def resolve_references(arguments: Mapping[str, JsonValue],
                       responses: Sequence[Invocation]) -> dict[str, JsonValue]:
    """``arguments`` with every ``#name`` replaced by ``name`` and its resolved value.

    An argument given both plain and as a reference is ``invalidArguments``; a reference
    that is malformed, names no earlier response (the first one with that call id), names
    a response of another name, or whose path does not resolve is
    ``invalidResultReference``."""
    out: dict[str, JsonValue] = {}
    for key, value in arguments.items():
        if not key.startswith("#"):
            out[key] = value
            continue
        name = key[1:]
        if name in arguments:
            raise MethodError("invalidArguments",
                              f"argument {name!r} is given both plain and as {key!r}")
        out[name] = _resolve(key, value, responses)
    return out


def _resolve(key: str, ref: JsonValue, responses: Sequence[Invocation]) -> JsonValue:
    if not isinstance(ref, dict) or set(ref) != {"resultOf", "name", "path"} \
            or not all(isinstance(v, str) for v in ref.values()):
        raise MethodError("invalidResultReference",
                          f"{key!r} is not a ResultReference (resultOf, name, path)")
    result_of, name, path = ref["resultOf"], ref["name"], ref["path"]
    assert isinstance(result_of, str) and isinstance(name, str) and isinstance(path, str)
    for response in responses:
        if response.call_id == result_of:
            break
    else:
        raise MethodError("invalidResultReference",
                          f"{key!r}: no earlier response with call id {result_of!r}")
    if response.name != name:
        raise MethodError("invalidResultReference",
                          f"{key!r}: the response {result_of!r} is {response.name!r}, "
                          f"not {name!r}")
    try:
        return _own(resolve_pointer(dict(response.arguments), path))
    except PointerError as e:
        raise MethodError("invalidResultReference", f"{key!r}: path {path!r}: {e}") \
            from None


def _own(value: JsonValue) -> JsonValue:
    """A copy of a value taken from an earlier response, the calling method's own: a
    response may hold objects that a process keeps for later requests (Email/get's list
    view, .state_cache), which no method's arguments may change."""
    if type(value) is list:
        return [_own(v) for v in value]
    if type(value) is dict:
        return {k: _own(v) for k, v in value.items()}
    return value
