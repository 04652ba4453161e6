"""Outbound tests: a real store (SQLite), blob folder, delivery pipeline and SMTP
submission on port 0; remote hosts are aiosmtpd sinks on 127.0.0.1 found through a
DNS server on loopback (tests/support/dns.py)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.engine.sqlite import SqliteEngine
from fdb_layers.queue import QueuedMessage, list_messages
from server.blobs.fs import FsBlobStore
from server.config import load_config
from server.delivery import Delivery
from server.net import tls
from server.outbound.outbox import Outbox
from server.smtp import SmtpService, start_smtp
from server.outbound.routing import Router
from server.outbound.settings import OutboundSettings
from server.outbound.worker import DeliveryWorker
from tests.server.outbound.sinks import Sink
from tests.server.smtp.conftest import FakeDirectory
from tests.support.dns import Dns, dns_server as make_dns_server


@dataclass
class Site:
    """One node's parts for outbound tests."""

    engine: Engine
    blobs: FsBlobStore
    delivery: Delivery
    directory: FakeDirectory
    smtp: SmtpService
    data: Path

    async def queued(self) -> list[QueuedMessage]:
        return await transact(self.engine, list_messages)

    def submit(self, sender: str, recipients: Sequence[str], message: bytes,
               login: tuple[str, str] = ("alice", "secret")) -> str:
        """Submit over STARTTLS with AUTH PLAIN (smtplib); the reply to DATA."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", self.smtp.ports["submission"], timeout=30) as s:
            s.starttls(context=ctx)
            s.login(*login)
            s.mail(sender)
            for r in recipients:
                code, text = s.rcpt(r)
                assert code == 250, (r, code, text)
            code, text = s.data(message)
            return f"{code} {text.decode()}"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    cert, key = tls.ensure_self_signed(tmp_path / "tls", "mx.test")
    engine = await SqliteEngine.open(tmp_path / "store.sqlite3")
    blobs = await FsBlobStore.create(tmp_path / "blobs")
    delivery = Delivery(engine, blobs)
    directory = FakeDirectory()
    directory.add("alice", "alice@example.com")
    directory.add("bob", "bob@example.com")
    config = load_config(None, env={}).with_overrides({
        "server": {"data_dir": str(tmp_path / "data")},
        "tls": {"certificate": str(cert), "key": str(key)},
        "smtp": {"mx_listen": "127.0.0.1:0", "submission_listen": "127.0.0.1:0",
                 "submissions_listen": "", "hostname": "mx.test"}})
    smtp = await start_smtp(config, directory, delivery, outbox=Outbox(engine, blobs))
    try:
        yield Site(engine, blobs, delivery, directory, smtp, tmp_path)
    finally:
        await smtp.close()
        await blobs.close()
        await engine.close()


async def submit(site: Site, sender: str, recipients: Sequence[str], message: bytes) -> str:
    return await asyncio.to_thread(site.submit, sender, recipients, message)


class Clock:
    """Real time plus an offset the test moves forward (retries without sleeping)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.time() + self.offset


def free_closed_port() -> int:
    """A port with nothing listening on 127.0.0.1: connecting is refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def dns_server(tmp_path: Path) -> AsyncIterator[Dns]:
    (tmp_path / "dns").mkdir()
    server = make_dns_server({}, tmp_path / "dns")
    await server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def mx(tmp_path: Path) -> AsyncIterator[Sink]:
    sink = Sink(tmp_path)
    await sink.start()
    try:
        yield sink
    finally:
        await sink.close()


def make_worker(site: Site, dns_server: Dns, clock: Clock,
                mx_ports: dict[str, int] | None = None,
                **outbound: str | int | float | bool | list[str]) -> DeliveryWorker:
    values: dict[str, str | int | float | bool | list[str]] = {
        "resolver": f"127.0.0.1:{dns_server.port}", "retry_intervals": ["60"],
        "connect_timeout": 10.0, "timeout": 30.0}
    values.update(outbound)
    config = load_config(None, env={}).with_overrides({"outbound": values})
    settings = config.get(OutboundSettings)
    return DeliveryWorker(site.engine, site.blobs, site.directory, site.delivery, settings,
                          "mx.test", router=Router(settings, mx_ports=mx_ports), clock=clock)
