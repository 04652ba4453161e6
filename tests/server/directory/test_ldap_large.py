"""A directory larger than the server's size limit: domains are listed in pages, and a big
group expands to every member."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import ldap3
import pytest

from server.config import load_config
from server.directory import Directory, DirectoryError, open_directory
from tests.support.slapd import SLAPD, Slapd

from .conftest import GROUPS, PEOPLE, SUFFIX, _group, _ssha, _user, write_config

COUNT = 120
SIZE_LIMIT = 50


@pytest.fixture(scope="module")
def big_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    if not os.path.exists(SLAPD):
        pytest.skip(f"{SLAPD} is absent (install the slapd package)")
    server = Slapd(tmp_path_factory.mktemp("slapd-big"), suffix=SUFFIX, tls=False,
                   extra_config=f"limits * size.soft={SIZE_LIMIT} size.hard={SIZE_LIMIT} "
                   "size.prtotal=unlimited\n")
    hashed = _ssha("pw")
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
        "o: Example\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    entries += [_user(f"u{i}", hashed, f"u{i}@d{i}.test") for i in range(COUNT)]
    entries.append(_group("all", [f"uid=u{i},{PEOPLE}" for i in range(COUNT)],
                          mail="all@d0.test"))
    server.start("\n".join(entries))
    yield server
    server.cleanup()


@pytest.fixture
async def big(big_slapd: Slapd, tmp_path: Path) -> AsyncIterator[Directory]:
    cfg = write_config(tmp_path / "big.toml", tmp_path / "data", {
        "type": "ldap", "cache_ttl": 0.0, "ldap_url": [big_slapd.url],
        "ldap_base_dn": SUFFIX})
    d = await open_directory(load_config(cfg, env={}))
    yield d
    await d.close()


async def test_domains_are_listed_past_the_size_limit(big: Directory) -> None:
    domains = await big.list_domains()
    assert len(domains) == COUNT
    assert domains == sorted(f"d{i}.test" for i in range(COUNT))


async def test_a_big_group_expands_to_every_member(big: Directory) -> None:
    members = await big.resolve_recipient("all@d0.test")
    assert sorted(p.name for p in members) == sorted(f"u{i}" for i in range(COUNT))


async def test_the_size_limit_is_real(big_slapd: Slapd) -> None:
    # Without paging, an (anonymous) search is cut at the size limit.
    anon = ldap3.Connection(ldap3.Server(big_slapd.url, get_info=ldap3.NONE),
                            auto_bind=ldap3.AUTO_BIND_NO_TLS)
    try:
        anon.search(SUFFIX, "(objectClass=inetOrgPerson)", attributes=["uid"])
        assert len(anon.entries) == SIZE_LIMIT
    finally:
        anon.unbind()


async def test_connections_recover_after_a_server_restart(big_slapd: Slapd, big: Directory
                                                          ) -> None:
    assert [p.name for p in await big.resolve_recipient("u1@d1.test")] == ["u1"]
    for i in range(8):
        assert await big.authenticate(f"u{i}", "pw") is not None
    big_slapd.stop()
    with pytest.raises(DirectoryError):
        await big.resolve_recipient("u2@d2.test")
    big_slapd.restart()
    # pooled connections to the old process are dropped and reopened
    for i in range(8):
        assert [p.name for p in await big.resolve_recipient(f"u{i}@d{i}.test")] == [f"u{i}"]
    for i in range(8):
        assert await big.authenticate(f"u{i}", "pw") is not None
        assert await big.authenticate(f"u{i}", "wrong") is None
