"""APPEND, UID COPY, UID MOVE and EXPUNGE driven by aioimaplib (an asyncio client), in the
node's own event loop."""

from __future__ import annotations

import re

import aioimaplib

from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.mutating import mark_deleted, message, stored, uids


async def test_aioimaplib_append_copy_move_expunge(node: Node) -> None:
    client = aioimaplib.IMAP4_SSL("127.0.0.1", node.ports["imaps"],
                                  ssl_context=tls_client_context(), timeout=30)
    await client.wait_hello_from_server()
    assert (await client.login("alice", PASSWORD)).result == "OK"
    raws = [message(n) for n in range(3)]
    appended = []
    for raw in raws:
        response = await client.append(raw, mailbox="INBOX", flags=r"(\Seen)")
        assert response.result == "OK", response
        m = re.search(rb"\[APPENDUID \d+ (\d+)\]", response.lines[-1])
        assert m, response.lines
        appended.append(int(m.group(1)))
    assert appended == await uids(node) == [1, 2, 3]
    assert (await stored(node, 2))[0] == raws[1]

    assert (await client.select("INBOX")).result == "OK"
    copied = await client.uid("copy", "1:2", "Archive")
    assert copied.result == "OK" and b"[COPYUID " in copied.lines[-1]
    moved = await client.uid("move", "3", "Trash")
    assert moved.result == "OK"
    assert any(line.startswith(b"OK [COPYUID ") for line in moved.lines), moved.lines
    assert b"3 EXPUNGE" in moved.lines
    await mark_deleted(node, [1])
    expunge = await client.expunge()
    assert expunge.result == "OK" and b"1 EXPUNGE" in expunge.lines
    await client.logout()

    assert await uids(node) == [2]
    assert await uids(node, name="Archive") == [1, 2]
    assert await uids(node, name="Trash") == [1]
