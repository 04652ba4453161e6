"""The SQL directory on PostgreSQL (psycopg) with the sample schema and the default queries:
the same end-to-end checks as on SQLite, against a real server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from server.config import load_config
from server.directory import Directory, open_directory
from server.directory.schema import POSTGRES_SCHEMA

from .conftest import run_cli, write_config
from .pg import Postgres, unavailable_reason
from .test_sql import HOSTILE, PASSWORDS, names, populate


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    existing = os.environ.get("FDBMAIL_TEST_POSTGRES_DSN")
    if existing:
        yield existing
        return
    server = Postgres()
    server.start()
    yield server.dsn
    server.stop()


@pytest.fixture
def pg_config(postgres_dsn: str, tmp_path: Path) -> Iterator[Path]:
    """A fresh database with the sample schema, and a config file pointing at it."""
    import psycopg
    name = f"fdbmail_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{postgres_dsn} dbname={name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(POSTGRES_SCHEMA)
    yield write_config(tmp_path / "pg.toml", tmp_path / "data", {
        "cache_ttl": 0.0, "sql_driver": "postgresql", "sql_dsn": dsn})
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_directory(pg_config: Path) -> AsyncIterator[Directory]:
    populate(pg_config)
    d = await open_directory(load_config(pg_config, env={}))
    yield d
    await d.close()


async def test_authenticate(pg_directory: Directory) -> None:
    for name, pw in PASSWORDS.items():
        p = await pg_directory.authenticate(name, pw)
        assert p is not None and p.name == name
    assert await pg_directory.authenticate("alice", "wrong") is None
    assert await pg_directory.authenticate("team", "x") is None


async def test_resolve(pg_directory: Directory) -> None:
    d = pg_directory
    assert names(await d.resolve_recipient("ALLY@example.com")) == ["alice"]
    assert names(await d.resolve_recipient("al@xn--bcher-kva.example")) == ["alice"]
    assert names(await d.resolve_recipient("alice+tag@example.com")) == ["alice"]
    assert names(await d.resolve_recipient("erin+special@example.com")) == ["erin"]
    assert names(await d.resolve_recipient("x@catchall.example")) == ["dave"]
    assert names(await d.resolve_recipient("team@example.com")) == ["alice", "bob", "carol"]
    assert sorted(names(await d.resolve_recipient("list@example.com"))) == ["alice", "carol"]
    assert await d.resolve_recipient("nobody@example.com") == []


async def test_domains(pg_directory: Directory) -> None:
    assert await pg_directory.list_domains() == ["bücher.example", "catchall.example",
                                                 "example.com", "nomail.example",
                                                 "other.example"]
    assert await pg_directory.is_local_domain("EXAMPLE.com")
    assert await pg_directory.is_local_domain("xn--bcher-kva.example")
    assert not await pg_directory.is_local_domain("example.org")


async def test_hostile_values(pg_directory: Directory) -> None:
    for value in HOSTILE:
        assert await pg_directory.get_principal(value) is None
        assert await pg_directory.authenticate(value, "alice-pw") is None
        assert await pg_directory.resolve_recipient(f"{value}@example.com") == []
    assert await pg_directory.authenticate("alice", "alice-pw") is not None


async def test_changes_show_at_once(pg_config: Path, pg_directory: Directory) -> None:
    assert run_cli(pg_config, "passwd", "bob", "--password-stdin", stdin="changed\n") == 0
    assert await pg_directory.authenticate("bob", "changed") is not None
    assert run_cli(pg_config, "remove-member", "team", "bob") == 0
    assert names(await pg_directory.resolve_recipient("team@example.com")) == ["alice", "carol"]


async def test_vrfy_takes_wildcards_literally(pg_config: Path) -> None:
    """The default verify query's escaping works on PostgreSQL too (issue 10, item 17)."""
    from server.directory.sql import SqlDirectory
    populate(pg_config)
    config = load_config(pg_config, env={})
    sql = SqlDirectory(config.directory, config.data_dir)
    try:
        assert await sql.verify_address("ali") == ["alice@example.com"]
        for text in ("%", "_", "_lice", "!", "\\"):
            assert await sql.verify_address(text) == [], text
    finally:
        await sql.close()
