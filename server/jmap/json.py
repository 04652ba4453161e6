"""JSON values as JMAP sees them (I-JSON, RFC 7493, which RFC 8620 section 1.5 requires):
the types, and a strict decoder that refuses what I-JSON refuses."""

from __future__ import annotations

import json
from typing import TypeAlias

import orjson

JsonValue: TypeAlias = (
    "None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]"
)
JsonObject: TypeAlias = "dict[str, JsonValue]"

MAX_DEPTH = 256
"""Deepest nesting of arrays and objects a request may have: far more than any JMAP
request needs, and well inside what the JSON encoder can serialise back."""


class NotJson(ValueError):
    """The bytes are not I-JSON text."""


def _reject_constant(name: str) -> float:
    raise NotJson(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e400: I-JSON numbers are IEEE doubles
        raise NotJson(f"the number {text[:20]} is out of range")
    return value


def _unique(pairs: list[tuple[str, JsonValue]]) -> JsonObject:
    out: JsonObject = {}
    for key, value in pairs:
        if key in out:  # RFC 7493 section 2.3: member names MUST be unique
            raise NotJson(f"duplicate member name {key!r}")
        out[key] = value
    return out


def decode(raw: bytes) -> JsonValue:
    """Parse UTF-8 JSON text (RFC 8259) with I-JSON's rules: no NaN/Infinity, unique member
    names, no lone surrogates, no number out of a double's range; nesting at most
    :data:`MAX_DEPTH`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotJson(f"not UTF-8 (byte {e.start})") from None
    if text.startswith("\ufeff"):
        raise NotJson("a byte order mark is not allowed (RFC 8259 section 8.1)")
    try:
        value: JsonValue = json.loads(text, parse_constant=_reject_constant,
                                      parse_float=_finite, object_pairs_hook=_unique)
    except NotJson:
        raise
    except (ValueError, RecursionError) as e:
        raise NotJson(str(e)) from None
    # a lone surrogate can come only from a \\u escape (strict UTF-8 has none), and
    # nesting deeper than MAX_DEPTH needs as many brackets: most requests have neither
    if b"\\u" in raw or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _check_strings(value)
    return value


def _check_strings(value: JsonValue) -> None:
    """Every string and member name is valid Unicode; nesting is at most MAX_DEPTH."""
    stack: list[tuple[JsonValue, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, list | dict):
            if depth >= MAX_DEPTH:
                raise NotJson(f"nested deeper than {MAX_DEPTH}")
            if isinstance(item, list):
                stack.extend((member, depth + 1) for member in item)
            else:
                for key, member in item.items():
                    _check_text(key)
                    stack.append((member, depth + 1))


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \\uD800 escape
        raise NotJson("a string holds an unpaired surrogate") from None


def encode(value: JsonValue) -> bytes:
    """UTF-8 JSON text; a lone surrogate a method put in a string (from undecodable bytes)
    becomes "?", since I-JSON cannot carry it.  orjson writes it (a tenth of the time of
    the standard library's encoder on a list view's 50 emails) unless the value holds what
    it refuses (a lone surrogate, an integer beyond 64 bits, a key that is no string); it
    writes a float that is no JSON number (NaN, an infinity) as null."""
    try:
        out: bytes = orjson.dumps(value)
        return out
    except TypeError:  # orjson.JSONEncodeError
        pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8", "replace")
