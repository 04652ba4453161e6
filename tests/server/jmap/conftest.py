"""JMAP tests: the real SQL directory (accounts made with ``fdbmail directory``), the JMAP
routes in a tiny Starlette app (as the node will mount them), driven through httpx's ASGI
transport; ``tests/server/jmap/test_jmapc.py`` runs them under a real uvicorn too."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from server.config import Config, load_config
from server.directory import Directory, open_directory, passwords
from server.directory.base import DirectoryError, Principal
from server.jmap import JmapSettings, Method, Registry, core_registry, jmap_routes
from server.jmap.methods import CORE, Capability
from server.jmap.session import API_PATH
from tests.server.directory.conftest import run_cli
from tests.support.nodes import node_engine  # noqa: F401 (a fixture)

USING = [CORE]
PASSWORDS = {"alice": "wonderland", "bob": "builder"}
TEST_CAPABILITY = "urn:fdbmail:test"
# what a raw POST to the API URL declares (RFC 8620 section 3.6.1: else notJSON)
JSON = {"Content-Type": "application/json"}


class SwitchableDirectory:
    """The real directory, which a test can make fail like a server that is down."""

    def __init__(self, inner: Directory) -> None:
        self.inner = inner
        self.down = False
        self.logins = 0

    def _check(self) -> None:
        if self.down:
            raise DirectoryError("directory server unreachable (test)")

    async def authenticate(self, login: str, secret: str) -> Principal | None:
        self.logins += 1
        self._check()
        return await self.inner.authenticate(login, secret)

    async def get_principal(self, name: str) -> Principal | None:
        self._check()
        return await self.inner.get_principal(name)

    async def resolve_recipient(self, address: str) -> list[Principal]:
        self._check()
        return await self.inner.resolve_recipient(address)

    async def is_local_domain(self, domain: str) -> bool:
        self._check()
        return await self.inner.is_local_domain(domain)

    async def list_domains(self) -> list[str]:
        return await self.inner.list_domains()

    async def close(self) -> None:
        await self.inner.close()


def _write_config(folder: Path) -> Path:
    cfg = folder / "fdbmail.toml"
    cfg.write_text(f"""
[server]
data_dir = "{folder / 'data'}"
[directory]
cache_ttl = 0.0
[jmap]
auth_require_tls = false
""")
    return cfg


@pytest.fixture(scope="session")
def accounts_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the domain and the accounts of :data:`PASSWORDS`, made once
    through ``fdbmail directory`` (at the tests' bcrypt cost, tests/conftest.py)."""
    folder = tmp_path_factory.mktemp("jmap-accounts")
    cfg = _write_config(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "BCRYPT_ROUNDS", 4)
        assert run_cli(cfg, "add-domain", "example.com") == 0
        for name, password in PASSWORDS.items():
            assert run_cli(cfg, "add", name, "--email", f"{name}@example.com",
                           "--password-stdin", stdin=password + "\n") == 0
    return folder / "data"


@pytest.fixture
def config(tmp_path: Path, accounts_data: Path) -> Config:
    """A config whose data folder is a copy of :func:`accounts_data`, the test's own."""
    cfg = _write_config(tmp_path)
    shutil.copytree(accounts_data, tmp_path / "data")
    return load_config(cfg, env={})


@pytest.fixture
async def directory(config: Config) -> AsyncIterator[SwitchableDirectory]:
    d = SwitchableDirectory(await open_directory(config))
    yield d
    await d.close()


@dataclass
class Jmap:
    """One JMAP app over the real directory, and an httpx client for it."""

    config: Config
    directory: SwitchableDirectory
    settings: JmapSettings

    def app(self, registry: Registry | None = None, **kwargs: Any) -> Starlette:
        registry = registry or core_registry(self.settings.limits)
        return Starlette(routes=jmap_routes(self.directory, self.settings, registry,
                                            **kwargs))

    def registry(self, *methods: Method, account_capability: bool = True) -> Registry:
        """The core registry, plus ``methods`` under :data:`TEST_CAPABILITY`."""
        registry = core_registry(self.settings.limits)
        registry.add_capability(Capability(TEST_CAPABILITY, {},
                                           {} if account_capability else None))
        for m in methods:
            registry.add(m)
        return registry

    def with_settings(self, **changes: Any) -> Jmap:
        limits = changes.pop("limits", {})
        settings = replace(self.settings, limits=replace(self.settings.limits, **limits),
                           **changes)
        return Jmap(self.config, self.directory, settings)

    def client(self, app: Starlette | None = None, *, user: str | None = "alice",
               password: str | None = None, base_url: str = "http://jmap.test",
               ip: str = "127.0.0.1") -> httpx.AsyncClient:
        auth = (user, password or PASSWORDS[user]) if user is not None else None
        transport = httpx.ASGITransport(app=app or self.app(), client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url=base_url, auth=auth)


@pytest.fixture
def jmap(config: Config, directory: SwitchableDirectory) -> Jmap:
    return Jmap(config, directory, JmapSettings.from_settings(config.jmap))


async def call(client: httpx.AsyncClient, *calls: list[Any], using: Iterable[str] = USING,
               **extra: Any) -> dict[str, Any]:
    """POST one request; its Response object (asserting a 200)."""
    r = await client.post(API_PATH, json={"using": list(using), "methodCalls": list(calls),
                                          **extra})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    return body


def error_type(response: dict[str, Any], index: int = 0) -> str:
    name, args, _ = response["methodResponses"][index]
    assert name == "error", response
    kind: str = args["type"]
    return kind


class Fixed:
    """A test method: answers ``result`` (or calls ``fn(ctx, args)``) and records what it
    was given."""

    def __init__(self, name: str, result: dict[str, Any] | None = None,
                 fn: Callable[..., Any] | None = None,
                 capability: str = TEST_CAPABILITY) -> None:
        self.name, self.capability = name, capability
        self.result, self.fn = result or {}, fn
        self.seen: list[dict[str, Any]] = []

    async def call(self, ctx: Any, args: dict[str, Any]) -> Any:
        self.seen.append(args)
        if self.fn is not None:
            out = self.fn(ctx, args)
            if hasattr(out, "__await__"):
                out = await out
            return out
        return self.result
