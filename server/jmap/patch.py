"""PatchObject (RFC 8620 section 5.3): how a /set update changes part of an object.

Each key is a JSON Pointer without its leading ``/``; its value replaces what the pointer
names, or ``null`` removes it (or restores the property's default).  Every rule of the
section is an ``invalidPatch`` SetError: no pointer into an array, every part before the
last must exist, and no pointer may be a prefix of another."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from .errors import SetError
from .json import JsonObject, JsonValue
from .pointer import PointerError, parse_pointer


def parse_patch(patch: Mapping[str, JsonValue]) -> list[tuple[tuple[str, ...], JsonValue]]:
    """The patch's (tokens, value) pairs, checked for the rules that need no object."""
    parsed: list[tuple[tuple[str, ...], JsonValue]] = []
    for key, value in patch.items():
        try:
            tokens = parse_pointer("/" + key)
        except PointerError as e:
            raise SetError("invalidPatch", f"{key!r}: {e}") from None
        parsed.append((tokens, value))
    ordered = sorted(t for t, _ in parsed)
    for shorter, longer in zip(ordered, ordered[1:], strict=False):
        if longer[:len(shorter)] == shorter:  # sorted: a prefix comes right before
            raise SetError("invalidPatch", f"{'/'.join(shorter)!r} is a prefix of "
                           f"{'/'.join(longer)!r}")
    return parsed


def apply_patch(record: JsonObject, patch: Mapping[str, JsonValue], *,
                defaults: Mapping[str, JsonValue] | None = None) -> JsonObject:
    """A patched copy of ``record`` (which is left as it is).  ``defaults``: the value a
    top-level property takes when the patch sets it to null (absent: it is removed)."""
    out = copy.deepcopy(record)
    for tokens, value in parse_patch(patch):
        parent: JsonValue = out
        for i, token in enumerate(tokens[:-1]):
            if not isinstance(parent, dict):
                raise SetError("invalidPatch", f"{'/'.join(tokens[:i])!r} is not an object")
            if token not in parent:
                raise SetError("invalidPatch", f"{'/'.join(tokens[:i + 1])!r} does not "
                               "exist")
            parent = parent[token]
        if not isinstance(parent, dict):
            raise SetError("invalidPatch", f"{'/'.join(tokens)!r} points into "
                           f"{'an array' if isinstance(parent, list) else 'a value'}")
        last = tokens[-1]
        if value is not None:
            parent[last] = copy.deepcopy(value)
        elif len(tokens) == 1 and defaults is not None and last in defaults:
            parent[last] = copy.deepcopy(defaults[last])
        else:
            parent.pop(last, None)
    return out
