"""Background jobs that every node runs on a timer (blob GC, maintenance): the
timer loop, with jitter so that nodes started together do not all wake at once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable


async def run_every(interval: float, stop: asyncio.Event, job: Callable[[], Awaitable[object]],
                    *, jitter: float = 0.2) -> None:
    """Await ``job()`` every ``interval`` seconds (± ``jitter``) until ``stop`` is
    set; the first run comes after one interval.  Cancel-safe."""
    while not stop.is_set():
        delay = interval * random.uniform(1.0 - jitter, 1.0 + jitter)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return
        except TimeoutError:
            pass
        await job()
