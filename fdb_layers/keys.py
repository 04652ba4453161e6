"""Key encoding: FoundationDB's tuple layer and subspaces.

``fdb.tuple`` works without the FoundationDB client library, except that
packing a :class:`Versionstamp` looks up ``fdb.impl.Value``, and importing
``fdb.impl`` loads ``libfdb_c``.  Where the library is absent we give the tuple
module a stand-in ``fdb.impl`` holding only that class name, so versionstamped
keys pack the same bytes on every engine.
"""

from __future__ import annotations

import importlib
import struct
import types
from collections.abc import Sequence
from typing import Any

import fdb
import fdb.tuple as _tuple


def _ensure_tuple_layer_works() -> None:
    if hasattr(fdb, "impl"):
        return
    try:
        importlib.import_module("fdb.impl")  # loads libfdb_c where it is installed
    except Exception:  # the client library is missing: only Value is needed

        class _Value:  # nothing is ever an instance of it
            pass

        fdb.impl = types.SimpleNamespace(Value=_Value)


_ensure_tuple_layer_works()

Versionstamp = _tuple.Versionstamp
TupleElement = Any  # str | bytes | int | float | bool | None | uuid | Versionstamp | tuple


def pack(t: Sequence[TupleElement]) -> bytes:
    """The tuple layer's encoding, with a fast path for what the layers store most
    (NUL-free or not strings and bytes, integers within 64 bits, floats, booleans, None,
    nested tuples of those); a tuple holding anything else (UUIDs, versionstamps, wider
    integers) goes through the binding whole, so the bytes are always the binding's
    (tests/fdb_layers/test_keys.py checks it on random tuples)."""
    out = bytearray()
    if _encode_into(out, t, False):
        return bytes(out)
    return bytes(_tuple.pack(tuple(t)))


_INT_MAX = (1 << 64) - 1      # the binding's 1-8 byte codes stop below it (0x1D, 0x0B past)
_DOUBLE = struct.Struct(">d")


def _encode_into(out: bytearray, items: Sequence[TupleElement], nested: bool) -> bool:
    """Append the encoding of ``items``; False (``out`` then unusable) at an element the
    fast path leaves to the binding."""
    for x in items:
        kind = type(x)
        if kind is str:
            raw = x.encode("utf-8")
            out += b"\x02"
            out += raw.replace(b"\x00", b"\x00\xff") if b"\x00" in raw else raw
            out += b"\x00"
        elif kind is int:
            if x == 0:
                out += b"\x14"
            elif 0 < x < _INT_MAX:
                n = (x.bit_length() + 7) // 8
                out.append(0x14 + n)
                out += x.to_bytes(n, "big")
            elif -_INT_MAX < x < 0:
                n = ((-x).bit_length() + 7) // 8
                out.append(0x14 - n)
                out += (x + (1 << (8 * n)) - 1).to_bytes(n, "big")
            else:
                return False
        elif kind is bytes:
            out += b"\x01"
            out += x.replace(b"\x00", b"\x00\xff") if b"\x00" in x else x
            out += b"\x00"
        elif kind is float:
            raw = bytearray(_DOUBLE.pack(x))
            if raw[0] & 0x80:               # negative: every bit flipped
                raw = bytearray(b ^ 0xFF for b in raw)
            else:                           # positive: the sign bit set
                raw[0] ^= 0x80
            out += b"\x21"
            out += raw
        elif kind is tuple:
            out += b"\x05"
            if not _encode_into(out, x, True):
                return False
            out += b"\x00"
        elif x is None:
            out += b"\x00\xff" if nested else b"\x00"
        elif kind is bool:
            out += b"\x27" if x else b"\x26"
        else:
            return False
    return True


def unpack(key: bytes) -> tuple[TupleElement, ...]:
    """The tuple layer's decoding, with a fast path for what the layers store most
    (integers, strings and bytes without NUL, nested tuples); every other element, and
    anything unusual, goes through the binding's own decoder, so the result is always
    the binding's (tests/fdb_layers/test_keys.py checks it on random tuples)."""
    v = bytes(key)
    end = len(v)
    pos = 0
    out: list[TupleElement] = []
    while pos < end:
        item, pos = _decode(v, pos, end)
        out.append(item)
    return tuple(out)


def unpack_prefix(key: bytes, count: int) -> tuple[TupleElement, ...]:
    """The first ``count`` elements of a packed tuple (what :func:`unpack` gives, cut),
    without decoding the rest."""
    v = bytes(key)
    end = len(v)
    pos = 0
    out: list[TupleElement] = []
    while pos < end and len(out) < count:
        item, pos = _decode(v, pos, end)
        out.append(item)
    return tuple(out)


_decode_general = _tuple._decode  # the binding's decoder of one element


def _decode(v: bytes, pos: int, end: int) -> tuple[TupleElement, int]:
    code = v[pos]
    if 0x14 <= code <= 0x1C:  # integers of 0-8 bytes
        stop = pos + 1 + code - 0x14
        if stop <= end:
            return int.from_bytes(v[pos + 1:stop], "big"), stop
    elif 0x0C <= code < 0x14:  # negative integers of 1-8 bytes
        n = 0x14 - code
        stop = pos + 1 + n
        if stop <= end:
            return int.from_bytes(v[pos + 1:stop], "big") - ((1 << (8 * n)) - 1), stop
    elif code == 0x01 or code == 0x02:  # bytes, string: terminated by NUL
        stop = v.find(b"\x00", pos + 1)
        if stop < 0 or (stop + 1 < end and v[stop + 1] == 0xFF):  # escaped NUL
            item: TupleElement
            item, stop = _decode_general(v, pos)
            return item, stop
        raw = v[pos + 1:stop]
        return (raw.decode("utf-8") if code == 0x02 else raw), stop + 1
    elif code == 0x05:  # nested tuple, NUL-terminated; a NUL inside is \x00\xff
        items: list[TupleElement] = []
        pos += 1
        while pos < end:
            if v[pos] == 0x00:
                if pos + 1 < end and v[pos + 1] == 0xFF:
                    items.append(None)
                    pos += 2
                    continue
                break
            item, pos = _decode(v, pos, end)
            items.append(item)
        return tuple(items), pos + 1
    item, stop = _decode_general(v, pos)
    return item, stop


def pack_with_versionstamp(t: Sequence[TupleElement], prefix: bytes = b"") -> bytes:
    """Pack a tuple holding one incomplete :class:`Versionstamp`, for
    ``set_versionstamped_key``; the result ends with the 4-byte placeholder offset."""
    return bytes(_tuple.pack_with_versionstamp(tuple(t), prefix=prefix))


def strinc(key: bytes) -> bytes:
    """The first key after every key that starts with ``key``."""
    stripped = key.rstrip(b"\xff")
    if not stripped:
        raise ValueError("key must contain at least one byte not equal to 0xFF")
    return stripped[:-1] + bytes([stripped[-1] + 1])


class Subspace:
    """A key prefix; keys inside it are the prefix plus a packed tuple."""

    __slots__ = ("raw_prefix",)

    def __init__(self, prefix_tuple: Sequence[TupleElement] = (), raw_prefix: bytes = b"") -> None:
        self.raw_prefix = raw_prefix + pack(prefix_tuple)

    def __repr__(self) -> str:
        return f"Subspace({self.raw_prefix!r})"

    def key(self) -> bytes:
        return self.raw_prefix

    def pack(self, t: Sequence[TupleElement] = ()) -> bytes:
        return self.raw_prefix + pack(t)

    def pack_with_versionstamp(self, t: Sequence[TupleElement]) -> bytes:
        return pack_with_versionstamp(t, prefix=self.raw_prefix)

    def unpack(self, key: bytes) -> tuple[TupleElement, ...]:
        if not self.contains(key):
            raise ValueError("key is not in this subspace")
        return unpack(key[len(self.raw_prefix):])

    def contains(self, key: bytes) -> bool:
        return key.startswith(self.raw_prefix)

    def range(self, t: Sequence[TupleElement] = ()) -> tuple[bytes, bytes]:
        """Begin and end of every key strictly inside ``self[t]`` (FoundationDB's
        ``Subspace.range``: excludes the key ``self.pack(t)`` itself)."""
        p = self.pack(t)
        return p + b"\x00", p + b"\xff"

    def __getitem__(self, item: TupleElement) -> Subspace:
        return self.subspace((item,))

    def subspace(self, t: Sequence[TupleElement]) -> Subspace:
        return Subspace(t, self.raw_prefix)


def encode_int(n: int) -> bytes:
    """A little-endian signed 64-bit value, as the atomic ADD/MAX/MIN ops use."""
    return n.to_bytes(8, "little", signed=True)


def decode_int(value: bytes | None) -> int:
    """Decode an atomic counter (absent reads as 0)."""
    if not value:
        return 0
    return int.from_bytes(value[:8].ljust(8, b"\x00"), "little", signed=True)
