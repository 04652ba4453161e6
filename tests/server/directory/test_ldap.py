"""The LDAP directory against a real slapd (tests/support/slapd.py): authentication by bind and
by hash comparison, addresses, groups, domains, hostile filter values, live changes, TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import ldap3
import pytest

from server.config import Config, SettingValue
from server.directory import Directory, DirectoryError, Principal, open_directory
from server.directory.cache import CachedDirectory
from server.directory.ldap import LdapDirectory
from tests.support.slapd import Slapd, free_port

from .conftest import (
    GROUPS,
    LDAP_PASSWORDS,
    PEOPLE,
    READER_PW,
    _ssha,
    run_cli,
    write_config,
)

MODES = ["bind", "lookup"]


@pytest.fixture(params=MODES)
async def directory(request: pytest.FixtureRequest, ldap_config: Callable[..., Config]
                    ) -> AsyncIterator[Directory]:
    d = await open_directory(ldap_config(ldap_auth_method=request.param))
    yield d
    await d.close()


def names(principals: list[Principal]) -> list[str]:
    return [p.name for p in principals]


async def test_authenticate_each_hash_format(directory: Directory) -> None:
    # alice {SSHA} by slappasswd, bob {CRYPT}$6$ by openssl, carol {SSHA512}, dave {CRYPT}$5$
    # with rounds=, erin {CRYPT}$2b$: slapd checks them on bind, we check them on lookup.
    for login, pw in LDAP_PASSWORDS.items():
        p = await directory.authenticate(login, pw)
        assert p is not None and p.name == login, login
        assert await directory.authenticate(login, pw + "x") is None, login


async def test_bad_logins(directory: Directory) -> None:
    assert await directory.authenticate("alice", "wrong") is None
    assert await directory.authenticate("alice", "") is None      # no unauthenticated bind
    assert await directory.authenticate("", "") is None
    assert await directory.authenticate("nobody", "alice-pw") is None
    assert await directory.authenticate("team", "anything") is None
    by_mail = await directory.authenticate("Alice@Example.test", "alice-pw")
    assert by_mail is not None and by_mail.name == "alice"


@pytest.mark.parametrize("login", [
    "*", "a*", "*)(uid=*", "alice)(|(uid=*", "alice\x00", "\\", "alice\\2a", "(uid=alice)",
    "*)(objectClass=*", "ALICE*", "x" * 500, "al ice",
])
async def test_hostile_logins_match_nothing(directory: Directory, login: str) -> None:
    for pw in set(LDAP_PASSWORDS.values()):
        assert await directory.authenticate(login, pw) is None
    assert await directory.get_principal(login) is None
    assert await directory.resolve_recipient(f"{login}@example.test") == []
    assert not await directory.is_local_domain(login)


async def test_the_servers_matching_rules_apply_and_the_name_is_canonical(
        directory: Directory) -> None:
    # uid uses caseIgnoreMatch with RFC 4518 insignificant-space handling: these are alice,
    # and the principal carries the stored name, never the login as typed.
    for login in ("ALICE", " alice", "alice "):
        p = await directory.authenticate(login, LDAP_PASSWORDS["alice"])
        assert p is not None and p.name == "alice", login


async def test_filter_characters_in_a_real_name(directory: Directory) -> None:
    name = "star*)(uid=*"
    p = await directory.authenticate(name, LDAP_PASSWORDS[name])
    assert p is not None and p.name == name
    got = await directory.get_principal(name)
    assert got is not None and got.emails == ("star@example.test",)


async def test_principal_fields(directory: Directory) -> None:
    alice = await directory.get_principal("alice")
    assert alice is not None
    assert alice.name == "alice" and alice.type == "individual"
    assert alice.emails == ("alice@example.test", "ally@example.test", "alice@bücher.test")
    assert alice.quota == 1000000
    assert sorted(alice.member_of) == ["movers", "sub", "team"]
    assert alice.description == "Alice Example"
    assert len(alice.id) == 36 and alice.id.count("-") == 4     # entryUUID
    again = await directory.get_principal("alice")
    assert again is not None and again.id == alice.id
    team = await directory.get_principal("team")
    assert team is not None and team.type == "group" and team.emails == ("team@example.test",)


async def test_resolve_addresses(directory: Directory) -> None:
    for address in ("alice@example.test", "ALICE@EXAMPLE.TEST", "ally@example.test",
                    "alice+tag@example.test", "ally+x+y@example.test",
                    "alice@xn--bcher-kva.test", "alice@BÜCHER.test"):
        assert names(await directory.resolve_recipient(address)) == ["alice"], address
    assert names(await directory.resolve_recipient("who@catchall.test")) == ["dave"]
    assert names(await directory.resolve_recipient("who+x@CatchAll.test")) == ["dave"]
    assert await directory.resolve_recipient("nobody@example.test") == []
    assert await directory.resolve_recipient("alice@unknown.test") == []
    assert await directory.resolve_recipient("not an address") == []


async def test_groups_nested_and_cyclic(directory: Directory) -> None:
    team = await directory.resolve_recipient("team@example.test")
    assert sorted(names(team)) == ["alice", "bob", "carol"]
    assert len(team) == 3 and all(p.type == "individual" for p in team)
    assert sorted(names(await directory.resolve_recipient("sub@example.test"))) == \
        ["alice", "bob", "carol"]
    assert names(await directory.resolve_recipient("team+x@example.test")) == names(team)


async def test_posix_groups_by_member_uid(directory: Directory) -> None:
    devs = await directory.resolve_recipient("devs@example.test")
    assert sorted(names(devs)) == ["bob", "erin"]
    bob = await directory.get_principal("bob")
    assert bob is not None and sorted(bob.member_of) == ["devs", "team"]
    group = await directory.get_principal("devs")
    assert group is not None and group.type == "group"


async def test_domains(directory: Directory) -> None:
    assert await directory.list_domains() == ["bücher.test", "catchall.test", "example.test",
                                              "other.test"]
    for domain in ("example.test", "EXAMPLE.test", "bücher.test", "xn--bcher-kva.test",
                   "catchall.test", "other.test."):
        assert await directory.is_local_domain(domain), domain
    for domain in ("example.org", "test", "*", "xample.test", ""):
        assert not await directory.is_local_domain(domain), domain


async def test_password_change_shows_at_next_authenticate(
        slapd: Slapd, directory: Directory) -> None:
    dn = f"uid=frank,{PEOPLE}"
    admin = slapd.admin()
    try:
        assert await directory.authenticate("frank", LDAP_PASSWORDS["frank"]) is not None
        admin.modify(dn, {"userPassword": [(ldap3.MODIFY_REPLACE, [_ssha("frank-new")])]})
        assert await directory.authenticate("frank", LDAP_PASSWORDS["frank"]) is None
        assert await directory.authenticate("frank", "frank-new") is not None
    finally:
        admin.modify(dn, {"userPassword": [(ldap3.MODIFY_REPLACE,
                                            [_ssha(LDAP_PASSWORDS["frank"])])]})
        admin.unbind()


async def test_group_change_shows_at_next_resolve(slapd: Slapd, directory: Directory) -> None:
    group = f"cn=movers,{GROUPS}"
    admin = slapd.admin()
    try:
        assert names(await directory.resolve_recipient("movers@example.test")) == ["alice"]
        admin.modify(group, {"member": [(ldap3.MODIFY_ADD, [f"uid=frank,{PEOPLE}"])]})
        assert sorted(names(await directory.resolve_recipient("movers@example.test"))) == \
            ["alice", "frank"]
        frank = await directory.get_principal("frank")
        assert frank is not None and frank.member_of == ("movers",)
        admin.modify(group, {"member": [(ldap3.MODIFY_DELETE, [f"uid=alice,{PEOPLE}"])]})
        assert names(await directory.resolve_recipient("movers@example.test")) == ["frank"]
    finally:
        admin.modify(group, {"member": [(ldap3.MODIFY_REPLACE, [f"uid=alice,{PEOPLE}"])]})
        admin.unbind()


async def test_cache_in_front_of_ldap(slapd: Slapd, ldap_config: Callable[..., Config]) -> None:
    d = await open_directory(ldap_config(cache_ttl=2.0))
    assert isinstance(d, CachedDirectory)
    now = [0.0]
    d.cache.clock = lambda: now[0]
    admin = slapd.admin()
    dn = f"uid=frank,{PEOPLE}"
    try:
        assert names(await d.resolve_recipient("frank.alias@example.test")) == []
        admin.modify(dn, {"mailAlternateAddress": [(ldap3.MODIFY_ADD,
                                                    ["frank.alias@example.test"])]})
        assert names(await d.resolve_recipient("frank.alias@example.test")) == []   # cached
        now[0] += 2.0
        assert names(await d.resolve_recipient("frank.alias@example.test")) == ["frank"]
    finally:
        admin.modify(dn, {"mailAlternateAddress": [(ldap3.MODIFY_DELETE, [])]})
        admin.unbind()
        await d.close()


async def test_anonymous_service_bind_cannot_compare_hashes(
        ldap_config: Callable[..., Config]) -> None:
    # userPassword is readable by the reader only: an anonymous lookup sees no hash.
    d = await open_directory(ldap_config(ldap_bind_dn="", ldap_bind_password="",
                                         ldap_auth_method="lookup"))
    try:
        assert await d.authenticate("alice", "alice-pw") is None
        assert names(await d.resolve_recipient("alice@example.test")) == ["alice"]
    finally:
        await d.close()
    d = await open_directory(ldap_config(ldap_bind_dn="", ldap_bind_password="",
                                         ldap_auth_method="bind"))
    try:
        assert await d.authenticate("alice", "alice-pw") is not None
    finally:
        await d.close()


async def test_service_password_from_a_file(tmp_path: Path, ldap_config: Callable[..., Config]
                                            ) -> None:
    secret_file = tmp_path / "ldap-password"
    secret_file.write_text(READER_PW + "\n")
    d = await open_directory(ldap_config(ldap_bind_password="",
                                         ldap_bind_password_file=str(secret_file),
                                         ldap_auth_method="lookup"))
    try:
        assert await d.authenticate("alice", "alice-pw") is not None   # reads userPassword
    finally:
        await d.close()
    d = await open_directory(ldap_config(ldap_bind_password_file=str(tmp_path / "missing")))
    try:
        with pytest.raises(DirectoryError):
            await d.get_principal("alice")
    finally:
        await d.close()


async def test_wrong_service_password_is_a_directory_error(
        ldap_config: Callable[..., Config]) -> None:
    d = await open_directory(ldap_config(ldap_bind_password="wrong"))
    try:
        with pytest.raises(DirectoryError):
            await d.get_principal("alice")
    finally:
        await d.close()


async def test_server_down_is_a_directory_error(ldap_config: Callable[..., Config]) -> None:
    d = await open_directory(ldap_config(ldap_url=[f"ldap://127.0.0.1:{free_port()}"],
                                         ldap_timeout=1.0))
    try:
        with pytest.raises(DirectoryError):
            await d.resolve_recipient("alice@example.test")
        with pytest.raises(DirectoryError):
            await d.authenticate("alice", "alice-pw")
    finally:
        await d.close()


async def test_second_url_is_used_when_the_first_is_down(
        slapd: Slapd, ldap_config: Callable[..., Config]) -> None:
    d = await open_directory(ldap_config(
        ldap_url=[f"ldap://127.0.0.1:{free_port()}", slapd.url], ldap_timeout=1.0))
    try:
        assert names(await d.resolve_recipient("alice@example.test")) == ["alice"]
    finally:
        await d.close()


@pytest.mark.parametrize("how", ["starttls", "ldaps"])
async def test_tls_with_a_ca_file(slapd: Slapd, ldap_config: Callable[..., Config],
                                  how: str) -> None:
    settings: dict[str, Any] = {"ldap_tls_ca_file": str(slapd.ca_file)}
    if how == "starttls":
        settings["ldap_starttls"] = True
    else:
        settings["ldap_url"] = [slapd.ldaps_url]
    d = await open_directory(ldap_config(**settings))
    try:
        assert await d.authenticate("alice", "alice-pw") is not None
        assert names(await d.resolve_recipient("alice@example.test")) == ["alice"]
    finally:
        await d.close()


async def test_tls_refuses_an_unknown_ca(slapd: Slapd, ldap_config: Callable[..., Config]
                                         ) -> None:
    d = await open_directory(ldap_config(ldap_url=[slapd.ldaps_url], ldap_timeout=2.0))
    try:
        with pytest.raises(DirectoryError):
            await d.get_principal("alice")
    finally:
        await d.close()


async def test_vrfy_and_expn(ldap_config: Callable[..., Config]) -> None:
    backend = LdapDirectory(ldap_config().directory)
    try:
        assert await backend.verify_address("ally") == ["alice@example.test"]
        assert await backend.verify_address("*") == []
        assert sorted(await backend.expand_list("team@example.test")) == [
            "alice@example.test", "bob@example.test", "carol@example.test"]
        assert sorted(await backend.expand_list("DEVS@example.test")) == [
            "bob@example.test", "erin@example.test"]
        assert await backend.expand_list("alice@example.test") == []    # not a list
        assert await backend.expand_list("*@example.test") == []
    finally:
        await backend.close()


def test_binary_ids_become_hex() -> None:
    from server.directory.ldap import _Entry
    entry = _Entry("cn=x", {"objectguid": [bytes([0xFF, 0x00, 0x10])], "entryuuid": [b"u-1"]})
    assert entry.identifier("objectGUID") == "ff0010"
    assert entry.identifier("entryUUID") == "u-1"
    assert entry.identifier("missing") == ""


def test_cli_reads_an_ldap_directory(
        tmp_path: Path, ldap_settings: dict[str, SettingValue],
        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "cli-ldap.toml", tmp_path / "data", ldap_settings)
    assert run_cli(cfg, "resolve", "team@example.test") == 0
    assert sorted(capsys.readouterr().out.split()) == sorted([
        "alice", "alice@example.test", "bob", "bob@example.test", "carol",
        "carol@example.test"])
    assert run_cli(cfg, "show", "alice") == 0
    assert "quota: 1000000" in capsys.readouterr().out
    assert run_cli(cfg, "domains") == 0
    assert "example.test" in capsys.readouterr().out.split()
    assert run_cli(cfg, "add", "x") == 1        # LDAP is managed with LDAP tools
