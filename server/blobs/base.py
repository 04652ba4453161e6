"""The blob store seam: one Protocol, whatever holds the bytes.

Blobs are immutable and content-addressed: a blob's id is the lowercase hex
SHA-256 of its bytes.  Putting the same bytes twice stores them once and
returns the same :class:`BlobRef`; a put of bytes already present refreshes the
blob's last-modified time, which the garbage collector reads (see
``fdb_layers.blobs.refs``: a blob put recently is never collected).

Reference counts live in the store (``fdb_layers.blobs.refs``), never here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

_BLOB_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A stored blob: ``id`` is the hex SHA-256 of its bytes, ``size`` their count."""

    id: str
    size: int


class BlobError(Exception):
    """A blob store operation failed (our fault or the backend's, not the user's)."""


class BlobNotFound(BlobError, KeyError):
    """No blob has this id (never stored, or collected)."""

    def __init__(self, blob_id: str) -> None:
        super().__init__(blob_id)
        self.blob_id = blob_id

    def __str__(self) -> str:
        return f"blob {self.blob_id} not found"


class InvalidBlobId(ValueError):
    """The id is not 64 lowercase hex digits (and must not reach a path or a key)."""


def check_blob_id(blob_id: str) -> str:
    """Return ``blob_id`` if it is a well-formed SHA-256 hex id, else raise."""
    if not isinstance(blob_id, str) or _BLOB_ID.fullmatch(blob_id) is None:
        raise InvalidBlobId(f"not a blob id: {blob_id!r}")
    return blob_id


def check_range(start: int, end: int | None) -> None:
    """Ranges are Python slices with non-negative bounds: ``[start, end)``."""
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad blob range [{start}, {end})")


@dataclass(frozen=True, slots=True)
class BlobCapabilities:
    """What a store promises beyond the Protocol, declared by the store itself:
    callers read these, never the backend's name."""

    atomic_delete_if_older: bool = False
    """:meth:`BlobStore.delete_if_older` checks the age and removes the blob
    atomically with respect to puts (``fs``).  Without it (``s3``: a HEAD, then a
    DELETE) a put may land between the two, so the delivery pipeline checks that
    the blob is still there after its index commit (``fdb_layers.blobs.refs``)."""

    releases_space: bool = False
    """:meth:`BlobStore.release_space` gives the space of deleted blobs back to
    the filesystem (the ``fs`` store's pack); the GC calls it after deleting."""


class BlobStore(Protocol):
    """Where blob bytes live.  Every method is safe to call concurrently."""

    backend: str
    """A short bounded label for metrics and logs ("fs", "s3"); never a switch."""

    capabilities: BlobCapabilities
    """What this store promises (see :class:`BlobCapabilities`)."""

    async def put(self, data: bytes) -> BlobRef:
        """Store ``data`` (or refresh it if present) and return its reference."""
        ...

    async def put_stream(self, chunks: AsyncIterable[bytes]) -> BlobRef:
        """Store the concatenation of ``chunks`` without holding it all in memory.

        If the iterable raises, nothing is stored and the error propagates."""
        ...

    async def get(self, blob_id: str) -> bytes:
        """All the bytes of a blob; :class:`BlobNotFound` if it is absent."""
        ...

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        """``data[start:end]`` (clamped to the blob like a slice), for partial
        FETCH ("BODY[1.2]<0.1024>") without reading the whole blob."""
        ...

    def open(self, blob_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``data[start:end]`` in chunks.  A missing blob raises
        :class:`BlobNotFound` from the first ``__anext__``."""
        ...

    async def exists(self, blob_id: str) -> bool: ...

    async def size(self, blob_id: str) -> int:
        """The blob's size in bytes; :class:`BlobNotFound` if absent."""
        ...

    async def modified(self, blob_id: str) -> float:
        """Last-modified unix time (last put); :class:`BlobNotFound` if absent."""
        ...

    async def delete(self, blob_id: str) -> None:
        """Remove a blob; removing an absent blob is a no-op."""
        ...

    async def delete_if_older(self, blob_id: str, cutoff: float) -> bool:
        """Remove the blob only if it was last put before ``cutoff`` (unix time);
        True if it was removed.  The garbage collector's delete: a put that
        refreshes the blob before the check keeps it.  On ``fs`` the check and
        the removal are atomic with respect to puts; on ``s3`` they are a HEAD
        then a DELETE (see ``fdb_layers.blobs.refs`` for why that is enough)."""
        ...

    def list(self) -> AsyncIterator[tuple[str, float]]:
        """Every blob as ``(id, last-modified unix time)``, in no particular order."""
        ...

    async def release_space(self) -> None:
        """Give the space of deleted blobs back to the filesystem, if the store
        can (``capabilities.releases_space``); else a no-op."""
        ...

    async def close(self) -> None: ...
