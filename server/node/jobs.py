"""Leased periodic jobs: work that every node tries on a timer and that one node at a time
does, through a lease in the store (blob GC, maintenance, and the outbound queue next).

A job is a :class:`LeasedJob` given its work (``work(holder)``: one attempt, which takes
the lease in the store itself as ``holder``, e.g. through :mod:`fdb_layers.lease`) and
how to read its result (:data:`Classify`: the run's outcome for the ``runs`` counter,
whether its duration is observed, and what it handled for the ``items`` counter).  The
job owns the rest: the interval with jitter (so that nodes started together do not all
wake at once), a holder id per process, errors logged and counted (never raised), the
metrics, stop, and :meth:`LeasedJob.run_once` for tests."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import Counter, Histogram

log = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a run came to: ``result`` is its label on the runs counter (``skipped``:
    another node holds the lease; ``lease_lost``; a job's own words for success);
    ``timed``: its duration is observed (it held the lease and worked); ``items``:
    counts by kind for the items counter (zeros are left out)."""

    result: str
    timed: bool = False
    items: Mapping[str, int] = field(default_factory=dict)


Classify = Callable[[R], Outcome]


@dataclass(frozen=True, slots=True)
class JobMetrics:
    """A job's metrics: ``runs`` by result (``error`` included), ``seconds`` of timed
    runs, ``items`` by kind (None: the job counts none)."""

    runs: Counter
    seconds: Histogram
    items: Counter | None = None


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


class LeasedJob(Generic[R]):
    """Runs ``work(holder)`` every ``interval`` seconds (± 20 % jitter) until stopped.

    ``after(result)``, if given, runs after each run that did not fail (e.g. giving a
    blob store's freed space back); its errors are logged, not counted as the run's."""

    def __init__(self, name: str, interval: float, work: Callable[[str], Awaitable[R]],
                 classify: Classify[R], metrics: JobMetrics, *, holder_prefix: str = "",
                 after: Callable[[R], Awaitable[None]] | None = None) -> None:
        self.name = name            # in log lines: "<name> run failed"
        self.interval = interval
        self.holder = f"{holder_prefix or name}-{uuid.uuid4().hex[:12]}"
        self._work = work
        self._classify = classify
        self._metrics = metrics
        self._after = after
        self._stop = asyncio.Event()
        self.runs = 0                       # attempts finished, errors included
        self._ran = asyncio.Condition()

    async def run_once(self) -> R | None:
        """One attempt; errors are logged and counted, never raised (then None)."""
        try:
            return await self._attempt()
        finally:
            self.runs += 1
            async with self._ran:
                self._ran.notify_all()

    async def _attempt(self) -> R | None:
        started = time.perf_counter()
        try:
            result = await self._work(self.holder)
        except Exception:
            self._metrics.runs.labels("error").inc()
            log.exception("%s run failed", self.name)
            return None
        outcome = self._classify(result)
        if outcome.timed:
            self._metrics.seconds.observe(time.perf_counter() - started)
        self._metrics.runs.labels(outcome.result).inc()
        if self._metrics.items is not None:
            for kind, n in outcome.items.items():
                if n:
                    self._metrics.items.labels(kind).inc(n)
        if self._after is not None:
            try:
                await self._after(result)
            except Exception:
                log.exception("%s: the work after its run failed", self.name)
        return result

    async def wait_runs(self, count: int) -> None:
        """Until at least ``count`` runs finished (tests: a positive signal)."""
        async with self._ran:
            await self._ran.wait_for(lambda: self.runs >= count)

    async def run(self) -> None:
        """Loop until :meth:`stop`; cancel-safe."""
        await run_every(self.interval, self._stop, self.run_once)

    def stop(self) -> None:
        self._stop.set()
