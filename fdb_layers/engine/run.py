"""The one retry loop.  Layer functions take ``tr`` first and never commit;
:func:`transact` runs them, commits, and on a retryable error runs them again.

Metrics are recorded here, outside the body, so a re-run body counts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from prometheus_client import Counter, Histogram

from .base import Engine, StoreError, Transaction

P = ParamSpec("P")
T = TypeVar("T")

TRANSACTIONS = Counter(
    "fdbmail_store_transactions_total",
    "Transactions run to the end, by result (committed, error).",
    ["engine", "result"],
)
RETRIES = Counter(
    "fdbmail_store_retries_total",
    "Transaction attempts retried, by reason (FoundationDB error name).",
    ["engine", "reason"],
)
COMMIT_SECONDS = Histogram(
    "fdbmail_store_commit_seconds",
    "Time from the start of a commit to its acknowledgement (durable).",
    ["engine"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


async def transact(
    engine: Engine,
    fn: Callable[Concatenate[Transaction, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run ``fn(tr, *args, **kwargs)`` in a transaction until it commits.

    On a store error the transaction's ``on_error`` decides: for a retryable one
    (conflict, unknown commit result, too old, and on FoundationDB whatever its
    ``on_error`` retries: throttling, a process behind, ...) it backs off and the
    body runs again on the reset transaction; any other error it raises, and so
    does any other exception: it propagates and nothing is written.
    """
    tr = engine.create_transaction()
    try:
        while True:
            try:
                result = await fn(tr, *args, **kwargs)
                started = time.perf_counter()
                await tr.commit()
                COMMIT_SECONDS.labels(engine.name).observe(time.perf_counter() - started)
                TRANSACTIONS.labels(engine.name, "committed").inc()
                return result
            except StoreError as e:
                try:
                    # the engine decides: FoundationDB's own on_error (its retry
                    # predicates and backoff), or the embedded engine's equivalent
                    await tr.on_error(e)
                except BaseException:
                    TRANSACTIONS.labels(engine.name, "error").inc()
                    raise
                RETRIES.labels(engine.name, e.reason).inc()
            except BaseException:
                TRANSACTIONS.labels(engine.name, "error").inc()
                raise
    finally:
        tr.cancel()

