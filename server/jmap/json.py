"""JSON values as JMAP sees them (I-JSON, RFC 7493, which RFC 8620 section 1.5 requires):
the types, and a strict decoder that refuses what I-JSON refuses."""

from __future__ import annotations

import json
from typing import TypeAlias

JsonValue: TypeAlias = (
    "None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]"
)
JsonObject: TypeAlias = "dict[str, JsonValue]"

class NotJson(ValueError):
    """The bytes are not I-JSON text."""


def _reject_constant(name: str) -> float:
    raise NotJson(f"{name} is not JSON")


def _unique(pairs: list[tuple[str, JsonValue]]) -> JsonObject:
    out: JsonObject = {}
    for key, value in pairs:
        if key in out:  # RFC 7493 section 2.3: member names MUST be unique
            raise NotJson(f"duplicate member name {key!r}")
        out[key] = value
    return out


def decode(raw: bytes) -> JsonValue:
    """Parse UTF-8 JSON text (RFC 8259) with I-JSON's rules: no NaN/Infinity, unique member
    names, no lone surrogates.  Nesting deeper than the interpreter's recursion limit is
    refused too (the decoder's RecursionError)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotJson(f"not UTF-8 (byte {e.start})") from None
    if text.startswith("\ufeff"):
        raise NotJson("a byte order mark is not allowed (RFC 8259 section 8.1)")
    try:
        value: JsonValue = json.loads(text, parse_constant=_reject_constant,
                                      object_pairs_hook=_unique)
    except NotJson:
        raise
    except (ValueError, RecursionError) as e:
        raise NotJson(str(e)) from None
    _check_strings(value)
    return value


def _check_strings(value: JsonValue) -> None:
    stack: list[JsonValue] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, member in item.items():
                _check_text(key)
                stack.append(member)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \\uD800 escape
        raise NotJson("a string holds an unpaired surrogate") from None


def encode(value: JsonValue) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")
