"""Helpers of the queue layer tests: envelopes, and writes run twice (a retry
after commit_unknown_result must change nothing)."""

from __future__ import annotations

from fdb_layers.blobs.refs import get_blob_refcount
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.queue import Envelope, Recipient, enqueue_message

BLOB = "b" * 64


def envelope(recipients: int = 2, *, due_at: float = 100.0, created_at: float = 0.0,
             blob_id: str = BLOB) -> Envelope:
    return Envelope(
        sender="alice@example.org",
        recipients=tuple(
            Recipient(f"rcpt{i}@example.net", ("FAILURE", "DELAY"), f"rfc822;rcpt{i}@example.net")
            for i in range(recipients)
        ),
        blob_id=blob_id,
        size=1234,
        created_at=created_at,
        due_at=due_at,
        envid="ENV-1",
        ret="HDRS",
    )


async def enqueue(engine: Engine, queue_id: str, env: Envelope | None = None) -> None:
    """Enqueue twice, as a retry after an unknown result would."""
    for _ in range(2):
        await transact(engine, enqueue_message, queue_id, env or envelope())


async def refcount(engine: Engine, blob_id: str = BLOB) -> int:
    return await transact(engine, get_blob_refcount, blob_id)
