"""The selected mailbox's UID map (RFC 9051 section 2.3.1.2: sequence number n is the
n-th UID in ascending order), kept as runs of consecutive UIDs rather than one int per
message: a 1,000,000-message mailbox delivered in order is one run.  Sequence number <->
UID is a binary search over the runs' cumulative counts.

It is a ``Sequence[int]`` (``uids[n - 1]`` is the UID of sequence number n, ``len``,
iteration, ``bisect``) with the few list mutations the session needs, so handlers that
treat it as a sorted list of UIDs keep working.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import overload


class UidMap(Sequence[int]):
    __slots__ = ("_firsts", "_lasts", "_before")

    def __init__(self, uids: Iterable[int] = ()) -> None:
        self._firsts: list[int] = []   # first UID of each run
        self._lasts: list[int] = []    # last UID of each run
        self._before: list[int] = []   # messages in the runs before this one
        self.extend(uids)

    @classmethod
    def from_runs(cls, runs: Iterable[tuple[int, int]]) -> UidMap:
        """From ascending, disjoint (first, last) runs (what the layer's compact map holds)."""
        m = cls()
        for first, last in runs:
            m._add_run(first, last)
        return m

    def runs(self) -> list[tuple[int, int]]:
        return list(zip(self._firsts, self._lasts, strict=True))

    # -- Sequence -----------------------------------------------------------------------

    def __len__(self) -> int:
        if not self._firsts:
            return 0
        return self._before[-1] + self._lasts[-1] - self._firsts[-1] + 1

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> list[int]: ...

    def __getitem__(self, i: int | slice) -> int | list[int]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step == 1:
                return self.between(start, stop)
            return [self[j] for j in range(start, stop, step)]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("sequence number out of range")
        r = bisect_right(self._before, i) - 1
        return self._firsts[r] + i - self._before[r]

    def between(self, start: int, stop: int) -> list[int]:
        """The UIDs at 0-based positions ``start`` to ``stop - 1`` (``self[start:stop]``),
        run by run rather than a search per position: a FETCH reads its set this way."""
        start, stop = max(start, 0), min(stop, len(self))
        out: list[int] = []
        if start >= stop:
            return out
        r = bisect_right(self._before, start) - 1
        while start < stop:
            first = self._firsts[r] + start - self._before[r]
            take = min(stop - start, self._lasts[r] - first + 1)
            out += range(first, first + take)
            start += take
            r += 1
        return out

    def __iter__(self) -> Iterator[int]:
        for first, last in zip(self._firsts, self._lasts, strict=True):
            yield from range(first, last + 1)

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self._run_of(uid) >= 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, UidMap):
            return self.runs() == other.runs()
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"UidMap.from_runs({self.runs()!r})"

    def index(self, uid: int, start: int = 0, stop: int | None = None) -> int:
        """0-based position of ``uid`` (sequence number - 1); ValueError if absent."""
        r = self._run_of(uid)
        if r < 0:
            raise ValueError(f"UID {uid} is not in the map")
        i = self._before[r] + uid - self._firsts[r]
        if i < start or (stop is not None and i >= stop):
            raise ValueError(f"UID {uid} is not in the range")
        return i

    def seq(self, uid: int) -> int:
        """Sequence number of ``uid``, 0 if it is not in the map."""
        r = self._run_of(uid)
        return 0 if r < 0 else self._before[r] + uid - self._firsts[r] + 1

    def count_below(self, uid: int) -> int:
        """How many UIDs in the map are lower than ``uid`` (a UID range's first sequence
        number is this + 1)."""
        r = bisect_right(self._firsts, uid) - 1
        if r < 0:
            return 0
        return self._before[r] + min(uid, self._lasts[r] + 1) - self._firsts[r]

    @property
    def last(self) -> int:
        """The highest UID, 0 when empty."""
        return self._lasts[-1] if self._lasts else 0

    # -- changes ------------------------------------------------------------------------

    def append(self, uid: int) -> None:
        if self._lasts and uid <= self._lasts[-1]:
            raise ValueError("UIDs are appended in ascending order")
        if self._lasts and uid == self._lasts[-1] + 1:
            self._lasts[-1] = uid
        else:
            self._add_run(uid, uid)

    def extend(self, uids: Iterable[int]) -> None:
        for uid in uids:
            self.append(uid)

    def remove(self, uid: int) -> None:
        """Take ``uid`` out (an expunge); ValueError if absent."""
        r = self._run_of(uid)
        if r < 0:
            raise ValueError(f"UID {uid} is not in the map")
        first, last = self._firsts[r], self._lasts[r]
        if first == last:
            del self._firsts[r], self._lasts[r], self._before[r]
        elif uid == first:
            self._firsts[r] = uid + 1
        elif uid == last:
            self._lasts[r] = uid - 1
        else:
            self._lasts[r] = uid - 1
            self._firsts.insert(r + 1, uid + 1)
            self._lasts.insert(r + 1, last)
            self._before.insert(r + 1, 0)
        self._recount(r)

    def discard(self, uid: int) -> bool:
        if uid in self:
            self.remove(uid)
            return True
        return False

    # -- internals ----------------------------------------------------------------------

    def _add_run(self, first: int, last: int) -> None:
        if first > last or first < 1 or (self._lasts and first <= self._lasts[-1]):
            raise ValueError("runs must be ascending and disjoint")
        before = len(self)
        if self._lasts and first == self._lasts[-1] + 1:
            self._lasts[-1] = last
            return
        self._firsts.append(first)
        self._lasts.append(last)
        self._before.append(before)

    def _run_of(self, uid: int) -> int:
        r = bisect_right(self._firsts, uid) - 1
        return r if r >= 0 and uid <= self._lasts[r] else -1

    def _recount(self, start: int) -> None:
        total = self._before[start - 1] + self._lasts[start - 1] - self._firsts[start - 1] + 1 \
            if start > 0 else 0
        for r in range(start, len(self._firsts)):
            self._before[r] = total
            total += self._lasts[r] - self._firsts[r] + 1

