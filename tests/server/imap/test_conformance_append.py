"""Conformance: MULTIAPPEND (RFC 3502), APPENDUID (RFC 4315 section 3) and REPLACE (RFC
8508) on raw connections to a real node."""

from __future__ import annotations

import asyncio
import re

from server.node.node import Node
from tests.server.imap.mutating import fill, login, message, uids
from tests.server.imap.test_append import small_node  # noqa: F401 (a fixture)


def _multi(*messages: bytes) -> bytes:
    return b"".join(b" {%d+}\r\n%s" % (len(m), m) for m in messages)


async def test_multiappend_with_one_message_over_the_limit_appends_none(
        small_node: Node) -> None:  # noqa: F811
    """RFC 3502 section 6.3.11: if any message cannot be appended, none is (the server
    MUST NOT append some of them); a non-synchronising literal over APPENDLIMIT is read
    and thrown away (RFC 7888 section 4) and the session goes on."""
    node = small_node

    def run() -> list[list[bytes]]:
        c = login(node)
        out = [c.command(b"a1 APPEND INBOX" + _multi(message(1), b"x" * 3000, message(2))
                         + b"\r\n")]
        out.append(c.command(b"a2 APPEND INBOX" + _multi(message(3), message(4)) + b"\r\n"))
        c.close()
        return out

    refused, appended = await asyncio.to_thread(run)
    assert refused == [refused[-1]] and refused[-1].startswith(b"a1 NO [TOOBIG]"), refused
    assert appended[-1].startswith(b"a2 OK [APPENDUID ")
    assert await uids(node) == [1, 2]


async def test_multiappend_to_the_selected_mailbox_reports_exists_and_a_uid_set(
        node: Node) -> None:
    """RFC 4315 section 3: APPENDUID names the UIDVALIDITY and the UIDs of every message
    appended, in order, as a set; RFC 9051 section 6.3.12: the selected mailbox's new
    size comes as ``* n EXISTS`` before the tagged OK."""
    await fill(node, 2)

    def run() -> tuple[list[bytes], list[bytes]]:
        c = login(node)
        selected = c.command(b"s1 SELECT INBOX\r\n")
        out = c.command(b"a1 APPEND INBOX" + _multi(*(message(n) for n in range(3))) + b"\r\n")
        c.close()
        return selected, out

    selected, out = await asyncio.to_thread(run)
    validity = next(re.search(rb"UIDVALIDITY (\d+)", line).group(1)  # type: ignore[union-attr]
                    for line in selected if b"[UIDVALIDITY " in line)
    assert out[:-1] == [b"* 5 EXISTS\r\n"], out
    assert out[-1] == b"a1 OK [APPENDUID %s 3:5] APPEND completed\r\n" % validity
    assert await uids(node) == [1, 2, 3, 4, 5]


async def test_replace_announces_the_new_message_then_the_expunge(node: Node) -> None:
    """RFC 8508 section 3.3: REPLACE in the selected mailbox answers an untagged
    OK [APPENDUID] for the new message, EXISTS for it, then the old one's expunge:
    ``* n EXPUNGE``, or ``* VANISHED uid`` once QRESYNC is enabled (RFC 7162 section
    3.2.10)."""
    await fill(node, 3)

    def run() -> tuple[list[bytes], list[bytes]]:
        plain = login(node)
        assert plain.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
        first = plain.command(b"r1 REPLACE 2 INBOX {5+}\r\nhello\r\n")
        plain.close()
        q = login(node)
        assert q.command(b"e1 ENABLE QRESYNC\r\n")[-1].startswith(b"e1 OK")
        assert q.command(b"s2 SELECT INBOX\r\n")[-1].startswith(b"s2 OK")
        second = q.command(b"r2 UID REPLACE 1 INBOX {5+}\r\nworld\r\n")
        q.close()
        return first, second

    first, second = await asyncio.to_thread(run)
    assert first[0].startswith(b"* OK [APPENDUID ") and first[0].split()[4] == b"4]", first
    assert first[1:] == [b"* 4 EXISTS\r\n", b"* 2 EXPUNGE\r\n", b"r1 OK REPLACE completed\r\n"]
    assert second[0].startswith(b"* OK [APPENDUID ") and second[0].split()[4] == b"5]"
    assert second[1:] == [b"* 4 EXISTS\r\n", b"* VANISHED 1\r\n",
                          b"r2 OK REPLACE completed\r\n"], second
    assert await uids(node) == [3, 4, 5]


async def test_status_appendlimit_gives_the_advertised_limit(small_node: Node) -> None:  # noqa: F811
    """RFC 7889 section 5 (status-att =/ "APPENDLIMIT"): STATUS and LIST-STATUS (RFC 5819)
    answer the APPENDLIMIT item with the limit of the mailbox, here the one limit the
    APPENDLIMIT=<n> capability advertises for every mailbox."""
    node = small_node

    def run() -> None:
        c = login(node)
        caps = c.command(b"c1 CAPABILITY\r\n")[0]
        assert b" APPENDLIMIT=2048" in caps
        assert c.command(b"s1 STATUS INBOX (APPENDLIMIT MESSAGES)\r\n") == [
            b"* STATUS INBOX (APPENDLIMIT 2048 MESSAGES 0)\r\n", b"s1 OK STATUS completed\r\n"]
        assert c.command(b'l1 LIST "" "Sent" RETURN (STATUS (APPENDLIMIT))\r\n')[-2:] == [
            b"* STATUS Sent (APPENDLIMIT 2048)\r\n", b"l1 OK LIST completed\r\n"]
        c.close()
    await asyncio.to_thread(run)
