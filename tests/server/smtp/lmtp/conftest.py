"""LMTP on port 0 (or a Unix socket) with the SMTP tests' stand-ins for the directory and
the delivery pipeline; raw clients script bytes and read replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from server.config import load_config
from server.smtp.lmtp import LmtpService, start_lmtp
from tests.server.smtp.conftest import Client, FakeDelivery, FakeDirectory


@dataclass
class LmtpHarness:
    service: LmtpService
    directory: FakeDirectory
    delivery: FakeDelivery
    clients: list[Client] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.service.ports["lmtp"]

    async def connect(self, *, greet: bool = True) -> Client:
        if self.service.unix_path is not None:
            reader, writer = await asyncio.open_unix_connection(self.service.unix_path)
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        c = Client(reader, writer)
        self.clients.append(c)
        if greet:
            assert (await c.reply()).startswith("220 lmtp.test LMTP")
        return c

    async def lhlo(self) -> Client:
        c = await self.connect()
        assert (await c.cmd("LHLO mta.test")).startswith("250-lmtp.test")
        return c


StartLmtp = Callable[..., Awaitable[LmtpHarness]]


@pytest.fixture
async def start_lmtp_server(tmp_path: Path) -> AsyncIterator[StartLmtp]:
    harnesses: list[LmtpHarness] = []

    async def _start(delivery: FakeDelivery | None = None, **lmtp: Any) -> LmtpHarness:
        settings: dict[str, Any] = {"listen": "127.0.0.1:0", "hostname": "lmtp.test"}
        settings.update(lmtp)
        config = load_config(None, env={}).with_overrides(
            {"server": {"data_dir": str(tmp_path / "data")}, "lmtp": settings})
        directory = FakeDirectory()
        directory.add("alice", "alice@example.com")
        directory.add("bob", "bob@example.com")
        directory.add("carl", "carl@example.com")
        directory.add_group("team", "team@example.com", ["alice", "bob"])
        delivery = delivery or FakeDelivery()
        service = await start_lmtp(config, directory, delivery)
        assert service is not None
        h = LmtpHarness(service, directory, delivery)
        harnesses.append(h)
        return h

    yield _start
    for h in harnesses:
        for c in h.clients:
            await c.close()
        await h.service.close(grace=1)
