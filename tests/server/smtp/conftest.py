"""Protocol tests: a real server on port 0 with in-test stand-ins for the directory and the
delivery pipeline, and a raw client that scripts bytes and reads replies."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from server.net import tls
from server.config import load_config
from server.delivery import (
    DeliveryRequest,
    DeliveryResult,
    Refused,
    Stored,
    TemporaryFailure,
    Unavailable,
)
from server.delivery.errors import QuotaExceeded
from server.directory.base import Principal
from server.smtp import SmtpService, start_smtp


class FakeDirectory:
    """Accounts by address; groups expanded; plus-addressing; domains."""

    def __init__(self) -> None:
        self.domains = {"example.com", "bücher.example"}
        self.principals: dict[str, Principal] = {}
        self.passwords: dict[str, str] = {}
        self.groups: dict[str, list[str]] = {}
        self.fail = False

    def add(self, name: str, *emails: str, password: str = "secret", quota: int = 0) -> None:
        self.principals[name] = Principal(name, name, "individual", emails, quota)
        self.passwords[name] = password

    def add_group(self, name: str, email: str, members: list[str]) -> None:
        self.principals[name] = Principal(name, name, "group", (email,))
        self.groups[name] = members

    async def authenticate(self, login: str, secret: str) -> Principal | None:
        if self.fail:
            raise RuntimeError("directory down")
        p = self.principals.get(login)
        return p if p is not None and self.passwords.get(login) == secret else None

    async def get_principal(self, name: str) -> Principal | None:
        return self.principals.get(name)

    async def resolve_recipient(self, address: str) -> list[Principal]:
        if self.fail:
            raise RuntimeError("directory down")
        address = address.lower()
        local, _, domain = address.rpartition("@")
        candidates = [address]
        if "+" in local:
            candidates.append(f"{local.partition('+')[0]}@{domain}")
        for candidate in candidates:
            found = [p for p in self.principals.values() if candidate in p.emails]
            if found:
                out: list[Principal] = []
                for p in found:
                    members = [self.principals[m] for m in self.groups.get(p.name, [])]
                    for q in members or [p]:
                        if q not in out:
                            out.append(q)
                return out
        return []

    async def is_local_domain(self, domain: str) -> bool:
        if self.fail:
            raise RuntimeError("directory down")
        return domain.lower() in self.domains

    async def list_domains(self) -> list[str]:
        return sorted(self.domains)

    async def close(self) -> None:
        pass


@dataclass
class FakeDelivery:
    """Stores per account once per delivery id, like the real pipeline; failures on demand."""

    stored: dict[str, list[bytes]] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    calls: list[tuple[str, list[str]]] = field(default_factory=list)
    fail_temporarily: set[str] = field(default_factory=set)
    fail_permanently: set[str] = field(default_factory=set)
    gate: asyncio.Event | None = None

    async def deliver(self, request: DeliveryRequest) -> list[DeliveryResult]:
        delivery_id, account_ids = request.idempotency_id, request.account_ids
        assert isinstance(request.body, bytes)
        self.calls.append((delivery_id, list(account_ids)))
        if self.gate is not None:
            await self.gate.wait()
        out: list[DeliveryResult] = []
        for a in account_ids:
            if a in self.fail_temporarily:
                out.append(Refused(a, TemporaryFailure(Unavailable.STORE, "store busy")))
            elif a in self.fail_permanently:
                out.append(Refused(a, QuotaExceeded(100, 100, len(request.body))))
            else:
                if (delivery_id, a) not in self.seen:
                    self.seen.add((delivery_id, a))
                    self.stored.setdefault(a, []).append(request.body)
                out.append(Stored(a, f"{delivery_id}-{a}", "T", "b", ()))
        return out


class Client:
    """Raw SMTP over a stream: send bytes, read one (multi-line) reply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def reply(self) -> str:
        lines: list[str] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 10)
            if not line:
                raise ConnectionError("closed: " + repr(lines))
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if line[3:4] != b"-":
                return "\n".join(lines)

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def cmd(self, line: str | bytes) -> str:
        await self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return await self.reply()

    async def starttls(self, ctx: ssl.SSLContext) -> None:
        assert (await self.cmd("STARTTLS")).startswith("220")
        await self.writer.start_tls(ctx, server_hostname="localhost")

    async def closed(self) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(), 5) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass
class Harness:
    service: SmtpService
    directory: FakeDirectory
    delivery: FakeDelivery
    clients: list[Client] = field(default_factory=list)

    async def connect(self, kind: str = "mx", *, greet: bool = True) -> Client:
        port = self.service.ports[kind]
        ssl_ctx = client_tls() if kind == "submissions" else None
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ssl_ctx, server_hostname="localhost" if ssl_ctx else None,
            limit=2**20)
        c = Client(reader, writer)
        self.clients.append(c)
        if greet:
            greeting = await c.reply()
            assert greeting.startswith("220 "), greeting
        return c

    async def ehlo(self, kind: str = "mx", *, tls_: bool = False,
                   login: tuple[str, str] | None = None) -> Client:
        c = await self.connect(kind)
        assert (await c.cmd("EHLO client.test")).startswith("250")
        if tls_:
            await c.starttls(client_tls())
            assert (await c.cmd("EHLO client.test")).startswith("250")
        if login:
            import base64
            token = base64.b64encode(f"\0{login[0]}\0{login[1]}".encode()).decode()
            assert (await c.cmd(f"AUTH PLAIN {token}")).startswith("235")
        return c


StartHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tls.ensure_self_signed(tmp_path_factory.mktemp("tls"), "mx.test")


@pytest.fixture
async def start(tmp_path: Path, tls_files: tuple[Path, Path]) -> AsyncIterator[StartHarness]:
    harnesses: list[Harness] = []

    async def _start(directory: FakeDirectory | None = None, delivery: Any = None,
                     clock: Callable[[], float] | None = None, **smtp: Any) -> Harness:
        settings: dict[str, Any] = {
            "mx_listen": "127.0.0.1:0", "submission_listen": "127.0.0.1:0",
            "submissions_listen": "127.0.0.1:0", "hostname": "mx.test",
            "tls_cert": str(tls_files[0]), "tls_key": str(tls_files[1]),
        }
        settings.update(smtp)
        config = load_config(None, env={}).with_overrides(
            {"server": {"data_dir": str(tmp_path / "data")}, "smtp": settings})
        if directory is None:
            directory = FakeDirectory()
            directory.add("alice", "alice@example.com", "a.liddell@example.com")
            directory.add("bob", "bob@example.com")
            directory.add("jörg", "jörg@bücher.example")
            directory.add_group("team", "team@example.com", ["alice", "bob"])
        delivery = delivery or FakeDelivery()
        service = await start_smtp(config, directory, delivery, clock=clock)
        h = Harness(service, directory, delivery)
        harnesses.append(h)
        return h

    yield _start
    for h in harnesses:
        for c in h.clients:
            await c.close()
        await h.service.close()
