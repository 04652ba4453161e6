"""Reading what a delivery stored, through the mailbox layer and the blob store."""

from __future__ import annotations

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mailbox import find_role
from fdb_layers.message_queries import get_email, list_messages
from server.blobs import BlobStore


async def inbox_messages(engine: Engine, blobs: BlobStore, account_id: str) -> list[bytes]:
    """The raw messages in the account's inbox, in UID order ([] without an inbox)."""
    inbox = await transact(engine, find_role, account_id, "inbox")
    if inbox is None:
        return []
    out = []
    for m in await transact(engine, list_messages, account_id, inbox):
        email = await transact(engine, get_email, account_id, m.email_id)
        assert email is not None
        out.append(await blobs.get(email.blob_id))
    return out
