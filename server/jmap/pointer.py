"""JSON Pointer (RFC 6901) with JMAP's ``*`` extension (RFC 8620 section 3.7).

``*`` applied to an array evaluates the rest of the pointer against every item, in order,
and returns the results as one array; a result that is itself an array is spliced in
rather than nested (``/list/*/ids`` over ``[{"ids": [1, 2]}, {"ids": [3]}]`` is
``[1, 2, 3]``).  Every way a pointer can fail raises :class:`PointerError`, which the
request pipeline turns into ``invalidResultReference``.
"""

from __future__ import annotations

from .json import JsonValue


class PointerError(ValueError):
    """The pointer is malformed or names nothing in the value."""


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The unescaped reference tokens of ``pointer`` (RFC 6901 sections 3 and 4).

    JMAP paths are written without the URI fragment form; an empty pointer is the whole
    value.  ``~`` must be followed by ``0`` or ``1``."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise PointerError(f"a JSON pointer starts with '/': {pointer!r}")
    tokens: list[str] = []
    for raw in pointer[1:].split("/"):
        tokens.append(_unescape(raw))
    return tuple(tokens)


def _unescape(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "~":
            nxt = raw[i + 1:i + 2]
            if nxt == "0":
                out.append("~")
            elif nxt == "1":
                out.append("/")
            else:
                raise PointerError(f"'~' must be followed by 0 or 1 in {raw!r}")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def escape_token(token: str) -> str:
    """The inverse of the unescaping of one token (``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def resolve_pointer(value: JsonValue, pointer: str) -> JsonValue:
    """The value ``pointer`` names in ``value``, with the ``*`` extension."""
    return _resolve(value, parse_pointer(pointer))


def _resolve(value: JsonValue, tokens: tuple[str, ...]) -> JsonValue:
    for i, token in enumerate(tokens):
        if isinstance(value, dict):
            if token not in value:
                raise PointerError(f"no member {token!r}")
            value = value[token]
        elif isinstance(value, list):
            if token == "*":
                rest = tokens[i + 1:]
                out: list[JsonValue] = []
                for item in value:
                    got = _resolve(item, rest)
                    if isinstance(got, list):
                        out.extend(got)
                    else:
                        out.append(got)
                return out
            value = value[_index(token, len(value))]
        else:
            raise PointerError(f"{token!r} applied to a {type(value).__name__}, "
                               "not an object or array")
    return value


def _index(token: str, length: int) -> int:
    # RFC 6901 section 4: array-index = %x30 / ( %x31-39 *(%x30-39) ); "-" names the
    # (nonexistent) element after the last one.
    if not token or not token.isascii() or not token.isdigit() \
            or (len(token) > 1 and token[0] == "0"):
        raise PointerError(f"{token!r} is not an array index")
    index = int(token)
    if index >= length:
        raise PointerError(f"index {index} is past the end of an array of {length}")
    return index
