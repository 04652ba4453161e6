"""The SQL directory on SQLite with the sample schema, end to end: data made with
``fdbmail directory``, read through open_directory()."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from server.config import Config
from server.directory import Directory, DirectoryError, Principal, open_directory, passwords
from server.directory.cache import CachedDirectory
from server.directory.sql import SqlDirectory, prepare_query

from .conftest import run_cli, write_config
from .hashes import all_hashes

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw"}


def populate(cfg: Path) -> None:
    def ok(*args: str, stdin: str | None = None) -> None:
        assert run_cli(cfg, *args, stdin=stdin) == 0, args

    ok("add", "alice", "--email", "alice@example.com", "--email", "ally@example.com",
       "--email", "al@bücher.example", "--description", "Alice A", "--quota", "1000",
       "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    ok("add", "bob", "--email", "Bob@Example.com", "--password-stdin",
       stdin=PASSWORDS["bob"] + "\n")
    ok("add", "carol", "--email", "carol@example.com", "--password-stdin", "--scheme", "argon2",
       stdin=PASSWORDS["carol"] + "\n")
    ok("add", "dave", "--email", "dave@other.example", "--password-stdin",
       stdin=PASSWORDS["dave"] + "\n")
    ok("add-address", "dave", "@catchall.example")
    ok("add", "erin", "--email", "erin+special@example.com")   # owns a plus-address itself
    # team (team@) -> alice, bob, sub; sub (sub@) -> carol, alice, team: nested and cyclic
    ok("add", "team", "--type", "group", "--email", "team@example.com")
    ok("add", "sub", "--type", "group", "--email", "sub@example.com")
    ok("add", "empty", "--type", "group", "--email", "empty@example.com")
    for group, member in (("team", "alice"), ("team", "bob"), ("team", "sub"),
                          ("sub", "carol"), ("sub", "alice"), ("sub", "team")):
        ok("add-member", group, member)
    # a list address held by several accounts (Stalwart's type 'list')
    ok("add-address", "alice", "list@example.com", "--type", "list")
    ok("add-address", "carol", "list@example.com", "--type", "list")
    ok("add-domain", "NoMail.Example")


@pytest.fixture(scope="session")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder :func:`populate` makes (through ``fdbmail directory``, 17 commands),
    made once: each test of the ``directory`` fixture gets a copy of its own."""
    root = tmp_path_factory.mktemp("sql-directory")
    with pytest.MonkeyPatch.context() as patch:   # as the tests' cheap_bcrypt does
        patch.setattr(passwords, "BCRYPT_ROUNDS", 4)
        populate(write_config(root / "fdbmail.toml", root / "data", {"cache_ttl": 0.0}))
    return root / "data"


@pytest.fixture
async def directory(sql_env: Callable[..., tuple[Path, Config]], populated: Path
                    ) -> AsyncIterator[tuple[Path, Config, Directory]]:
    cfg, config = sql_env()
    shutil.copytree(populated, config.data_dir)
    d = await open_directory(config)
    yield cfg, config, d
    await d.close()


def names(principals: list[Principal]) -> list[str]:
    return [p.name for p in principals]


async def test_fresh_install_creates_the_sample_schema(
        sql_env: Callable[..., tuple[Path, Config]]) -> None:
    _, config = sql_env()
    d = await open_directory(config)
    try:
        assert await d.list_domains() == []
        assert await d.get_principal("nobody") is None
    finally:
        await d.close()
    db = sqlite3.connect(config.data_dir / "directory.sqlite3")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"accounts", "group_members", "emails", "domains"} <= tables


async def test_authenticate(directory: tuple[Path, Config, Directory]) -> None:
    _, _, d = directory
    for name, pw in PASSWORDS.items():
        p = await d.authenticate(name, pw)
        assert p is not None and p.name == name
    assert await d.authenticate("alice", "wrong") is None
    assert await d.authenticate("alice", "") is None
    assert await d.authenticate("", "alice-pw") is None
    assert await d.authenticate("nobody", "alice-pw") is None
    assert await d.authenticate("erin", "") is None            # no password set
    assert await d.authenticate("team", "anything") is None    # groups do not log in
    by_address = await d.authenticate("ALLY@example.com", "alice-pw")
    assert by_address is not None and by_address.name == "alice"


async def test_principal_fields(directory: tuple[Path, Config, Directory]) -> None:
    _, _, d = directory
    alice = await d.get_principal("alice")
    assert alice == Principal(
        id="alice", name="alice", type="individual",
        emails=("alice@example.com", "al@bücher.example", "ally@example.com"),
        quota=1000, member_of=("sub", "team"), description="Alice A")
    team = await d.get_principal("team")
    assert team is not None and team.type == "group" and team.emails == ("team@example.com",)
    dave = await d.get_principal("dave")
    assert dave is not None and dave.emails[0] == "dave@other.example"


async def test_each_hash_format_logs_in(directory: tuple[Path, Config, Directory]) -> None:
    _, config, d = directory
    db = sqlite3.connect(config.data_dir / "directory.sqlite3")
    for fmt, stored in all_hashes("fmt-secret").items():
        db.execute("UPDATE accounts SET secret = ? WHERE name = 'bob'", (stored,))
        db.commit()
        assert await d.authenticate("bob", "fmt-secret") is not None, fmt
        assert await d.authenticate("bob", "fmt-secreT") is None, fmt


async def test_plain_text_passwords_only_when_configured(
        sql_env: Callable[..., tuple[Path, Config]]) -> None:
    for allowed in (False, True):
        cfg, config = sql_env(allow_plaintext_passwords=allowed)
        if not (config.data_dir / "directory.sqlite3").exists():
            assert run_cli(cfg, "add", "plain", "--email", "plain@example.com") == 0
            db = sqlite3.connect(config.data_dir / "directory.sqlite3")
            db.execute("UPDATE accounts SET secret = '{PLAIN}hunter2' WHERE name = 'plain'")
            db.commit()
        d = await open_directory(config)
        try:
            assert (await d.authenticate("plain", "hunter2") is not None) is allowed
            assert await d.authenticate("plain", "hunter3") is None
        finally:
            await d.close()


async def test_addresses_aliases_case_and_idna(directory: tuple[Path, Config, Directory]
                                               ) -> None:
    _, _, d = directory
    for address in ("alice@example.com", "ALICE@EXAMPLE.COM", "ally@example.com",
                    "<ally@Example.Com>", "al@bücher.example", "al@BÜCHER.example",
                    "al@xn--bcher-kva.example"):
        assert names(await d.resolve_recipient(address)) == ["alice"], address
    assert names(await d.resolve_recipient("bob@example.com")) == ["bob"]   # stored mixed case
    assert await d.resolve_recipient("nobody@example.com") == []
    assert await d.resolve_recipient("alice@unknown.example") == []
    assert await d.resolve_recipient("not an address") == []


async def test_hand_written_rows_are_read_canonically(
        sql_env: Callable[..., tuple[Path, Config]]) -> None:
    cfg, config = sql_env()
    assert run_cli(cfg, "add", "h") == 0
    db = sqlite3.connect(config.data_dir / "directory.sqlite3")
    db.execute("INSERT INTO emails (name, address, type) VALUES ('h', 'Hand@XN--BCHER-KVA.Example',"
               " 'primary'), ('h', 'hand@bücher.example', 'alias')")
    db.commit()
    d = await open_directory(config)
    try:
        h = await d.get_principal("h")
        assert h is not None and h.emails == ("hand@bücher.example",)
        assert names(await d.resolve_recipient("HAND@xn--bcher-kva.example")) == ["h"]
    finally:
        await d.close()


async def test_case_sensitive_local_part(sql_env: Callable[..., tuple[Path, Config]]) -> None:
    cfg, config = sql_env(case_sensitive_local_part=True)
    assert run_cli(cfg, "add", "mixed", "--email", "Mixed.Case@Example.com") == 0
    d = await open_directory(config)
    try:
        assert names(await d.resolve_recipient("Mixed.Case@example.COM")) == ["mixed"]
    finally:
        await d.close()


async def test_plus_addressing(directory: tuple[Path, Config, Directory]) -> None:
    _, _, d = directory
    assert names(await d.resolve_recipient("alice+news@example.com")) == ["alice"]
    assert names(await d.resolve_recipient("Alice+a+b@Example.com")) == ["alice"]
    assert names(await d.resolve_recipient("ally+x@example.com")) == ["alice"]
    # an exact address wins over the sub-address rule
    assert names(await d.resolve_recipient("erin+special@example.com")) == ["erin"]
    assert await d.resolve_recipient("erin+other@example.com") == []
    assert names(await d.resolve_recipient("team+x@example.com")) == ["alice", "bob", "carol"]


async def test_plus_addressing_can_be_disabled(sql_env: Callable[..., tuple[Path, Config]]
                                               ) -> None:
    cfg, config = sql_env(subaddress_separator="")
    assert run_cli(cfg, "add", "u", "--email", "u@example.com") == 0
    d = await open_directory(config)
    try:
        assert names(await d.resolve_recipient("u@example.com")) == ["u"]
        assert await d.resolve_recipient("u+tag@example.com") == []
    finally:
        await d.close()


async def test_catch_all(directory: tuple[Path, Config, Directory]) -> None:
    _, _, d = directory
    assert names(await d.resolve_recipient("anything@catchall.example")) == ["dave"]
    assert names(await d.resolve_recipient("x+y@CATCHALL.example")) == ["dave"]
    assert await d.resolve_recipient("anything@other.example") == []
    dave = await d.get_principal("dave")
    assert dave is not None and dave.emails == ("dave@other.example",)   # no "@domain"


async def test_groups_nested_and_cyclic(directory: tuple[Path, Config, Directory]) -> None:
    _, _, d = directory
    team = await d.resolve_recipient("team@example.com")
    assert names(team) == ["alice", "bob", "carol"]
    assert all(p.type == "individual" for p in team)
    assert sorted(names(await d.resolve_recipient("sub@example.com"))) == \
        ["alice", "bob", "carol"]
    assert await d.resolve_recipient("empty@example.com") == []
    assert sorted(names(await d.resolve_recipient("list@example.com"))) == ["alice", "carol"]


async def test_domains(directory: tuple[Path, Config, Directory]) -> None:
    _, _, d = directory
    assert await d.list_domains() == ["bücher.example", "catchall.example", "example.com",
                                      "nomail.example", "other.example"]
    for domain in ("example.com", "EXAMPLE.COM", "bücher.example", "xn--bcher-kva.example",
                   "catchall.example", "nomail.example", "example.com."):
        assert await d.is_local_domain(domain), domain
    for domain in ("example.org", "", "exa mple.com", "%", "_", "com"):
        assert not await d.is_local_domain(domain), domain


HOSTILE = [
    "x'; DROP TABLE accounts; --",
    "' OR '1'='1",
    "\" OR \"\"=\"",
    "alice' --",
    "%",
    "_",
    "alice\x00",
    "?",
    "*",
    "lone\ud800surrogate",
]


async def test_hostile_values_are_only_data(directory: tuple[Path, Config, Directory]) -> None:
    cfg, config, d = directory
    for value in HOSTILE:
        assert await d.get_principal(value) is None
        assert await d.authenticate(value, "alice-pw") is None
        assert await d.authenticate(value, "' OR '1'='1") is None
        assert await d.resolve_recipient(f"{value}@example.com") == []
        assert not await d.is_local_domain(value)
    # the tables are all still there, and a hostile name is stored literally
    assert await d.authenticate("alice", "alice-pw") is not None
    name = "x'); DROP TABLE emails; --"
    assert run_cli(cfg, "add", name, "--email", "weird@example.com") == 0
    p = await d.get_principal(name)
    assert p is not None and p.name == name and p.emails == ("weird@example.com",)
    assert names(await d.resolve_recipient("weird@example.com")) == [name]


async def test_changes_show_at_once_without_cache(directory: tuple[Path, Config, Directory]
                                                  ) -> None:
    cfg, _, d = directory
    assert await d.resolve_recipient("new@example.com") == []
    assert run_cli(cfg, "add-address", "bob", "new@example.com") == 0
    assert names(await d.resolve_recipient("new@example.com")) == ["bob"]
    assert run_cli(cfg, "passwd", "bob", "--password-stdin", stdin="changed\n") == 0
    assert await d.authenticate("bob", "bob-pw") is None
    assert await d.authenticate("bob", "changed") is not None
    assert run_cli(cfg, "remove-member", "team", "bob") == 0
    assert names(await d.resolve_recipient("team@example.com")) == ["alice", "carol"]
    assert run_cli(cfg, "remove", "bob") == 0
    assert await d.resolve_recipient("new@example.com") == []
    assert await d.get_principal("bob") is None


async def test_changes_show_within_the_ttl(sql_env: Callable[..., tuple[Path, Config]]
                                           ) -> None:
    cfg, config = sql_env(cache_ttl=2.0)
    populate(cfg)
    d = await open_directory(config)
    now = [1000.0]
    try:
        assert isinstance(d, CachedDirectory)
        d.cache.clock = lambda: now[0]
        assert names(await d.resolve_recipient("team@example.com")) == ["alice", "bob", "carol"]
        assert not await d.is_local_domain("later.example")
        assert run_cli(cfg, "remove-member", "team", "bob") == 0
        assert run_cli(cfg, "add-domain", "later.example") == 0
        assert run_cli(cfg, "passwd", "alice", "--password-stdin", stdin="new-pw\n") == 0
        # passwords are never cached
        assert await d.authenticate("alice", "new-pw") is not None
        # other answers may be stale, but not for longer than the TTL
        now[0] += 1.9
        assert names(await d.resolve_recipient("team@example.com")) == ["alice", "bob", "carol"]
        assert not await d.is_local_domain("later.example")
        now[0] += 0.1
        assert names(await d.resolve_recipient("team@example.com")) == ["alice", "carol"]
        assert await d.is_local_domain("later.example")
    finally:
        await d.close()


async def test_cache_ttl_with_a_real_clock(sql_env: Callable[..., tuple[Path, Config]]
                                           ) -> None:
    cfg, config = sql_env(cache_ttl=0.2)
    assert run_cli(cfg, "add", "u", "--email", "u@example.com") == 0
    d = await open_directory(config)
    try:
        assert names(await d.resolve_recipient("u@example.com")) == ["u"]
        assert run_cli(cfg, "remove", "u") == 0
        await asyncio.sleep(0.25)
        assert await d.resolve_recipient("u@example.com") == []
    finally:
        await d.close()


async def test_default_cache_ttl_is_two_seconds(sql_env: Callable[..., tuple[Path, Config]]
                                                ) -> None:
    from server.config import load_config
    config = load_config(env={})
    assert config.directory.cache_ttl == 2.0


async def test_concurrent_lookups(directory: tuple[Path, Config, Directory]) -> None:
    _, _, d = directory
    results = await asyncio.gather(*(d.resolve_recipient("team@example.com")
                                     for _ in range(50)))
    assert all(names(r) == ["alice", "bob", "carol"] for r in results)


async def test_broken_query_is_a_directory_error(
        sql_env: Callable[..., tuple[Path, Config]]) -> None:
    _, config = sql_env(sql_query_recipients="SELECT name FROM no_such_table WHERE x = ?")
    d = await open_directory(config)
    try:
        with pytest.raises(DirectoryError):
            await d.resolve_recipient("a@example.com")
    finally:
        await d.close()


async def test_missing_database_without_create_is_a_directory_error(
        sql_env: Callable[..., tuple[Path, Config]]) -> None:
    _, config = sql_env(sql_create_schema=False)
    d = await open_directory(config)
    try:
        with pytest.raises(DirectoryError):
            await d.get_principal("alice")
    finally:
        await d.close()


async def test_metrics(directory: tuple[Path, Config, Directory]) -> None:
    _, _, d = directory

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    found = value("fdbmail_directory_lookups_total", backend="sql", op="resolve_recipient",
                  result="found")
    missing = value("fdbmail_directory_lookups_total", backend="sql", op="resolve_recipient",
                    result="not_found")
    good = value("fdbmail_directory_auth_attempts_total", backend="sql", result="success")
    bad = value("fdbmail_directory_auth_attempts_total", backend="sql", result="failure")
    await d.resolve_recipient("alice@example.com")
    await d.resolve_recipient("nobody@example.com")
    await d.authenticate("alice", "alice-pw")
    await d.authenticate("alice", "nope")
    assert value("fdbmail_directory_lookups_total", backend="sql", op="resolve_recipient",
                 result="found") == found + 1
    assert value("fdbmail_directory_lookups_total", backend="sql", op="resolve_recipient",
                 result="not_found") == missing + 1
    assert value("fdbmail_directory_auth_attempts_total", backend="sql",
                 result="success") == good + 1
    assert value("fdbmail_directory_auth_attempts_total", backend="sql",
                 result="failure") == bad + 1
    assert value("fdbmail_directory_lookup_seconds_count", backend="sql",
                 op="resolve_recipient") >= 2


async def test_vrfy_and_expn(directory: tuple[Path, Config, Directory]) -> None:
    _, config, _ = directory
    backend = SqlDirectory(config.directory, config.data_dir)
    try:
        assert await backend.verify_address("ally") == []                 # aliases: no
        assert await backend.verify_address("alice") == ["alice@example.com"]
        # "%" was a wildcard here (as in Stalwart's query); issue 10, item 17 made the
        # default query take it literally
        assert await backend.verify_address("%") == []
        assert await backend.verify_address("bad\ud800") == []
        assert await backend.expand_list("LIST@example.com") == ["alice@example.com",
                                                                 "carol@example.com"]
        assert await backend.expand_list("alice@example.com") == []
        assert await backend.expand_list("not an address") == []
    finally:
        await backend.close()


@pytest.mark.parametrize(("query", "driver", "text", "count"), [
    ("SELECT a FROM t WHERE b = ?", "sqlite", "SELECT a FROM t WHERE b = ?", 1),
    ("SELECT a FROM t WHERE b = ?", "postgresql", "SELECT a FROM t WHERE b = %s", 1),
    ("SELECT 1 FROM d WHERE n = ? UNION SELECT 1 FROM e WHERE m = ?", "postgresql",
     "SELECT 1 FROM d WHERE n = %s UNION SELECT 1 FROM e WHERE m = %s", 2),
    ("SELECT a FROM t WHERE b LIKE '%' || ? || '%?'", "postgresql",
     "SELECT a FROM t WHERE b LIKE '%%' || %s || '%%?'", 1),
    ("SELECT \"odd?\" FROM t WHERE x = ?", "sqlite", "SELECT \"odd?\" FROM t WHERE x = ?", 1),
])
def test_prepare_query(query: str, driver: str, text: str, count: int) -> None:
    assert prepare_query(query, driver) == (text, count)


async def test_every_refused_login_costs_one_hash_check(
        directory: tuple[Path, Config, Directory], monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10, item 16: an unknown login, an account without a password, a group and a
    wrong password each cost one check of a hash (a dummy one of the site's scheme when
    there is nothing to check), so their latency does not tell them apart."""
    from server.directory import sql as sql_module
    checks: list[str] = []
    real_verify, real_dummy = sql_module.verify_password, sql_module.dummy_verify

    def verify(stored: str, secret: str, **kw: bool) -> bool:
        checks.append("hash")
        return real_verify(stored, secret, **kw)

    def dummy(scheme: str = "bcrypt") -> None:
        checks.append("dummy-" + scheme)
        real_dummy(scheme)

    monkeypatch.setattr(sql_module, "verify_password", verify)
    monkeypatch.setattr(sql_module, "dummy_verify", dummy)
    _, _, d = directory
    for login, secret in (("nobody", "x"), ("erin", "x"), ("team", "x"), ("alice", "x"),
                          ("alice", ""), ("", "x")):
        checks.clear()
        assert await d.authenticate(login, secret) is None
        assert len(checks) == 1, (login, checks)
        assert checks[0] in ("hash", "dummy-bcrypt"), (login, checks)


async def test_vrfy_query_takes_percent_and_underscore_literally(
        directory: tuple[Path, Config, Directory]) -> None:
    """Issue 10, item 17: LIKE wildcards in the looked-up text are characters."""
    _, config, _ = directory
    sql = SqlDirectory(config.directory, config.data_dir)
    try:
        assert await sql.verify_address("ali") == ["alice@example.com"]
        for text in ("%", "_", "a%e", "_lice", "%@%", "!", "\\"):
            assert await sql.verify_address(text) == [], text
    finally:
        await sql.close()
