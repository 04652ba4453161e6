"""App password records and their digest index (fdb_layers/tokens.py), on every engine
(faults included: each write may run twice)."""

from __future__ import annotations

import pytest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.tokens import (
    MAX_PER_ACCOUNT,
    AppToken,
    TokenError,
    TooManyTokens,
    create_token,
    find_token,
    get_token,
    list_tokens,
    revoke_token,
    token_digest,
    touch_token,
)


def _token(token_id: str, secret: str, created: int = 100) -> AppToken:
    return AppToken(token_id, f"name {token_id}", "alice", created,
                    digest=token_digest(secret))


async def test_create_find_touch_revoke(engine: Engine) -> None:
    made = await transact(engine, create_token, "acc", _token("t1", "s1"))
    assert made == _token("t1", "s1")
    # the same create again (a retry after an unknown result) answers the record
    assert await transact(engine, create_token, "acc", _token("t1", "s1")) == made
    with pytest.raises(TokenError):  # another secret under a taken id
        await transact(engine, create_token, "acc", _token("t1", "other"))
    assert await transact(engine, find_token, token_digest("s1")) == ("acc", made)
    assert await transact(engine, find_token, token_digest("s2")) is None
    assert await transact(engine, list_tokens, "other") == []

    await transact(engine, touch_token, "acc", "t1", 200, 3600)
    used = await transact(engine, get_token, "acc", "t1")
    assert used is not None and used.last_used == 200
    await transact(engine, touch_token, "acc", "t1", 300, 3600)  # within the interval
    assert await transact(engine, get_token, "acc", "t1") == used

    assert await transact(engine, revoke_token, "acc", "t1", 400)
    assert await transact(engine, revoke_token, "acc", "t1", 500)  # idempotent
    assert not await transact(engine, revoke_token, "acc", "nope", 500)
    assert not await transact(engine, revoke_token, "other", "t1", 500)  # not its own
    assert await transact(engine, find_token, token_digest("s1")) is None
    [gone] = await transact(engine, list_tokens, "acc")
    assert gone.revoked == 400 and gone.last_used == 200


async def test_the_cap_drops_the_oldest_revoked_record(engine: Engine) -> None:
    for i in range(MAX_PER_ACCOUNT):
        await transact(engine, create_token, "acc", _token(f"t{i:02}", f"s{i}", created=i))
    with pytest.raises(TooManyTokens):
        await transact(engine, create_token, "acc", _token("new", "snew", created=999))
    await transact(engine, revoke_token, "acc", "t05", 1000)
    await transact(engine, revoke_token, "acc", "t03", 1000)
    await transact(engine, create_token, "acc", _token("new", "snew", created=999))
    ids = [t.id for t in await transact(engine, list_tokens, "acc")]
    assert len(ids) == MAX_PER_ACCOUNT and "t03" not in ids and "t05" in ids
    assert ids[-1] == "new"


async def test_a_new_token_must_carry_its_digest(engine: Engine) -> None:
    with pytest.raises(ValueError):
        await transact(engine, create_token, "acc", AppToken("t", "n", "alice", 1))
