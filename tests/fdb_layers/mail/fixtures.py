"""Helpers of the mail layer tests: engines opened by hand (plain and under fault
injection; the ``engine`` fixture is in tests/conftest.py), a store dump, and
``twice`` (run a write, run it again, check that the second run changed nothing)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any


from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.faults import FaultyEngine
from fdb_layers.engine.run import transact
from fdb_layers.engine.sqlite import SqliteEngine
from fdb_layers.mail.messages import NewEmail, email_id_for
from fdb_layers.mail.threads import ThreadHeaders
from tests.support.engines import make_engine

ACCOUNT = "alice@example.org"


async def open_engine(
    kind: str, path: str, seed: int = 7, *, not_committed: float = 0.2, unknown: float = 0.2
) -> Engine:
    """``sqlite``, ``foundationdb`` (the test cluster, its key space cleared), each
    optionally ``+faults``."""
    inner: Engine
    if kind.startswith("foundationdb"):
        inner = await make_engine("foundationdb", path)
    else:
        inner = await SqliteEngine.open(path)
    if kind.endswith("+faults"):
        return FaultyEngine(inner, not_committed_rate=not_committed, unknown_result_rate=unknown,
                            seed=seed)
    return inner


async def _dump(tr: Transaction) -> dict[bytes, bytes]:
    return {kv.key: kv.value for kv in await tr.get_range(b"", b"\xff")}


async def dump(engine: Engine) -> dict[bytes, bytes]:
    return await transact(engine, _dump)


async def twice(
    engine: Engine, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
) -> Any:
    """Run a layer write, then again: the second run must be a no-op."""
    first = await transact(engine, fn, *args, **kwargs)
    before = await dump(engine)
    await transact(engine, fn, *args, **kwargs)
    after = await dump(engine)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert not changed, f"{fn.__name__} run twice changed {sorted(changed)[:5]}"
    return first


def blob_id(n: int) -> str:
    return hashlib.sha256(f"blob {n}".encode()).hexdigest()


def new_email(
    n: int,
    *,
    size: int = 1000,
    keywords: tuple[str, ...] = (),
    subject: str = "",
    message_id: str | None = None,
    references: tuple[str, ...] = (),
    summary: bytes = b"summary",
    received_at: float | None = None,
) -> NewEmail:
    return NewEmail(
        email_id=email_id_for(f"delivery-{n}"),
        blob_id=blob_id(n),
        size=size,
        received_at=1_700_000_000.0 + n if received_at is None else received_at,
        summary=summary,
        headers=ThreadHeaders(
            message_id=message_id or f"<m{n}@example.org>",
            references=references,
            subject=subject or f"subject {n}",
        ),
        keywords=keywords,
    )
