"""UNAUTHENTICATE (RFC 8437 section 3): back to the not-authenticated state, the selected
mailbox closed without expunge, ENABLEd extensions reset; TLS and COMPRESS stay."""

from __future__ import annotations

import asyncio

from server.node.node import Node
from tests.server.imap.test_session import raw_tls


async def test_unauthenticate_then_login_as_someone_else(node: Node) -> None:
    def run() -> None:
        c = raw_tls(node)
        c.line()
        out = c.command(b'l LOGIN alice "correct horse"\r\n')
        assert b"UNAUTHENTICATE" in out[-1], out
        assert c.command(b"c CREATE AliceOnly\r\n")[-1].startswith(b"c OK")
        assert c.command(b"e ENABLE IMAP4rev2\r\n")[0] == b"* ENABLED IMAP4rev2\r\n"
        assert c.command(b"s SELECT INBOX\r\n")[-1].startswith(b"s OK")
        out = c.command(b"u UNAUTHENTICATE\r\n")
        assert out == [b"u OK UNAUTHENTICATE completed\r\n"]
        # RFC 8437 section 3: not authenticated again: authenticated-state commands are BAD
        for cmd in (b'LIST "" "*"', b"CLOSE", b"UNAUTHENTICATE"):
            assert c.command(b"t " + cmd + b"\r\n")[-1].startswith(b"t BAD"), cmd
        out = c.command(b"k CAPABILITY\r\n")
        assert b"AUTH=PLAIN" in out[0]
        assert c.command(b'l LOGIN bob "correct horse"\r\n')[-1].startswith(b"l OK")
        out = c.command(b'x LIST "" "*"\r\n')
        assert not any(b"AliceOnly" in line for line in out)
        # ENABLE starts afresh: IMAP4rev2 is newly enabled again (RFC 5161 section 3.1)
        assert c.command(b"e ENABLE IMAP4rev2\r\n")[0] == b"* ENABLED IMAP4rev2\r\n"
        c.close()
    await asyncio.to_thread(run)
