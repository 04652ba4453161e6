"""The SQLite directory's password versions, reused while nothing was committed to its file
(server/directory/sqlite_memo.py): a password change by the CLI, by another connection or
by the directory itself shows at the next look-up, as when every look-up asks the database
(the PasswordVersions contract: "a password change in the directory takes effect at once");
a file being committed to is asked as before."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from server.config import Config
from server.directory.settings import DirectorySettings
from server.directory.sql import SqlDirectory
from server.directory.sqlite_memo import PasswordVersionMemo

from .conftest import run_cli

Looked = list[str]


@pytest.fixture
async def counted(sql_env: Callable[..., tuple[Path, Config]]
                  ) -> AsyncIterator[tuple[Path, Config, SqlDirectory, Looked]]:
    """An SQL directory of two accounts, and the logins its database was asked about."""
    cfg, config = sql_env()
    for name in ("alice", "bob"):
        assert run_cli(cfg, "add", name, "--password-stdin", stdin=f"{name}-pw\n") == 0
    d = SqlDirectory(config.get(DirectorySettings), config.data_dir)
    looked: Looked = []
    ask = d._login_version

    def asked(login: str) -> str | None:
        looked.append(login)
        return ask(login)

    d._login_version = asked  # type: ignore[method-assign]
    yield cfg, config, d, looked
    await d.close()


async def test_a_version_is_reused_until_the_file_changes(
        counted: tuple[Path, Config, SqlDirectory, Looked]) -> None:
    cfg, config, d, looked = counted
    alice, bob = await d.password_version("alice"), await d.password_version("bob")
    assert alice and bob and alice != bob
    assert await d.password_version("alice") == alice
    assert await d.password_version("bob") == bob
    assert await d.password_version("nobody") is None
    assert await d.password_version("nobody") is None
    assert looked == ["alice", "bob", "nobody"]  # nothing committed: asked once each

    # the CLI (another process) changes alice's password: the next look-up sees it
    assert run_cli(cfg, "passwd", "alice", "--password-stdin", stdin="new-pw\n") == 0
    changed = await d.password_version("alice")
    assert changed and changed != alice
    assert await d.password_version("bob") == bob
    assert await d.authenticate("alice", "new-pw") is not None

    # another connection writes the stored hash by hand, in a transaction of its own
    db = sqlite3.connect(config.data_dir / "directory.sqlite3")
    with db:
        db.execute("UPDATE accounts SET secret = ? WHERE name = 'bob'", ("{PLAIN}other",))
    db.close()
    assert await d.password_version("bob") not in (None, bob)
    assert await d.password_version("alice") == changed

    # an account removed: no version
    assert run_cli(cfg, "remove", "alice") == 0
    assert await d.password_version("alice") is None


def test_a_file_being_committed_to_is_not_told(tmp_path: Path) -> None:
    path = tmp_path / "directory.sqlite3"
    memo = PasswordVersionMemo(path)
    assert memo.look() is None  # no file yet: the database is asked
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    first = memo.look()
    assert first is not None
    memo.put("alice", first, "v1")
    assert memo.get("alice", first) == (True, "v1")
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO t VALUES (1)")
    assert memo.look() is None  # the writer holds the file: no waiting, no answer
    writer.execute("COMMIT")
    second = memo.look()
    assert second is not None and second != first
    assert memo.get("alice", second) == (False, None)
    memo.put("alice", first, "stale")  # looked up before the change: not kept
    assert memo.get("alice", second) == (False, None)
    memo.close()
    writer.close()
