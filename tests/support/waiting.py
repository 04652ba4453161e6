"""Waiting for a state instead of sleeping: a test that sleeps and then asserts that
nothing happened passes when the server has not even looked yet.  Wait for a positive
signal that the server acted (a connection counted closed, a put reached its gate), then
assert."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def until(check: Callable[[], bool | Awaitable[bool]], *, within: float = 10.0,
                what: str = "the condition") -> None:
    """Return once ``check()`` is true; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        await asyncio.sleep(0.01)
