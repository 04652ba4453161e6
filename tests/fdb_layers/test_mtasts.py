"""The MTA-STS policy cache (fdb_layers/mtasts.py), on every engine."""

from __future__ import annotations

import pytest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mtasts import MAX_TEXT, CachedPolicy, delete_policy, get_policy, set_policy

TEXT = "version: STSv1\nmode: enforce\nmx: mx.remote.test\nmax_age: 600\n"


async def test_set_get_replace_delete(engine: Engine) -> None:
    assert await transact(engine, get_policy, "remote.test") is None
    first = CachedPolicy("1", TEXT, 1000.0, 600)
    await transact(engine, set_policy, "Remote.Test", first)
    assert await transact(engine, get_policy, "remote.test") == first
    assert await transact(engine, get_policy, "other.test") is None
    second = CachedPolicy("2", TEXT.replace("enforce", "testing"), 2000.0, 600)
    await transact(engine, set_policy, "remote.test", second)
    assert await transact(engine, get_policy, "REMOTE.test") == second
    await transact(engine, delete_policy, "remote.test")
    assert await transact(engine, get_policy, "remote.test") is None


def test_freshness() -> None:
    """RFC 8461 section 3.2: a policy is cached at most max_age seconds."""
    p = CachedPolicy("1", TEXT, 1000.0, 600)
    assert p.fresh(1599.0) and not p.fresh(1600.0)


async def test_oversized_text_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError):
        await transact(engine, set_policy, "remote.test",
                       CachedPolicy("1", "x" * (MAX_TEXT + 1), 0.0, 1))
    assert await transact(engine, get_policy, "remote.test") is None
