"""Operation markers: what a layer call did, kept so that a retry returns it.

A layer call that reports what it changed (MOVE's COPYUID pairs, EXPUNGE's UIDs,
an Email/set destroy's "it was there") cannot recompute that on a retry after
``commit_unknown_result``: the first attempt may have committed, and the retry then
finds nothing left to change.  The caller names each such call with an *op id*
(generated once, before the retry loop, like a delivery id); the call records its
result under ``[op_id, step]`` in the same transaction as its changes, and a call
that finds its marker returns the recorded result and changes nothing.  ``step``
tells apart the batches of one operation (EXPUNGE's ``after_uid``).

A marker is written only by a call that changed something (took a modseq): a call
that changed nothing returns the same thing when run again.  Markers are indexed
by that modseq and forgotten with the change log (:func:`expire_markers`, from
maintenance): a retry comes seconds after its first attempt, the log is kept days.
"""

from __future__ import annotations

from .changes import ChangeSet
from ..engine.base import Transaction
from ..keys import TupleElement, unpack
from .layout import AccountKeys, account_keys, pack

MAX_OP_ID = 500


def _check(op_id: str) -> None:
    if not op_id or len(op_id) > MAX_OP_ID:
        raise ValueError("an op id of 1..500 characters is required")


async def read_marker(
    tr: Transaction, keys: AccountKeys, op_id: str, step: int = 0
) -> tuple[TupleElement, ...] | None:
    """The result recorded by an earlier run of this call, or None."""
    found = await read_marker_modseq(tr, keys, op_id, step)
    return None if found is None else found[1]


async def read_marker_modseq(
    tr: Transaction, keys: AccountKeys, op_id: str, step: int = 0
) -> tuple[int, tuple[TupleElement, ...]] | None:
    """The modseq an earlier run of this call changed things at, and its recorded
    result, or None: what that run wrote carries this modseq unless changed since."""
    _check(op_id)
    raw = await tr.get(keys.op.pack((op_id, step)))
    if raw is None:
        return None
    modseq, result = unpack(raw)
    return int(modseq), tuple(result)


async def write_marker(
    tr: Transaction,
    keys: AccountKeys,
    changes: ChangeSet,
    op_id: str,
    result: tuple[TupleElement, ...],
    step: int = 0,
) -> None:
    """Record the call's result, if the call changed anything (see the module)."""
    modseq = changes.allocated
    if modseq is None:
        return
    tr.set(keys.op.pack((op_id, step)), pack((modseq, result)))
    tr.set(keys.op_modseq.pack((modseq, op_id, step)), b"")


async def expire_markers(
    tr: Transaction, account_id: str, before_modseq: int, *, limit: int = 500
) -> int:
    """Forget up to ``limit`` markers of calls made before ``before_modseq``; how many."""
    keys = account_keys(account_id)
    rows = await tr.get_range(
        keys.op_modseq.range()[0], keys.op_modseq.pack((before_modseq,)), limit=limit
    )
    for row in rows:
        _, op_id, step = keys.op_modseq.unpack(row.key)
        tr.clear(row.key)
        tr.clear(keys.op.pack((op_id, step)))
    return len(rows)
