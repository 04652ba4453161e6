"""SingleFlight: concurrent asks for one key share one run of the work; a caller that
leaves does not stop it for the others; nothing is kept after it ends."""

from __future__ import annotations

import asyncio

from server.singleflight import SingleFlight


async def test_asks_share_one_run_per_key_and_nothing_is_kept() -> None:
    runs: list[str] = []
    gate = asyncio.Event()
    flight: SingleFlight[str, str] = SingleFlight()

    async def work(key: str) -> str:
        runs.append(key)
        await gate.wait()
        return key.upper()

    asks = [asyncio.create_task(flight.run(k, lambda k=k: work(k))) for k in "aaab"]
    await asyncio.sleep(0)
    assert "a" in flight and "b" in flight and "c" not in flight
    gate.set()
    assert await asyncio.gather(*asks) == ["A", "A", "A", "B"]
    assert sorted(runs) == ["a", "b"]
    assert "a" not in flight
    assert await flight.run("a", lambda: work("a")) == "A"   # a new run
    assert runs.count("a") == 2


async def test_a_caller_that_leaves_leaves_the_work_to_the_others() -> None:
    gate = asyncio.Event()
    flight: SingleFlight[str, int] = SingleFlight()

    async def work() -> int:
        await gate.wait()
        return 7

    first = asyncio.create_task(flight.run("k", work))
    await asyncio.sleep(0)
    second = asyncio.create_task(flight.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await second == 7
    assert first.cancelled()


async def test_an_exception_reaches_every_caller_and_is_not_kept() -> None:
    calls = 0
    gate = asyncio.Event()
    flight: SingleFlight[str, int] = SingleFlight()

    async def work() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        if calls == 1:
            raise LookupError("down")
        return 1

    asks = [asyncio.create_task(flight.run("k", work)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*asks, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results) and calls == 1
    assert await flight.run("k", work) == 1


async def test_work_whose_callers_all_left_runs_to_its_end_and_is_forgotten() -> None:
    gate = asyncio.Event()
    flight: SingleFlight[str, int] = SingleFlight()
    ended = asyncio.Event()

    async def work() -> int:
        try:
            await gate.wait()
            raise LookupError("nobody is listening")
        finally:
            ended.set()

    ask = asyncio.create_task(flight.run("k", work))
    await asyncio.sleep(0)
    ask.cancel()
    gate.set()
    await ended.wait()
    await asyncio.sleep(0)
    assert "k" not in flight
