"""The store contract, on every engine: watches."""

from __future__ import annotations

import asyncio


from fdb_layers.engine.base import Engine
from tests.fdb_layers.engine.helpers import S, write_key


# -- watches ----------------------------------------------------------------------

async def test_watch_fires_when_the_key_changes(engine: Engine) -> None:
    key = S.pack(("watched",))
    await write_key(engine, key, b"1")
    watch = await engine.watch(key)
    waiter = asyncio.create_task(watch.wait())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await write_key(engine, key, b"2")
    await asyncio.wait_for(waiter, 5)
