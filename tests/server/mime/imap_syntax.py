"""A small reader for the IMAP data the renderers produce, to check its grammar in tests.

It reads parenthesised lists, NIL, numbers, quoted strings and literals (RFC 9051 §4) and checks
envelope and body shapes against the §9 grammar (body-type-1part, body-type-mpart, envelope).
"""

from __future__ import annotations

Value = bytes | int | None | list["Value"]


class SyntaxProblem(AssertionError):
    pass


def read(data: bytes) -> Value:
    value, pos = _read(data, 0)
    if pos != len(data):
        raise SyntaxProblem(f"trailing data at {pos}")
    return value


def _read(data: bytes, pos: int) -> tuple[Value, int]:
    if pos >= len(data):
        raise SyntaxProblem("unexpected end")
    ch = data[pos : pos + 1]
    if ch == b"(":
        items: list[Value] = []
        pos += 1
        while True:
            if data[pos : pos + 1] == b")":
                return items, pos + 1
            if items:
                if data[pos : pos + 1] == b" ":
                    pos += 1
                elif data[pos - 1 : pos] != b")" or data[pos : pos + 1] != b"(":
                    raise SyntaxProblem(f"missing space at {pos}")
            item, pos = _read(data, pos)
            items.append(item)
    if ch == b'"':
        out = bytearray()
        pos += 1
        while True:
            c = data[pos : pos + 1]
            if not c or c in b"\r\n":
                raise SyntaxProblem("bad quoted string")
            if c == b"\\":
                nxt = data[pos + 1 : pos + 2]
                if nxt not in (b'"', b"\\"):
                    raise SyntaxProblem("bad escape")
                out += nxt
                pos += 2
                continue
            if c == b'"':
                return bytes(out), pos + 1
            out += c
            pos += 1
    if ch == b"{":
        close = data.index(b"}\r\n", pos)
        size = int(data[pos + 1 : close])
        start = close + 3
        if len(data) < start + size:
            raise SyntaxProblem("short literal")
        body = data[start : start + size]
        if b"\x00" in body:
            raise SyntaxProblem("NUL in literal")
        return body, start + size
    if data.startswith(b"NIL", pos):
        return None, pos + 3
    end = pos
    while end < len(data) and data[end : end + 1].isdigit():
        end += 1
    if end == pos:
        raise SyntaxProblem(f"unexpected {ch!r} at {pos}")
    return int(data[pos:end]), end


def _nstring(v: Value) -> None:
    if v is not None and not isinstance(v, bytes):
        raise SyntaxProblem(f"expected nstring, got {v!r}")


def _string(v: Value) -> None:
    if not isinstance(v, bytes):
        raise SyntaxProblem(f"expected string, got {v!r}")


def _number(v: Value) -> None:
    if not isinstance(v, int) or isinstance(v, bool):
        raise SyntaxProblem(f"expected number, got {v!r}")


def _params(v: Value) -> None:
    if v is None:
        return
    if not isinstance(v, list) or not v or len(v) % 2:
        raise SyntaxProblem(f"bad params {v!r}")
    for x in v:
        _string(x)


def check_envelope(v: Value) -> None:
    if not isinstance(v, list) or len(v) != 10:
        raise SyntaxProblem(f"bad envelope {v!r}")
    _nstring(v[0])
    _nstring(v[1])
    for addrs in v[2:8]:
        if addrs is None:
            continue
        if not isinstance(addrs, list) or not addrs:
            raise SyntaxProblem(f"bad address list {addrs!r}")
        for a in addrs:
            if not isinstance(a, list) or len(a) != 4:
                raise SyntaxProblem(f"bad address {a!r}")
            for x in a:
                _nstring(x)
    _nstring(v[8])
    _nstring(v[9])


def check_body(v: Value, extensible: bool) -> None:
    if not isinstance(v, list) or not v:
        raise SyntaxProblem(f"bad body {v!r}")
    if isinstance(v[0], list):  # body-type-mpart
        i = 0
        while i < len(v) and isinstance(v[i], list):
            check_body(v[i], extensible)
            i += 1
        _string(v[i])
        rest = v[i + 1 :]
        if extensible:
            if len(rest) != 4:
                raise SyntaxProblem(f"bad multipart extension {rest!r}")
            _params(rest[0])
        elif rest:
            raise SyntaxProblem("extension data in BODY")
        return
    if len(v) < 7:
        raise SyntaxProblem(f"short body {v!r}")
    for x in v[:2]:
        _string(x)
    _params(v[2])
    _nstring(v[3])
    _nstring(v[4])
    _string(v[5])
    _number(v[6])
    kind = (v[0], v[1]) if isinstance(v[0], bytes) and isinstance(v[1], bytes) else None
    n = 7
    if (
        kind is not None
        and kind[0].upper() == b"MESSAGE"
        and kind[1].upper() in (b"RFC822", b"GLOBAL")
    ):
        check_envelope(v[7])
        check_body(v[8], extensible)
        _number(v[9])
        n = 10
    elif kind is not None and kind[0].upper() == b"TEXT":
        _number(v[7])
        n = 8
    rest = v[n:]
    if extensible:
        if len(rest) != 4:
            raise SyntaxProblem(f"bad extension {rest!r}")
        _nstring(rest[0])
    elif rest:
        raise SyntaxProblem("extension data in BODY")
