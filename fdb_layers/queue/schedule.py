"""The retry schedule: when a deferred message is tried again, when its sender
hears that it is delayed, when the queue gives up.  Pure: no store, no clock.

Defaults as Postfix and Stalwart: 2m, 5m, 10m, 15m, 30m, 1h, 2h, then every 2h;
a delay notice after 4 hours in the queue; a bounce after 5 days.
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetrySettings:
    # seconds to wait after the n-th failed attempt (the last one repeats)
    intervals: tuple[float, ...] = (
        2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR,
    )
    delay_notice_after: float = 4 * HOUR  # 0: no delay notices
    give_up_after: float = 5 * DAY
    lease_seconds: float = 10 * MINUTE  # how long a worker may hold a message

    def __post_init__(self) -> None:
        if not self.intervals or any(i <= 0 for i in self.intervals):
            raise ValueError("retry intervals must be a non-empty list of positive seconds")
        if self.delay_notice_after < 0 or self.give_up_after <= 0 or self.lease_seconds <= 0:
            raise ValueError("delay notice, give-up and lease times must be positive")


def retry_interval(settings: RetrySettings, attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts (1 for the first)."""
    index = min(max(attempts, 1), len(settings.intervals)) - 1
    return settings.intervals[index]


def next_due_at(settings: RetrySettings, attempts: int, created_at: float,
                now: float) -> float | None:
    """When to try again after ``attempts`` failed attempts at ``now``; None once
    the message has been queued longer than ``give_up_after`` (bounce it).  The
    last retry is moved to the give-up time rather than past it."""
    give_up = created_at + settings.give_up_after
    if now >= give_up:
        return None
    return min(now + retry_interval(settings, attempts), give_up)


def is_expired(settings: RetrySettings, created_at: float, now: float) -> bool:
    """Whether a message queued at ``created_at`` is given up at ``now``."""
    return now >= created_at + settings.give_up_after


def needs_delay_notice(settings: RetrySettings, created_at: float, now: float) -> bool:
    """Whether a still-undelivered recipient's sender should hear it is delayed."""
    return settings.delay_notice_after > 0 and now >= created_at + settings.delay_notice_after
