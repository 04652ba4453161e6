"""Pieces shared by engines that buffer writes themselves (sqlite): the
mutation kinds, FoundationDB's atomic-op arithmetic, limit checks and
conflict-range arithmetic."""

from __future__ import annotations

import bisect
import enum
import struct
from dataclasses import dataclass

from .base import (
    MAX_KEY_SIZE,
    MAX_VALUE_SIZE,
    VERSIONSTAMP_SIZE,
    InvalidOperation,
    InvertedRange,
    KeyOutsideLegalRange,
    KeyTooLarge,
    ValueTooLarge,
)


class Op(enum.Enum):
    SET = "set"
    CLEAR = "clear"
    CLEAR_RANGE = "clear_range"
    ADD = "add"
    MAX = "max"
    MIN = "min"
    COMPARE_AND_CLEAR = "compare_and_clear"
    VS_KEY = "set_versionstamped_key"
    VS_VALUE = "set_versionstamped_value"


ATOMIC = frozenset({Op.ADD, Op.MAX, Op.MIN, Op.COMPARE_AND_CLEAR})


@dataclass(frozen=True, slots=True)
class Mutation:
    op: Op
    key: bytes
    param: bytes = b""  # value, atomic operand, or range end for CLEAR_RANGE


def check_key(key: bytes, *, allow_end: bool = False) -> None:
    """FoundationDB refuses keys over 10,000 bytes and (for user transactions)
    keys in the system range ``\\xff...``."""
    if not isinstance(key, bytes):
        raise InvalidOperation(f"keys are bytes, not {type(key).__name__}")
    if len(key) > MAX_KEY_SIZE:
        raise KeyTooLarge(f"key of {len(key)} bytes exceeds {MAX_KEY_SIZE}")
    if key.startswith(b"\xff") and not (allow_end and key == b"\xff"):
        raise KeyOutsideLegalRange("keys starting with 0xFF are reserved for the system")


def check_value(value: bytes) -> None:
    if not isinstance(value, bytes):
        raise InvalidOperation(f"values are bytes, not {type(value).__name__}")
    if len(value) > MAX_VALUE_SIZE:
        raise ValueTooLarge(f"value of {len(value)} bytes exceeds {MAX_VALUE_SIZE}")


def check_range(begin: bytes, end: bytes) -> None:
    check_key(begin, allow_end=True)
    check_key(end, allow_end=True)
    if begin > end:
        raise InvertedRange("range begin is after its end")


def encode_add(delta: int) -> bytes:
    return struct.pack("<q", delta) if delta < 0 else struct.pack("<Q", delta & (2**64 - 1))


def encode_unsigned(value: int) -> bytes:
    if value < 0:
        raise InvalidOperation("max/min operands are unsigned")
    return struct.pack("<Q", value)


def apply_atomic(op: Op, existing: bytes | None, param: bytes) -> bytes | None:
    """FoundationDB's atomic-op semantics on little-endian integers of the
    operand's length (an absent value counts as zeros, except for MIN)."""
    n = len(param)
    if op is Op.COMPARE_AND_CLEAR:
        return None if existing == param else existing
    if op is Op.ADD:
        base = (existing or b"")[:n].ljust(n, b"\x00")
        total = (int.from_bytes(base, "little") + int.from_bytes(param, "little")) % (1 << (8 * n))
        return total.to_bytes(n, "little") if n else b""
    if op is Op.MAX:
        if existing is None:
            return param
        base = existing[:n].ljust(n, b"\x00")
        return param if int.from_bytes(param, "little") > int.from_bytes(base, "little") else base
    if op is Op.MIN:
        if existing is None:
            return param
        base = existing[:n].ljust(n, b"\x00")
        return param if int.from_bytes(param, "little") < int.from_bytes(base, "little") else base
    raise InvalidOperation(f"{op} is not an atomic op")


def split_versionstamp(data: bytes) -> tuple[bytes, int]:
    """Strip the trailing 4-byte little-endian placeholder offset and check it."""
    if len(data) < 4:
        raise InvalidOperation("versionstamped data needs a 4-byte offset suffix")
    body, offset = data[:-4], struct.unpack("<I", data[-4:])[0]
    if offset + VERSIONSTAMP_SIZE > len(body):
        raise InvalidOperation("versionstamp offset points past the end of the data")
    return body, offset


def fill_versionstamp(body: bytes, offset: int, stamp: bytes) -> bytes:
    return body[:offset] + stamp + body[offset + VERSIONSTAMP_SIZE:]


def make_versionstamp(version: int, batch_order: int) -> bytes:
    return struct.pack(">QH", version, batch_order)


def key_after(key: bytes) -> bytes:
    """The smallest key greater than ``key``."""
    return key + b"\x00"


class RangeSet:
    """A set of half-open byte ranges [begin, end), kept sorted and merged."""

    __slots__ = ("_begins", "_ends")

    def __init__(self) -> None:
        self._begins: list[bytes] = []
        self._ends: list[bytes] = []

    def __bool__(self) -> bool:
        return bool(self._begins)

    def __len__(self) -> int:
        return len(self._begins)

    def add(self, begin: bytes, end: bytes) -> None:
        if begin >= end:
            return
        i = bisect.bisect_left(self._ends, begin)  # first range that ends at/after begin
        j = bisect.bisect_right(self._begins, end)  # ranges starting after end stay
        if i < j:
            begin = min(begin, self._begins[i])
            end = max(end, self._ends[j - 1])
        self._begins[i:j] = [begin]
        self._ends[i:j] = [end]

    def add_key(self, key: bytes) -> None:
        self.add(key, key_after(key))

    def contains(self, key: bytes) -> bool:
        i = bisect.bisect_right(self._begins, key) - 1
        return i >= 0 and key < self._ends[i]

    def intersects(self, begin: bytes, end: bytes) -> bool:
        if begin >= end:
            return False
        i = bisect.bisect_right(self._begins, begin) - 1
        if i >= 0 and begin < self._ends[i]:
            return True
        k = i + 1
        return k < len(self._begins) and self._begins[k] < end

    def intersects_set(self, other: RangeSet) -> bool:
        small, big = (self, other) if len(self) <= len(other) else (other, self)
        return any(big.intersects(b, e) for b, e in zip(small._begins, small._ends, strict=True))

    def ranges(self) -> list[tuple[bytes, bytes]]:
        return list(zip(self._begins, self._ends, strict=True))

    def gaps(self, begin: bytes, end: bytes) -> list[tuple[bytes, bytes]]:
        """The parts of [begin, end) that no range of the set covers, in order."""
        out: list[tuple[bytes, bytes]] = []
        i = max(bisect.bisect_right(self._begins, begin) - 1, 0)
        while begin < end and i < len(self._begins) and self._begins[i] < end:
            if self._ends[i] > begin:
                if self._begins[i] > begin:
                    out.append((begin, self._begins[i]))
                begin = self._ends[i]
            i += 1
        if begin < end:
            out.append((begin, end))
        return out

    def remove(self, begin: bytes, end: bytes) -> None:
        """Take [begin, end) out of the set (ranges partly inside it are cut)."""
        if begin >= end:
            return
        i = bisect.bisect_right(self._ends, begin)  # first range that ends after begin
        j = bisect.bisect_left(self._begins, end)  # ranges starting at/after end stay
        if i >= j:
            return
        keep = [(b, e) for b, e in ((self._begins[i], begin), (end, self._ends[j - 1])) if b < e]
        self._begins[i:j] = [b for b, _ in keep]
        self._ends[i:j] = [e for _, e in keep]

    def byte_size(self) -> int:
        return sum(len(b) + len(e) for b, e in zip(self._begins, self._ends, strict=True))


class ConflictSet:
    """Keys and ranges a transaction read or wrote, for conflict checks.

    Transactions touch few keys and fewer ranges, so points live in a set
    (O(1) to add; set intersection for point/point) and ranges in a list."""

    __slots__ = ("points", "ranges")

    def __init__(self) -> None:
        self.points: set[bytes] = set()
        self.ranges: list[tuple[bytes, bytes]] = []

    def __bool__(self) -> bool:
        return bool(self.points) or bool(self.ranges)

    def add_key(self, key: bytes) -> None:
        self.points.add(key)

    def add(self, begin: bytes, end: bytes) -> None:
        if begin < end:
            self.ranges.append((begin, end))

    def contains(self, key: bytes) -> bool:
        return key in self.points or any(b <= key < e for b, e in self.ranges)

    def intersects(self, other: ConflictSet) -> bool:
        if not self.points.isdisjoint(other.points):
            return True
        for b, e in other.ranges:
            if any(b <= k < e for k in self.points):
                return True
            if any(b < re and rb < e for rb, re in self.ranges):
                return True
        return any(b <= k < e for b, e in self.ranges for k in other.points)

    def byte_size(self) -> int:
        return sum(map(len, self.points)) + sum(len(b) + len(e) for b, e in self.ranges)
