"""Running the mail layer's transactions for a protocol, with the store's
failures as domain errors (:class:`~.errors.StoreUnavailable`,
:class:`~.errors.StorageFull`): engine errors do not leave ``fdb_layers``.

Inside the layer, :func:`fdb_layers.engine.run.transact` is the retry loop;
code outside it calls :func:`transact` here instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from ..engine import run
from ..engine.base import Engine, LayoutVersionError, StoreError, StoreFull, Transaction
from .errors import StorageFull, StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")


async def transact(
    engine: Engine,
    fn: Callable[Concatenate[Transaction, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run ``fn(tr, *args, **kwargs)`` until it commits (the engine's retry loop);
    a failure of the store raises StoreUnavailable (StorageFull for a full disk),
    any other exception of ``fn`` propagates as it is."""
    try:
        return await run.transact(engine, fn, *args, **kwargs)
    except StoreFull as e:
        raise StorageFull(str(e)) from e
    except (StoreError, LayoutVersionError) as e:
        raise StoreUnavailable(str(e) or type(e).__name__) from e


class PartFailed(Exception):
    """A part of a transaction's body raised (see :func:`run_part`); ``error`` is why."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def run_part(
    tr: Transaction,
    fn: Callable[Concatenate[Transaction, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run one part of a body that several callers share (a batch of entries in one
    transaction): the store's errors pass through untouched, for the retry loop;
    any other exception of ``fn`` becomes :class:`PartFailed`, so the caller can
    tell the part's own failure (drop that part, run the rest again) from the
    transaction's."""
    try:
        return await fn(tr, *args, **kwargs)
    except StoreError:
        raise
    except Exception as e:
        raise PartFailed(e) from e
