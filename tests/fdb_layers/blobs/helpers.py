"""Helpers of the blob layer tests: a clock to move forward, reference counts."""

from __future__ import annotations

import time

from fdb_layers.blobs.refs import get_blob_refcount
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact


class Clock:
    """Real time plus an offset that tests move forward (blob mtimes are real)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


async def refcount(engine: Engine, blob_id: str) -> int:
    return await transact(engine, get_blob_refcount, blob_id)
