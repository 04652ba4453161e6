"""Node-local counters JMAP keeps: failed logins per client IP (a sliding window) and
API requests in progress per account (maxConcurrentRequests).  Both are per process;
the node's shared limits replace the first when they exist."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

Clock = Callable[[], float]


class FailureWindow:
    """At most ``limit`` failures per key within ``window`` seconds; the oldest keys are
    forgotten beyond ``capacity`` so that a flood of addresses cannot grow it unbounded."""

    def __init__(self, limit: int, window: float, *, clock: Clock = time.monotonic,
                 capacity: int = 100_000) -> None:
        self.limit, self.window, self._clock, self._capacity = limit, window, clock, capacity
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        horizon = self._clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def blocked(self, key: str) -> bool:
        times = self._recent(key)
        return times is not None and len(times) >= self.limit

    def failed(self, key: str) -> None:
        times = self._recent(key)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.limit)
        self._failures.move_to_end(key)
        times.append(self._clock())
        while len(self._failures) > self._capacity:
            self._failures.popitem(last=False)


class InFlight:
    """Requests in progress per key, at most ``limit`` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def acquire(self, key: str) -> bool:
        count = self._counts.get(key, 0)
        if count >= self.limit:
            return False
        self._counts[key] = count + 1
        return True

    def release(self, key: str) -> None:
        count = self._counts.get(key, 0) - 1
        if count > 0:
            self._counts[key] = count
        else:
            self._counts.pop(key, None)
