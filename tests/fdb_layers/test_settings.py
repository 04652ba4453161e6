"""The store's settings layer (fdb_layers/settings.py) on every engine, each write
run twice (as a retry after commit_unknown_result would)."""

from __future__ import annotations

import pytest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.settings import (
    MAX_VALUE,
    Setting,
    SettingError,
    delete_setting,
    get_setting,
    list_settings,
    set_setting,
)


async def test_set_get_list_delete(engine: Engine) -> None:
    for _ in range(2):
        await transact(engine, set_setting, "dkim", ("example.test", "s1"), b"one")
        await transact(engine, set_setting, "dkim", ("example.test", "s2"), b"two")
        await transact(engine, set_setting, "dkim", ("other.test", "s1"), b"three")
        await transact(engine, set_setting, "other", ("example.test", "s1"), b"not dkim")
    assert await transact(engine, get_setting, "dkim", ("example.test", "s2")) == b"two"
    assert await transact(engine, get_setting, "dkim", ("nowhere.test", "s1")) is None
    assert await transact(engine, list_settings, "dkim", ("example.test",)) == [
        Setting(("example.test", "s1"), b"one"), Setting(("example.test", "s2"), b"two")]
    assert [s.name for s in await transact(engine, list_settings, "dkim")] == [
        ("example.test", "s1"), ("example.test", "s2"), ("other.test", "s1")]
    # a prefix is a whole name part: "example.tes" is not a prefix of "example.test"
    assert await transact(engine, list_settings, "dkim", ("example.tes",)) == []
    assert await transact(engine, delete_setting, "dkim", ("example.test", "s1")) is True
    assert await transact(engine, delete_setting, "dkim", ("example.test", "s1")) is False
    assert await transact(engine, get_setting, "dkim", ("example.test", "s1")) is None
    assert await transact(engine, get_setting, "other", ("example.test", "s1")) == b"not dkim"


async def test_limits(engine: Engine) -> None:
    with pytest.raises(SettingError):
        await transact(engine, set_setting, "dkim", ("a",), b"x" * (MAX_VALUE + 1))
    with pytest.raises(SettingError):
        await transact(engine, set_setting, "dkim", ("a" * 600,), b"x")
    with pytest.raises(SettingError):
        await transact(engine, set_setting, "dkim", (), b"x")
    await transact(engine, set_setting, "dkim", ("a",), b"x" * MAX_VALUE)
    assert await transact(engine, get_setting, "dkim", ("a",)) == b"x" * MAX_VALUE
