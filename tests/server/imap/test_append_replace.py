"""REPLACE and UID REPLACE (RFC 8508): an APPEND and the EXPUNGE of the old message in one
command; the old message stays when the append fails."""

from __future__ import annotations

import asyncio
import re

from server.node.node import Node
from tests.server.imap.mutating import fill, login, message, stored, uids, until_tagged


async def test_replace_in_the_selected_mailbox(node: Node) -> None:
    await fill(node, 2, name="Drafts")
    new = message(9)

    def run() -> tuple[list[bytes], list[bytes]]:
        c = login(node)
        assert b" REPLACE " in c.command(b"c0 CAPABILITY\r\n")[0]
        c.command(b"s1 SELECT Drafts\r\n")
        c.send(b"r1 REPLACE 1 Drafts (\\Draft \\Seen) {%d}\r\n" % len(new))
        assert c.line().startswith(b"+ ")
        c.send(new + b"\r\n")
        first = until_tagged(c, b"r1")
        second = c.command(b"r2 UID REPLACE 2 Drafts {5+}\r\nhello\r\n")
        c.close()
        return first, second

    first, second = await asyncio.to_thread(run)
    # RFC 8508 section 3.3's example: APPENDUID, EXISTS, EXPUNGE, then the tagged OK
    assert re.match(rb"\* OK \[APPENDUID \d+ 3\] ", first[0]), first
    assert first[1:3] == [b"* 3 EXISTS\r\n", b"* 1 EXPUNGE\r\n"]
    assert first[3].startswith(b"r1 OK") and len(first) == 4
    assert re.match(rb"\* OK \[APPENDUID \d+ 4\] ", second[0])
    assert second[1:3] == [b"* 3 EXISTS\r\n", b"* 1 EXPUNGE\r\n"]
    assert await uids(node, name="Drafts") == [3, 4]
    data, _, keywords = await stored(node, 3, name="Drafts")
    assert data == new and set(keywords) == {"$draft", "$seen"}


async def test_replace_into_another_mailbox(node: Node) -> None:
    await fill(node, 3)

    def run() -> list[bytes]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = c.command(b"r1 REPLACE 2 Drafts {5+}\r\nhello\r\n")
        c.close()
        return out

    out = await asyncio.to_thread(run)
    assert re.match(rb"\* OK \[APPENDUID \d+ 1\] ", out[0])
    assert out[1:2] == [b"* 2 EXPUNGE\r\n"] and out[2].startswith(b"r1 OK")
    assert await uids(node) == [1, 3]
    assert await uids(node, name="Drafts") == [1]


async def test_a_failed_replace_keeps_the_old_message(node: Node) -> None:
    await fill(node, 2)

    def run() -> list[bytes]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = [c.command(b"r1 REPLACE 1 Nowhere {5+}\r\nhello\r\n")[-1],
               c.command(b"r2 UID REPLACE 7 INBOX {5+}\r\nhello\r\n")[-1],
               c.command(b"r3 REPLACE 3 INBOX {5+}\r\nhello\r\n")[-1],
               c.command(b"r4 REPLACE 1 INBOX (\\Bogus) {5+}\r\nhello\r\n")[-1]]
        c.command(b"e1 EXAMINE INBOX\r\n")
        out.append(c.command(b"r5 REPLACE 1 INBOX {5+}\r\nhello\r\n")[-1])
        c.close()
        return out

    trycreate, no_uid, no_seq, bad_flag, read_only = await asyncio.to_thread(run)
    assert trycreate.startswith(b"r1 NO [TRYCREATE]")
    assert no_uid.startswith(b"r2 NO [NONEXISTENT]")
    assert no_seq.startswith(b"r3 BAD")
    assert bad_flag.startswith(b"r4 BAD")
    assert read_only.startswith(b"r5 NO [READ-ONLY]")
    assert await uids(node) == [1, 2]
