"""Blob reference counts: how many index entries refer to each blob.


Blobs (message bodies) live in a blob store, content-addressed by SHA-256; the
store keeps how many index entries refer to each one.  Layer functions take
``tr`` first and never commit; :func:`collect_blobs` runs its own small
transactions.

Idempotency
-----------
A bare :func:`add_blob_ref` / :func:`remove_blob_ref` is an atomic add: run
twice (a retry after ``commit_unknown_result``), it counts twice.  Callers make
it safe in one of two ways:

* pass ``ref_id`` (e.g. ``"<account>/<email id>"``): the reference is then a key
  of its own; adding an existing one or removing an absent one is a no-op;
* or guard the whole transaction with their own marker, as the mailbox layer
  does with its per-delivery key: the body reads the marker first and does
  nothing if it is there, else writes it together with the reference.

Writers: put, then commit the reference
----------------------------------------
The delivery pipeline puts the blob, then commits the index entry with
:func:`add_blob_ref` in one transaction.  A put of bytes already present
refreshes the blob's last-modified time.  The writer must commit within the
grace period of its put (a delivery takes seconds; the grace is an hour).
:func:`add_blob_ref` raises :class:`BlobBeingDeleted` while the collector is
deleting that blob: the writer then waits a moment, puts the blob again, and
retries (or fails temporarily, e.g. SMTP 451).

Uploads (JMAP) are referenced too, for a while: :mod:`.uploads`.

The collector that removes unreferenced blobs is :mod:`.gc`; the keys of both
are declared here (one layer, one layout: ``layout["blobrefs"]``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from ..engine.base import Transaction
from ..keys import Subspace, decode_int, encode_int, pack, strinc, unpack


# --- layout: every key of this layer -------------------------------------------------
LAYOUT = (1, 1)  # (major, minor): layout["blobrefs"] (see fdb_layers.layout)
ROOT = Subspace(("blobrefs",))
COUNT = ROOT["count"]  # [blob_id] -> int64 LE (atomic add): references; the blob's record
SIZE = ROOT["size"]  # [blob_id] -> int64 LE: the blob's size in bytes
REF = ROOT["ref"]  # [blob_id, ref_id] -> b"": one named (idempotent) reference
UNREF_SINCE = ROOT["since"]  # [blob_id] -> pack((unix time,)): when the count reached 0
UNREFERENCED = ROOT["unref"]  # [unix time, blob_id] -> b"": the same, ordered by time (GC)
DELETING = ROOT["deleting"]  # [blob_id] -> pack((token, unix time)): a GC is deleting it
LEASE = ROOT.pack(("lease",))  # pack((holder, expires unix time)): who runs the GC
ORPHAN_SCAN = ROOT.pack(("orphan_scan",))  # pack((unix time,)): last complete orphan scan
# 1.1: uploads (JMAP, RFC 8620 section 6.1) hold a temporary named reference (:mod:`.uploads`)
UPLOAD = ROOT["upload"]  # [blob_id, account_id] -> pack((expires unix time,))
UPLOAD_EXPIRY = ROOT["upexp"]  # [expires unix time, blob_id, account_id] -> b"": by expiry

_BLOB_ID = re.compile(r"[0-9a-f]{64}")


class BlobRefError(Exception):
    """A blob reference could not be changed."""


class BlobBeingDeleted(BlobRefError):
    """The collector is deleting this blob: put it again, then retry the reference."""

    def __init__(self, blob_id: str) -> None:
        super().__init__(f"blob {blob_id} is being deleted; put it again and retry")
        self.blob_id = blob_id


def is_blob_id(name: str) -> bool:
    """Whether ``name`` is a blob id (SHA-256, lowercase hex)."""
    return _BLOB_ID.fullmatch(name) is not None


def check_blob_id(blob_id: str) -> None:
    """ValueError unless ``blob_id`` is a blob id."""
    if not is_blob_id(blob_id):
        raise ValueError(f"not a blob id: {blob_id!r}")


# --- references ----------------------------------------------------------------------


async def add_blob_ref(
    tr: Transaction, blob_id: str, size: int, *, ref_id: str | None = None
) -> bool:
    """Count one more reference to ``blob_id``; False if ``ref_id`` was already there.

    Raises :class:`BlobBeingDeleted` while the collector is deleting the blob.
    Without ``ref_id`` this is not idempotent: see the module docstring.
    """
    check_blob_id(blob_id)
    if ref_id is not None:
        ref_key = REF.pack((blob_id, ref_id))
        if await tr.get(ref_key) is not None:
            return False
        tr.set(ref_key, b"")
    if await tr.get(DELETING.pack((blob_id,))) is not None:
        raise BlobBeingDeleted(blob_id)
    since_key = UNREF_SINCE.pack((blob_id,))
    since = await tr.get(since_key)
    if since is not None:
        tr.clear(since_key)
        tr.clear(UNREFERENCED.pack((unpack(since)[0], blob_id)))
    tr.add(COUNT.pack((blob_id,)), 1)
    tr.set(SIZE.pack((blob_id,)), encode_int(size))
    return True


async def remove_blob_ref(
    tr: Transaction, blob_id: str, *, ref_id: str | None = None, now: float | None = None
) -> int:
    """Count one reference less and return the references left.

    At 0 the blob is recorded as unreferenced since ``now`` (default: the
    clock); the collector removes it a grace period later.  The count never
    goes below 0, and removing an absent ``ref_id`` is a no-op.
    """
    check_blob_id(blob_id)
    count_key = COUNT.pack((blob_id,))
    if ref_id is not None:
        ref_key = REF.pack((blob_id, ref_id))
        if await tr.get(ref_key) is None:
            return decode_int(await tr.get(count_key))
        tr.clear(ref_key)
    count = decode_int(await tr.get(count_key))
    if count <= 0:
        return 0
    tr.add(count_key, -1)
    if count == 1:
        when = time.time() if now is None else now
        tr.set(UNREF_SINCE.pack((blob_id,)), pack((when,)))
        tr.set(UNREFERENCED.pack((when, blob_id)), b"")
    return count - 1


async def remove_blob_refs(
    tr: Transaction, refs: Sequence[tuple[str, str]], *, now: float | None = None
) -> None:
    """:func:`remove_blob_ref` of each named ``(blob_id, ref_id)``, as many calls one
    after another would do it, with every reference and count read at once (an
    expunge of a thousand messages: two reads, not two thousand).  Absent names
    are no-ops; a name given twice counts once."""
    unique = list(dict.fromkeys(refs))
    for blob_id, _ in unique:
        check_blob_id(blob_id)
    ref_keys = [REF.pack(ref) for ref in unique]
    dropping: dict[str, int] = {}
    for (blob_id, _), key, raw in zip(unique, ref_keys, await tr.get_many(ref_keys),
                                      strict=True):
        if raw is not None:
            tr.clear(key)
            dropping[blob_id] = dropping.get(blob_id, 0) + 1
    blobs = list(dropping)
    counts = await tr.get_many([COUNT.pack((b,)) for b in blobs])
    when = time.time() if now is None else now
    for blob_id, raw in zip(blobs, counts, strict=True):
        count = decode_int(raw)
        if count <= 0:
            continue
        drop = min(count, dropping[blob_id])
        tr.add(COUNT.pack((blob_id,)), -drop)
        if drop == count:
            tr.set(UNREF_SINCE.pack((blob_id,)), pack((when,)))
            tr.set(UNREFERENCED.pack((when, blob_id)), b"")


async def get_blob_refcount(tr: Transaction, blob_id: str) -> int:
    """References to ``blob_id`` (0 for a blob never referenced or collected)."""
    check_blob_id(blob_id)
    return decode_int(await tr.get(COUNT.pack((blob_id,))))


async def get_blob_size(tr: Transaction, blob_id: str) -> int | None:
    """The size recorded with the blob's references, or None without a record."""
    check_blob_id(blob_id)
    raw = await tr.get(SIZE.pack((blob_id,)))
    return None if raw is None else decode_int(raw)


async def list_blob_refs(
    tr: Transaction, blob_id: str, prefix: str = "", *, limit: int = 0
) -> list[str]:
    """The names of ``blob_id``'s named references that start with ``prefix`` (all with
    ``limit`` 0), in order: who refers to a blob, e.g. which emails of one account."""
    check_blob_id(blob_id)
    begin = REF.pack((blob_id, prefix))[:-1]  # the string's terminator dropped: a prefix
    rows = await tr.get_range(begin, strinc(begin), limit=limit)
    return [str(REF.unpack(kv.key)[1]) for kv in rows]


async def list_unreferenced(
    tr: Transaction, before: float, *, after: bytes = b"", limit: int = 100
) -> list[tuple[float, str]]:
    """``(since, blob_id)`` of blobs unreferenced since before ``before``, oldest first;
    ``after`` is a key to continue from (see :func:`collect_blobs`)."""
    begin = max(UNREFERENCED.range()[0], after + b"\x00" if after else b"")
    end = UNREFERENCED.pack((before,))
    if begin >= end:
        return []
    rows = await tr.get_range(begin, end, limit=limit)
    out: list[tuple[float, str]] = []
    for kv in rows:
        since, blob_id = UNREFERENCED.unpack(kv.key)
        out.append((float(since), str(blob_id)))
    return out
