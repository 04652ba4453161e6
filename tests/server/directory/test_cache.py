"""The TTL cache and the wrappers that open_directory() puts around a backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.config import all_sections, load_config
from server.directory import Directory, DirectoryError, Principal, open_directory
from server.directory.cache import CachedDirectory, TtlCache
from server.directory.metrics import InstrumentedDirectory
from server.directory.sql import SqlDirectory

P = Principal(id="1", name="u", type="individual", emails=("u@example.com",))


class Counting:
    """A fake backend that counts its calls."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.answer: list[Principal] = [P]

    def _count(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1

    async def authenticate(self, login: str, secret: str) -> Principal | None:
        self._count("authenticate")
        return P if secret == "ok" else None

    async def get_principal(self, name: str) -> Principal | None:
        self._count("get_principal")
        return P

    async def resolve_recipient(self, address: str) -> list[Principal]:
        self._count("resolve_recipient")
        return list(self.answer)

    async def is_local_domain(self, domain: str) -> bool:
        self._count("is_local_domain")
        return True

    async def list_domains(self) -> list[str]:
        self._count("list_domains")
        return ["example.com"]

    async def close(self) -> None:
        self._count("close")


def test_ttl_cache_expiry_and_size() -> None:
    now = [0.0]
    cache = TtlCache(2.0, 2, clock=lambda: now[0])
    cache.put(("op", "a"), 1)
    assert cache.get(("op", "a")) == (True, 1)
    now[0] = 1.99
    assert cache.get(("op", "a")) == (True, 1)
    now[0] = 2.0
    assert cache.get(("op", "a")) == (False, None)
    for key in "abc":
        cache.put(("op", key), key)
    assert cache.get(("op", "a")) == (False, None)      # oldest dropped
    assert cache.get(("op", "c")) == (True, "c")


async def test_cached_directory_never_caches_passwords() -> None:
    inner = Counting()
    now = [0.0]
    d = CachedDirectory(inner, 2.0, clock=lambda: now[0])
    assert isinstance(d, Directory)
    for _ in range(3):
        assert await d.authenticate("u", "ok") == P
        assert await d.resolve_recipient("u@example.com") == [P]
        assert await d.get_principal("u") == P
        assert await d.is_local_domain("example.com")
        assert await d.list_domains() == ["example.com"]
    assert inner.calls == {"authenticate": 3, "resolve_recipient": 1, "get_principal": 1,
                           "is_local_domain": 1, "list_domains": 1}
    # a caller changing the returned list does not change the cache
    (await d.resolve_recipient("u@example.com")).clear()
    assert await d.resolve_recipient("u@example.com") == [P]
    now[0] = 2.5
    inner.answer = []
    assert await d.resolve_recipient("u@example.com") == []
    await d.close()
    assert inner.calls["close"] == 1


async def test_open_directory_wiring(tmp_path: Path) -> None:
    config = load_config(env={}).with_overrides({"server": {"data_dir": str(tmp_path)}})
    d = await open_directory(config)
    assert isinstance(d, CachedDirectory) and d.cache.ttl == 2.0
    assert isinstance(d.inner, InstrumentedDirectory)
    assert isinstance(d.inner.inner, SqlDirectory)
    await d.close()
    d = await open_directory(config.with_overrides({"directory": {"cache_ttl": 0}}))
    assert isinstance(d, InstrumentedDirectory)
    await d.close()


def test_every_setting_is_documented() -> None:
    section = next(s for s in all_sections() if s.name == "directory")
    assert len(section.settings) > 40
    for setting in section.settings:
        assert len(setting.doc) > 15, setting.name
    env = {"FDBMAIL_DIRECTORY_TYPE": "ldap", "FDBMAIL_DIRECTORY_LDAP_URL":
           "ldaps://a.example,ldap://b.example", "FDBMAIL_DIRECTORY_CACHE_TTL": "0.5"}
    config = load_config(env=env)
    assert config.directory.type == "ldap"
    assert config.directory.ldap_url == ["ldaps://a.example", "ldap://b.example"]
    assert config.directory.cache_ttl == 0.5


class Slow(Counting):
    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail = False

    async def resolve_recipient(self, address: str) -> list[Principal]:
        self._count("resolve_recipient")
        await self.gate.wait()
        if self.fail:
            raise DirectoryError("down")
        return list(self.answer)


async def test_concurrent_misses_share_one_lookup() -> None:
    inner = Slow()
    d = CachedDirectory(inner, 2.0)
    tasks = [asyncio.create_task(d.resolve_recipient("u@example.com")) for _ in range(20)]
    await asyncio.sleep(0)
    inner.gate.set()
    results = await asyncio.gather(*tasks)
    assert all(r == [P] for r in results)
    assert inner.calls["resolve_recipient"] == 1


async def test_concurrent_password_versions_share_one_lookup_and_are_never_kept() -> None:
    """The credential cache needs the current password version: concurrent asks for
    one login share the look-up under way, and the next ask makes a new one."""
    class Versions(Slow):
        version = "v1"

        async def password_version(self, login: str) -> str | None:
            self._count("password_version")
            await self.gate.wait()
            return f"{login}:{self.version}"

    inner = Versions()
    d = CachedDirectory(inner, 2.0)
    tasks = [asyncio.create_task(d.password_version("u")) for _ in range(5)]
    other = asyncio.create_task(d.password_version("w"))
    await asyncio.sleep(0)
    inner.gate.set()
    assert await asyncio.gather(*tasks) == ["u:v1"] * 5 and await other == "w:v1"
    assert inner.calls["password_version"] == 2
    inner.version = "v2"  # the password changed: the next ask sees it
    assert await d.password_version("u") == "u:v2"
    assert inner.calls["password_version"] == 3


async def test_errors_are_shared_but_not_cached() -> None:
    inner = Slow()
    inner.fail = True
    d = CachedDirectory(inner, 2.0)
    tasks = [asyncio.create_task(d.resolve_recipient("u@example.com")) for _ in range(5)]
    await asyncio.sleep(0)
    inner.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, DirectoryError) for r in results)
    assert inner.calls["resolve_recipient"] == 1
    inner.fail = False
    assert await d.resolve_recipient("u@example.com") == [P]
    assert inner.calls["resolve_recipient"] == 2


async def test_a_cancelled_first_caller_does_not_fail_the_others() -> None:
    inner = Slow()
    d = CachedDirectory(inner, 2.0)
    first = asyncio.create_task(d.resolve_recipient("u@example.com"))
    await asyncio.sleep(0)
    second = asyncio.create_task(d.resolve_recipient("u@example.com"))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    inner.gate.set()
    assert await second == [P]
    assert first.cancelled()
