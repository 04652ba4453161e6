"""Conflict ranges: the keys and ranges a transaction read or wrote (a
:class:`ConflictSet`), and sorted merged ranges (a :class:`RangeSet`) for what a
transaction cleared or may not read."""

from __future__ import annotations

import bisect

from .mutations import key_after


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
