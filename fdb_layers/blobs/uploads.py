"""Temporary references for uploaded blobs (JMAP upload, RFC 8620 section 6.1).

An upload is a blob that nothing in the index refers to yet: the collector would
remove it an hour after its put.  So the upload takes a named reference of its
own (``upload/<account>``), with an expiry: until then the blob is kept and the
account may use it (Email/import, attachments of Email/set, Blob/get); at the
expiry :func:`expire_uploads` (run by the collector, :mod:`.gc`) drops the
reference, and the blob is collected a grace period later unless an email refers
to it meanwhile.  Uploading the same bytes again moves the expiry forward.

References are also what says which account may read a blob: the account that
uploaded it (:func:`get_upload`) or that has an email made of it
(:func:`list_blob_refs` with the mail layer's prefix ``mail/<account>/``).
The keys are declared with the rest of the layer in :mod:`.refs`.
"""

from __future__ import annotations

from ..engine.base import Transaction
from ..keys import pack, unpack
from .refs import (
    UPLOAD,
    UPLOAD_EXPIRY,
    add_blob_ref,
    check_blob_id,
    remove_blob_ref,
)


def _ref_id(account_id: str) -> str:
    return f"upload/{account_id}"


async def add_upload(
    tr: Transaction, account_id: str, blob_id: str, size: int, expires: float
) -> None:
    """Reference ``blob_id`` as uploaded by ``account_id`` until ``expires`` (unix
    time); an upload already there gets the later of the two expiries.

    Raises :class:`~.refs.BlobBeingDeleted` while the collector deletes the blob
    (the caller puts it again and retries).  Idempotent."""
    check_blob_id(blob_id)
    key = UPLOAD.pack((blob_id, account_id))
    raw = await tr.get(key)
    if raw is not None:
        old = float(unpack(raw)[0])
        if old >= expires:
            return
        tr.clear(UPLOAD_EXPIRY.pack((old, blob_id, account_id)))
    await add_blob_ref(tr, blob_id, size, ref_id=_ref_id(account_id))
    tr.set(key, pack((expires,)))
    tr.set(UPLOAD_EXPIRY.pack((expires, blob_id, account_id)), b"")


async def get_upload(tr: Transaction, account_id: str, blob_id: str) -> float | None:
    """When the upload of ``blob_id`` by ``account_id`` expires; None if there is none
    (never uploaded by this account, or expired and dropped)."""
    check_blob_id(blob_id)
    raw = await tr.get(UPLOAD.pack((blob_id, account_id)))
    return None if raw is None else float(unpack(raw)[0])


async def expire_uploads(tr: Transaction, now: float, *, limit: int = 100) -> int:
    """Drop up to ``limit`` upload references that expired before ``now``; how many.
    A blob left without references is then collected a grace period later."""
    begin = UPLOAD_EXPIRY.range()[0]
    rows = await tr.get_range(begin, UPLOAD_EXPIRY.pack((now,)), limit=limit)
    for kv in rows:
        expires, blob_id, account_id = UPLOAD_EXPIRY.unpack(kv.key)
        tr.clear(kv.key)
        key = UPLOAD.pack((blob_id, account_id))
        raw = await tr.get(key)
        if raw is not None and unpack(raw)[0] == expires:
            tr.clear(key)
            await remove_blob_ref(tr, str(blob_id), ref_id=_ref_id(str(account_id)), now=now)
    return len(rows)
