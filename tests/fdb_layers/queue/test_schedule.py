"""The retry schedule (fdb_layers/queue/schedule.py): pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdb_layers.queue.schedule import (
    DAY,
    HOUR,
    MINUTE,
    RetrySettings,
    is_expired,
    needs_delay_notice,
    next_due_at,
    retry_interval,
)

DEFAULT = RetrySettings()


def test_the_default_intervals_are_postfix_and_stalwart_like() -> None:
    waits = [retry_interval(DEFAULT, n) for n in range(1, 10)]
    assert waits == [2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR,
                     2 * HOUR, 2 * HOUR, 2 * HOUR]


def test_next_due_is_the_interval_after_now_and_none_after_giving_up() -> None:
    assert next_due_at(DEFAULT, 1, 0.0, 1000.0) == 1000.0 + 2 * MINUTE
    assert next_due_at(DEFAULT, 3, 0.0, 1000.0) == 1000.0 + 10 * MINUTE
    # the last retry is at the give-up time, not past it
    assert next_due_at(DEFAULT, 9, 0.0, 5 * DAY - 60) == 5 * DAY
    assert next_due_at(DEFAULT, 9, 0.0, 5 * DAY) is None


def test_delay_notice_after_4_hours_and_give_up_after_5_days() -> None:
    assert not needs_delay_notice(DEFAULT, 0.0, 4 * HOUR - 1)
    assert needs_delay_notice(DEFAULT, 0.0, 4 * HOUR)
    assert not needs_delay_notice(RetrySettings(delay_notice_after=0), 0.0, 10 * DAY)
    assert not is_expired(DEFAULT, 0.0, 5 * DAY - 1)
    assert is_expired(DEFAULT, 0.0, 5 * DAY)


@pytest.mark.parametrize("bad", [
    {"intervals": ()}, {"intervals": (60.0, 0.0)}, {"give_up_after": 0.0},
    {"delay_notice_after": -1.0}, {"lease_seconds": 0.0},
])
def test_settings_that_make_no_sense_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetrySettings(**bad)  # type: ignore[arg-type]


@given(attempts=st.integers(min_value=0, max_value=10_000),
       created=st.floats(min_value=0, max_value=2e9),
       age=st.floats(min_value=0, max_value=10 * DAY))
def test_next_due_is_after_now_and_never_past_give_up(attempts: int, created: float,
                                                      age: float) -> None:
    now = created + age
    due = next_due_at(DEFAULT, attempts, created, now)
    if due is None:
        assert is_expired(DEFAULT, created, now)
    else:
        assert now < due <= created + DEFAULT.give_up_after
