"""Connection and AUTH-failure limits, with a fake clock."""

from __future__ import annotations

import asyncio
import logging

import pytest

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


async def _bare(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader,
                                                                asyncio.StreamWriter]:
    """A TCP connection that says nothing (no TLS handshake)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _closed_silently(reader: asyncio.StreamReader) -> bool:
    """Closed by the server without a byte (a TLS port has no plaintext to say)."""
    try:
        return await asyncio.wait_for(reader.read(), 10) == b""
    except ConnectionError:
        return True


async def test_implicit_tls_connections_count_before_their_handshake(
        start: StartHarness) -> None:
    """Issue 10, item 13: half-open connections to the implicit-TLS port were counted
    only after their handshake, so one IP could hold any number of them."""
    h = await start(max_connections_per_ip=2)
    port = h.service.ports["submissions"]
    held = [await _bare(port) for _ in range(2)]
    for _ in range(1000):           # (the server sees the connections a moment later)
        if h.service.limits.open_connections == 2:
            break
        await asyncio.sleep(0.01)
    assert h.service.limits.open_connections == 2
    reader, writer = await _bare(port)
    assert await _closed_silently(reader)               # no "421" in clear on a TLS port
    writer.close()
    c = await h.connect("mx", greet=False)              # the same IP on another port
    assert (await c.reply()).startswith("421 4.7.0")
    reader, writer = await asyncio.open_connection(     # another IP is served
        "127.0.0.1", h.service.ports["mx"], local_addr=("127.0.0.2", 0))
    assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"220 ")
    writer.close()
    for _, w in held:
        w.close()


async def test_tls_handshake_time_is_bounded(start: StartHarness) -> None:
    h = await start(tls_handshake_timeout=0.2, max_connections_per_ip=1)
    reader, writer = await _bare(h.service.ports["submissions"])
    assert await _closed_silently(reader)
    writer.close()
    for _ in range(1000):
        if h.service.limits.open_connections == 0:
            break
        await asyncio.sleep(0.01)
    assert h.service.limits.open_connections == 0
    c = await h.connect("submissions")                  # its place is free again
    assert (await c.cmd("EHLO client.test")).startswith("250")


def test_refusals_are_logged_at_a_bounded_rate(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    limits = Limits(LimitSettings(max_connections_per_ip=1), clock)
    assert limits.admit("a") is None
    with caplog.at_level(logging.WARNING, logger="server.smtp.limits"):
        for _ in range(10_000):
            assert limits.admit("a") == "max_connections_per_ip"
            limits.log_refusal("submissions", "a", "max_connections_per_ip")
        assert len(caplog.records) == 1
        clock.now += 11
        limits.log_refusal("submissions", "a", "max_connections_per_ip")
    assert len(caplog.records) == 2
    assert caplog.records[1].args[-2:] == (9_999, 10.0)   # the ones left out, counted


async def test_unknown_recipients_close_the_session(start: StartHarness) -> None:
    """Issue 10, item 15: one session could ask for 10,000 unknown users."""
    h = await start(max_unknown_recipients=3, unknown_recipient_delay=0.0)
    c = await h.ehlo()
    assert (await c.cmd("MAIL FROM:<x@remote.test>")).startswith("250")
    assert (await c.cmd("RCPT TO:<bob@example.com>")).startswith("250")
    for name in ("a", "b"):
        assert (await c.cmd(f"RCPT TO:<{name}@example.com>")).startswith("550 5.1.1")
    assert (await c.cmd("RCPT TO:<c@example.com>")).startswith("550 5.1.1")
    assert (await c.reply()).startswith("421 4.7.0")
    assert await c.closed()


async def test_unknown_recipients_count_per_ip_across_sessions(start: StartHarness) -> None:
    h = await start(max_unknown_recipients=0, unknown_recipients_per_ip=4,
                    unknown_recipient_delay=0.0)
    for _ in range(2):
        c = await h.ehlo()
        await c.cmd("MAIL FROM:<x@remote.test>")
        for name in ("a", "b"):
            assert (await c.cmd(f"RCPT TO:<{name}@example.com>")).startswith("550 5.1.1")
        await c.cmd("QUIT")
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    assert (await c.cmd("RCPT TO:<bob@example.com>")).startswith("421 4.7.0")
    assert await c.closed()


def test_tarpit_grows_after_the_free_ones() -> None:
    from server.smtp.limits import tarpit_delay
    assert [tarpit_delay(n, 3, 1.0) for n in range(1, 7)] == [0, 0, 0, 1.0, 2.0, 3.0]
    assert tarpit_delay(1000, 3, 1.0) == 10.0 and tarpit_delay(9, 3, 0.0) == 0.0


async def test_unknown_recipients_are_answered_slowly_after_a_few(
        start: StartHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.smtp import session as session_module
    waited: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        waited.append(delay)
        await real_sleep(0)

    h = await start(unknown_recipient_tarpit_after=2, unknown_recipient_delay=1.5)
    monkeypatch.setattr(session_module, "_sleep", sleep)
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    for name in "abcd":
        assert (await c.cmd(f"RCPT TO:<{name}@example.com>")).startswith("550 5.1.1")
    assert waited == [1.5, 3.0]


def test_ipv6_clients_are_counted_by_network() -> None:
    """Issue 10, item 16: an IPv6 client has a /64 of addresses to try from."""
    from server.smtp.limits import client_key
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert client_key("2001:db8::1", 128) != client_key("2001:db8::2", 128)
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"
    limits = Limits(LimitSettings(auth_failures_per_ip=3), FakeClock())
    for i in range(3):
        limits.auth_failed(f"2001:db8::{i + 1:x}")
    assert limits.auth_blocked("2001:db8::abcd") and not limits.auth_blocked("2001:db8:1::1")
    limits = Limits(LimitSettings(max_connections_per_ip=2), FakeClock())
    assert limits.admit("2001:db8::1") is None and limits.admit("2001:db8::2") is None
    assert limits.admit("2001:db8::3") == "max_connections_per_ip"
    limits.release("2001:db8::1")
    assert limits.admit("2001:db8::4") is None


def test_flooding_the_table_unblocks_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.net import limits as limits_module
    monkeypatch.setattr(limits_module, "_MAX_TRACKED_IPS", 100)
    limits = Limits(LimitSettings(auth_failures_per_ip=3, auth_failures_per_account=3),
                    FakeClock())
    for _ in range(3):
        limits.auth_failed("192.0.2.1", "alice")
    for i in range(10_000):
        limits.auth_failed(f"10.{i // 256 % 256}.{i % 256}.1", f"user{i}")
    assert limits.auth_blocked("192.0.2.1") and limits.account_blocked("ALICE")
    assert len(limits.auth_failures._ips) <= 100 and len(limits.auth_failures._accounts) <= 100


async def test_failures_per_account_from_any_ip(start: StartHarness) -> None:
    from tests.server.smtp.test_auth import plain
    h = await start(auth_failures_per_ip=0, auth_failures_per_account=2,
                    auth_require_tls=False)
    c = await h.ehlo("submission")
    for _ in range(2):
        assert (await c.cmd(plain("alice", "nope"))).startswith("535")
    assert (await c.cmd(plain("alice", "secret"))).startswith("454 4.7.0")
    assert (await c.cmd(plain("bob", "secret"))).startswith("235")


async def test_malformed_auth_counts_as_a_failure(start: StartHarness) -> None:
    from tests.server.smtp.test_auth import plain
    h = await start(auth_failures_per_ip=3, auth_require_tls=False)
    c = await h.ehlo("submission")
    assert (await c.cmd("AUTH CRAM-MD5")).startswith("504")
    assert (await c.cmd("AUTH")).startswith("501")
    assert (await c.cmd("AUTH PLAIN !!!")).startswith("501")
    assert (await c.cmd(plain("bob", "secret"))).startswith("421 4.7.0")


def test_max_connections_fits_the_descriptor_limit() -> None:
    """Issue 10, item 13: 1,000 connections allowed under a 1,024-descriptor limit ran
    the process out of descriptors; the limit is raised or max_connections lowered."""
    import subprocess
    import sys
    code = ("import resource; from server.smtp.limits import fit_descriptors as f; "
            "n = f(1000); print(n, resource.getrlimit(resource.RLIMIT_NOFILE)[0])")

    def run(hard: int) -> tuple[int, int]:     # in a child with these limits
        out = subprocess.run(
            ["bash", "-c", f"ulimit -Sn 1024 && ulimit -Hn {hard} && exec "
             f"{sys.executable} -c '{code}'"], capture_output=True, text=True,
            check=True).stdout.split()
        return int(out[0]), int(out[1])

    fitted, soft = run(1024)                    # nothing to raise to: fewer connections
    assert soft == 1024 and fitted == 1024 - 128
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= 4096:
        assert run(4096) == (1000, 1128)        # room: the soft limit is raised
