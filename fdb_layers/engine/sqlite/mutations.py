"""What a transaction writes: the mutation kinds, FoundationDB's limit checks,
its atomic-op arithmetic and versionstamps."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from ..base import (
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
