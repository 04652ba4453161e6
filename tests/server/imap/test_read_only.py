"""In a mailbox selected with EXAMINE every command that would change it is refused with
the same code: NO [READ-ONLY] (RFC 9051 section 7.1: the mailbox is selected read-only;
CANNOT, RFC 5530, is for what can never succeed).  Reading and copying out are allowed."""

from __future__ import annotations

import asyncio

from server.node.node import Node
from tests.server.imap.mutating import fill, login, stored, uids

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py


async def test_changes_in_an_examined_mailbox_answer_read_only(node: Node) -> None:
    await fill(node, 2)

    def run() -> list[bytes]:
        c = login(node)
        assert c.command(b"e1 EXAMINE INBOX\r\n")[-1].startswith(b"e1 OK [READ-ONLY]")
        out = [c.command(b"s1 STORE 1 +FLAGS (\\Deleted)\r\n")[-1],
               c.command(b"s2 UID STORE 1 FLAGS.SILENT (\\Seen)\r\n")[-1],
               c.command(b"x1 EXPUNGE\r\n")[-1],
               c.command(b"m1 MOVE 1 Trash\r\n")[-1],
               c.command(b"c1 COPY 1 Trash\r\n")[-1]]
        c.close()
        return out

    s1, s2, x1, m1, c1 = await asyncio.to_thread(run)
    assert s1.startswith(b"s1 NO [READ-ONLY]") and s2.startswith(b"s2 NO [READ-ONLY]")
    assert x1.startswith(b"x1 NO [READ-ONLY]") and m1.startswith(b"m1 NO [READ-ONLY]")
    assert c1.startswith(b"c1 OK")  # the source is only read (RFC 9051 section 6.4.7)
    assert await uids(node) == [1, 2]
    assert (await stored(node, 1))[2] == ()  # neither \\Deleted nor \\Seen was set
