"""Test helpers for the fs blob store."""

from __future__ import annotations

import os
import sqlite3

from server.blobs.fs import FsBlobStore
from server.blobs.pack import FILE_NAME


def set_modified(store: FsBlobStore, blob_id: str, when: float) -> None:
    """Make a blob look last put at ``when``, wherever it lives (its file or the pack)."""
    found = False
    path = store.path(blob_id)
    if path.exists():
        os.utime(path, (when, when))
        found = True
    with sqlite3.connect(store.root / FILE_NAME, isolation_level=None) as conn:
        cur = conn.execute("UPDATE blobs SET mtime=? WHERE id=?", (when, bytes.fromhex(blob_id)))
        found = found or cur.rowcount > 0
    conn.close()
    assert found, f"blob {blob_id} is not stored"
