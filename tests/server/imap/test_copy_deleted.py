"""\\Deleted belongs to one message, not to every copy of it: the move idiom of clients
without MOVE (neomutt, older Thunderbird, Apple Mail: COPY, STORE \\Deleted, EXPUNGE)
leaves the copies intact, and an EXPUNGE in the target keeps them."""

from __future__ import annotations

import asyncio
import imaplib

from server.node.node import Node
from tests.server.imap.clients import deliver, login, server_state


def _flags(c: imaplib.IMAP4_SSL, uids: str) -> dict[int, set[bytes]]:
    """uid -> flags of the selected mailbox's messages."""
    typ, data = c.uid("FETCH", uids, "(FLAGS)")
    assert typ == "OK", data
    out = {}
    for item in data:
        assert isinstance(item, bytes), data
        uid = int(item.split(b"(UID ", 1)[1].split()[0])
        out[uid] = set(imaplib.ParseFlags(item))
    return out


async def test_copy_store_deleted_expunge_leaves_the_copies_undeleted(node: Node) -> None:
    """RFC 9051 section 6.4.7 (COPY: the copies are messages of the target mailbox, with
    the flags the originals had when copied), section 6.4.6 (STORE changes the messages
    named, in the selected mailbox) and section 6.4.3 (EXPUNGE removes the messages of the
    selected mailbox that have \\Deleted)."""
    def run() -> None:
        deliver(node, ["a", "b", "c"])
        c = login(node)
        try:
            assert c.create("Projects")[0] == "OK"
            c.select("INBOX")
            assert c.uid("STORE", "1", "+FLAGS.SILENT", r"(\Seen)")[0] == "OK"
            assert c.uid("COPY", "1:2", "Projects")[0] == "OK"
            assert c.uid("STORE", "1:2", "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
            assert _flags(c, "1:2") == {1: {b"\\Seen", b"\\Deleted"}, 2: {b"\\Deleted"}}
            typ, data = c.expunge()
            assert typ == "OK" and data == [b"1", b"1"]

            c.select("Projects")
            # the copies have the flags of the originals at COPY time, not \Deleted
            assert _flags(c, "1:*") == {1: {b"\\Seen"}, 2: set()}
            typ, data = c.expunge()
            assert typ == "OK" and data == [None]
            # \Deleted set in the target stays there: the other mailbox's message is apart
            assert c.uid("COPY", "2", "INBOX")[0] == "OK"
            assert c.uid("STORE", "2", "+FLAGS.SILENT", r"(\Deleted \Flagged)")[0] == "OK"
        finally:
            c.logout()
        assert server_state(node, "Projects") == {"a": {"\\Seen"},
                                                  "b": {"\\Deleted", "\\Flagged"}}
        # other flags are the email's own, shared by its copies (the JMAP model)
        assert server_state(node) == {"b": {"\\Flagged"}, "c": set()}

    await asyncio.to_thread(run)


async def test_status_deleted_and_search_count_per_mailbox(node: Node) -> None:
    """RFC 9051 section 6.3.11 (STATUS DELETED), 6.4.4 (SEARCH DELETED / UNDELETED): the
    \\Deleted of a message in one mailbox is not counted or found in another."""
    def run() -> None:
        deliver(node, ["a", "b"])
        c = login(node)
        try:
            assert c.create("Projects")[0] == "OK"
            c.select("INBOX")
            assert c.uid("COPY", "1:2", "Projects")[0] == "OK"
            assert c.uid("STORE", "1", "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
            assert c.uid("SEARCH", "DELETED") == ("OK", [b"1"])
            typ, data = c.status("Projects", "(MESSAGES DELETED)")
            assert typ == "OK" and b"DELETED 0" in data[0] and b"MESSAGES 2" in data[0], data
            c.select("Projects")
            assert c.uid("SEARCH", "UNDELETED") == ("OK", [b"1 2"])
            # and it is cleared where it was set: the copy never had it
            c.select("INBOX")
            assert c.uid("STORE", "1", "-FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
            assert c.uid("SEARCH", "DELETED") == ("OK", [b""])
        finally:
            c.logout()

    await asyncio.to_thread(run)
