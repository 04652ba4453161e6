"""The timed part of the in-process CPU scripts (imap_cpu.py, jmap_cpu.py): one call
repeated ``per_round`` times in each of ``rounds`` rounds, the process's CPU per call of
each round, under cProfile when ``profile`` names a file for its stats."""

from __future__ import annotations

import cProfile
import time
from collections.abc import Awaitable, Callable


async def cpu_per_call(call: Callable[[], Awaitable[object]], per_round: int, rounds: int,
                       profile: str | None) -> list[float]:
    """CPU seconds per call, one figure per round."""
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    out = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(per_round):
            await call()
        out.append((time.process_time() - started) / per_round)
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    return out


def report(rounds: list[float], digits: int) -> str:
    """"X ms at best (rounds: a, b, ... ms)"."""
    return (f"{min(rounds) * 1000:.{digits}f} ms at best (rounds: "
            f"{', '.join(f'{r * 1000:.{digits}f}' for r in rounds)} ms)")
