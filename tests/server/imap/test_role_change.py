"""A role given or taken through the mail layer (JMAP Mailbox/set update, RFC 8621 section
2) is what IMAP's SPECIAL-USE attributes show (RFC 6154 section 2), at once."""

from __future__ import annotations

import asyncio

from fdb_layers.mail import find_mailbox, set_role, transact
from server.node.node import Node
from tests.server.imap.mutating import account, login


async def test_special_use_follows_a_role_change(node: Node) -> None:
    alice = await account(node)
    c = await asyncio.to_thread(login, node)

    def ok(line: bytes) -> list[bytes]:
        out = c.command(line)
        assert out[-1].startswith(line.split(b" ", 1)[0] + b" OK"), out
        return out

    await asyncio.to_thread(ok, b"c1 CREATE Old\r\n")
    old = await transact(node.engine, find_mailbox, alice, "Old")
    archive = await transact(node.engine, find_mailbox, alice, "Archive")
    await transact(node.engine, set_role, alice, archive.id, None)
    await transact(node.engine, set_role, alice, old.id, "archive")
    out = await asyncio.to_thread(ok, b'l1 LIST (SPECIAL-USE) "" "*"\r\n')
    assert b'* LIST (\\HasNoChildren \\Archive) "/" Old\r\n' in out
    assert not any(b'"/" Archive\r\n' in line for line in out)
    await asyncio.to_thread(c.close)
