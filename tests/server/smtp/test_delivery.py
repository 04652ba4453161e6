"""The DATA reply from per-recipient outcomes, and idempotent retries."""

from __future__ import annotations

import asyncio

from server.smtp.handler import delivery_id
from server.smtp.wire.data import dot_stuff
from server.delivery import DeliveryResult
from tests.server.smtp.conftest import Client, FakeDelivery, Harness, StartHarness

MSG = b"Message-ID: <1@remote.test>\r\nSubject: t\r\n\r\nbody\r\n"


async def send(h: Harness, rcpts: list[str], msg: bytes = MSG) -> str:
    c = await h.ehlo()
    return await transaction(c, rcpts, msg)


async def transaction(c: Client, rcpts: list[str], msg: bytes = MSG) -> str:
    assert (await c.cmd("MAIL FROM:<x@remote.test>")).startswith("250")
    for r in rcpts:
        assert (await c.cmd(f"RCPT TO:<{r}>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(msg))
    return await c.reply()


async def test_temporary_failure_then_retry_stores_each_account_once(
        start: StartHarness) -> None:
    delivery = FakeDelivery(fail_temporarily={"bob"})
    h = await start(delivery=delivery)
    assert (await send(h, ["alice@example.com", "bob@example.com"])).startswith("451 4.3.0")
    assert list(delivery.stored) == ["alice"]
    delivery.fail_temporarily.clear()
    assert (await send(h, ["alice@example.com", "bob@example.com"])).startswith("250")
    assert len(delivery.stored["alice"]) == 1 and len(delivery.stored["bob"]) == 1
    assert delivery.calls[0][0] == delivery.calls[1][0]        # the same delivery id


async def test_permanent_failure_for_some_accepts_for_the_rest(start: StartHarness) -> None:
    delivery = FakeDelivery(fail_permanently={"bob"})
    h = await start(delivery=delivery)
    assert (await send(h, ["team@example.com"])).startswith("250 2.0.0")
    assert list(delivery.stored) == ["alice"]


async def test_permanent_failure_for_all(start: StartHarness) -> None:
    delivery = FakeDelivery(fail_permanently={"bob"})
    h = await start(delivery=delivery)
    assert await send(h, ["bob@example.com"]) == "552 5.2.2 Mailbox full"


async def test_pipeline_exception_is_temporary(start: StartHarness) -> None:
    class Broken(FakeDelivery):
        async def deliver(self, *a: object, **kw: object) -> list[DeliveryResult]:
            raise RuntimeError("boom")
    h = await start(delivery=Broken())
    assert (await send(h, ["bob@example.com"])).startswith("451 4.3.0")


async def test_delivery_finishes_when_client_leaves(start: StartHarness) -> None:
    """The client goes away while we store: the delivery completes (it is idempotent), the
    client saw no 250 and will retry, and the retry stores nothing twice."""
    delivery = FakeDelivery(gate=asyncio.Event())
    h = await start(delivery=delivery)
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<bob@example.com>")
    await c.cmd("DATA")
    await c.send(dot_stuff(MSG))
    for _ in range(500):
        if delivery.calls:
            break
        await asyncio.sleep(0.01)
    await c.close()
    await asyncio.sleep(0.05)
    assert delivery.gate is not None
    delivery.gate.set()
    await asyncio.sleep(0.05)
    assert len(delivery.stored["bob"]) == 1
    assert (await send(h, ["bob@example.com"])).startswith("250")
    assert len(delivery.stored["bob"]) == 1


def test_delivery_id_depends_on_envelope_and_bytes_only() -> None:
    a = delivery_id("x@y", ["b@c", "a@c"], b"m")
    assert a == delivery_id("x@y", ["A@c", "b@c", "b@c"], b"m")
    assert a != delivery_id("x@y", ["a@c"], b"m")
    assert a != delivery_id("z@y", ["b@c", "a@c"], b"m")
    assert a != delivery_id("x@y", ["b@c", "a@c"], b"m2")


async def test_shutdown_answers_deliveries_in_progress(start: StartHarness) -> None:
    delivery = FakeDelivery(gate=asyncio.Event())
    h = await start(delivery=delivery)
    idle = await h.ehlo()
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<bob@example.com>")
    await c.cmd("DATA")
    await c.send(dot_stuff(MSG))
    for _ in range(500):
        if delivery.calls:
            break
        await asyncio.sleep(0.01)
    closing = asyncio.ensure_future(h.service.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    assert (await idle.reply()).startswith("421 4.3.2")
    assert delivery.gate is not None
    delivery.gate.set()
    assert (await c.reply()).startswith("250 2.0.0")
    assert (await c.reply()).startswith("421 4.3.2")
    await closing
    assert await c.closed() and len(delivery.stored["bob"]) == 1


async def test_slow_delivery_gets_451_and_still_completes(start: StartHarness) -> None:
    delivery = FakeDelivery(gate=asyncio.Event())
    h = await start(delivery=delivery, delivery_timeout=0.2)
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<bob@example.com>")
    await c.cmd("DATA")
    await c.send(dot_stuff(MSG))
    assert (await c.reply()).startswith("451 4.3.0")
    assert delivery.gate is not None
    delivery.gate.set()
    await asyncio.sleep(0.05)
    assert len(delivery.stored["bob"]) == 1                  # finished in the background
    assert (await transaction(c, ["bob@example.com"])).startswith("250")
    assert len(delivery.stored["bob"]) == 1                  # the retry is a no-op
