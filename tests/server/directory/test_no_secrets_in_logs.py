"""Credentials never reach the logs, whatever goes wrong."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from server.config import Config
from server.directory import DirectoryError, open_directory

from .conftest import run_cli

SECRET = "Sup3r-S3cret-Value"


async def test_sql_failures_do_not_log_the_secret(
        sql_env: Callable[..., tuple[Path, Config]], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cfg, config = sql_env()
    assert run_cli(cfg, "add", "u", "--password-stdin", stdin=SECRET + "\n") == 0
    d = await open_directory(config)
    try:
        assert await d.authenticate("u", SECRET + "x") is None
        db = sqlite3.connect(config.data_dir / "directory.sqlite3")
        db.execute("UPDATE accounts SET secret = ? WHERE name = 'u'", ("{SSHA}" + SECRET,))
        db.commit()
        assert await d.authenticate("u", SECRET) is None       # malformed hash: logged
        db.execute("UPDATE accounts SET secret = ? WHERE name = 'u'", ("{NEW}" + SECRET,))
        db.commit()
        assert await d.authenticate("u", SECRET) is None       # unknown scheme: logged
    finally:
        await d.close()
    _, broken = sql_env(sql_query_name="SELECT nonsense FROM nowhere WHERE x = ?")
    d = await open_directory(broken)
    try:
        with pytest.raises(DirectoryError):
            await d.authenticate("u", SECRET)
    finally:
        await d.close()
    assert caplog.records, "the failures above are logged"
    assert SECRET not in caplog.text
