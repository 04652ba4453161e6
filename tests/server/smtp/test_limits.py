"""Connection and AUTH-failure limits, with a fake clock."""

from __future__ import annotations

from server.smtp.limits import Limits, LimitSettings
from tests.server.smtp.conftest import StartHarness


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_and_rate_limits() -> None:
    clock = FakeClock()
    limits = Limits(LimitSettings(max_connections=3, max_connections_per_ip=2,
                                  connection_rate_per_ip=4), clock)
    assert limits.admit("a") is None and limits.admit("a") is None
    assert limits.admit("a") == "max_connections_per_ip"
    assert limits.admit("b") is None
    assert limits.admit("c") == "max_connections"
    limits.release("a")
    limits.release("a")
    assert limits.admit("a") is None and limits.admit("a") is None   # 4 in this minute
    limits.release("a")
    assert limits.admit("a") == "connection_rate"
    clock.now += 61
    assert limits.admit("a") is None


def test_auth_failures_expire() -> None:
    clock = FakeClock()
    limits = Limits(LimitSettings(auth_failures_per_ip=2), clock)
    limits.auth_failed("a")
    assert not limits.auth_blocked("a")
    limits.auth_failed("a")
    assert limits.auth_blocked("a") and not limits.auth_blocked("b")
    clock.now += 901
    assert not limits.auth_blocked("a")


async def test_server_refuses_over_the_limit(start: StartHarness) -> None:
    h = await start(max_connections_per_ip=2)
    c1 = await h.connect()
    await h.connect()
    c3 = await h.connect(greet=False)
    assert (await c3.reply()).startswith("421 4.7.0")
    assert await c3.closed()
    await c1.cmd("QUIT")
    assert await c1.closed()
    await h.connect()                                   # a slot is free again
    assert h.service.limits.open_connections == 2


async def test_connection_rate(start: StartHarness) -> None:
    clock = FakeClock()
    h = await start(connection_rate_per_ip=2, clock=clock)
    for _ in range(2):
        c = await h.connect()
        await c.cmd("QUIT")
    c = await h.connect(greet=False)
    assert (await c.reply()).startswith("421 4.7.0")
    clock.now += 60.5
    await h.connect()
