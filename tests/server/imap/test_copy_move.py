"""COPY and MOVE and their UID forms (RFC 9051 sections 6.4.7-6.4.9, RFC 6851), with
UIDPLUS's COPYUID (RFC 4315 section 3), on a real node: byte-level checks of the exact
responses and imapclient."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import imapclient
import pytest

from fdb_layers.mail import StoreUnavailable, move_messages
from server.imap.session import mutate
from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, start_node, tls_client_context, write_config
from tests.server.imap.mutating import add_user, fill, login, stored, uids

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py


def _copyuid(line: bytes) -> tuple[int, bytes, bytes]:
    m = re.search(rb"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]", line)
    assert m, line
    return int(m.group(1)), m.group(2), m.group(3)


async def test_copy_reports_copyuid_and_keeps_the_source(node: Node) -> None:
    await fill(node, 5)

    def run() -> list[list[bytes]]:
        c = login(node)
        c.command(b"m1 CREATE Target\r\n")
        c.command(b"s1 SELECT INBOX\r\n")
        out = [c.command(b"c1 COPY 2:3,5 Target\r\n")]
        out.append(c.command(b"c2 UID COPY 4:* Target\r\n"))      # "*" is UID 5
        out.append(c.command(b"s2 STATUS Target (MESSAGES UIDNEXT UIDVALIDITY)\r\n"))
        c.close()
        return out

    first, second, status = await asyncio.to_thread(run)
    assert len(first) == 1   # no untagged response: COPY expunges nothing
    validity, src, dst = _copyuid(first[0])
    assert (src, dst) == (b"2:3,5", b"1:3")
    assert f"UIDVALIDITY {validity}".encode() in status[0]
    # UID 5 is in Target already: COPY still adds a message (RFC 9051 section 6.4.7)
    assert _copyuid(second[0])[1:] == (b"4:5", b"4:5")
    assert b"MESSAGES 5" in status[0] and b"UIDNEXT 6" in status[0]
    assert await uids(node) == [1, 2, 3, 4, 5]
    assert await uids(node, name="Target") == [1, 2, 3, 4, 5]
    assert (await stored(node, 3, name="Target"))[0] == (await stored(node, 5))[0]


async def test_copy_and_move_of_the_saved_search_result(node: Node) -> None:
    """RFC 5182 section 2.1: ``$`` in COPY / MOVE names the result saved by SEARCH RETURN
    (SAVE)."""
    await fill(node, 4)

    def run() -> list[list[bytes]]:
        c = login(node)
        c.command(b"m1 CREATE Target\r\n")
        c.command(b"m2 CREATE Moved\r\n")
        c.command(b"s1 SELECT INBOX\r\n")
        out = [c.command(b"f1 UID SEARCH RETURN (SAVE) UID 2,4\r\n")]
        out.append(c.command(b"c1 COPY $ Target\r\n"))
        out.append(c.command(b"c2 UID MOVE $ Moved\r\n"))
        c.close()
        return out

    search, copy, move = await asyncio.to_thread(run)
    assert search[-1].startswith(b"f1 OK")
    assert _copyuid(copy[-1])[1:] == (b"2,4", b"1:2")
    assert _copyuid(move[0])[1:] == (b"2,4", b"1:2")
    assert await uids(node) == [1, 3]
    assert await uids(node, name="Target") == [1, 2]
    assert await uids(node, name="Moved") == [1, 2]


async def test_copy_into_the_same_mailbox_adds_messages(node: Node) -> None:
    await fill(node, 2, keywords=("$flagged",))

    def run() -> list[bytes]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = c.command(b"c1 COPY 1:2 INBOX\r\n")
        c.close()
        return out

    out = await asyncio.to_thread(run)
    assert out[0] == b"* 4 EXISTS\r\n"
    assert _copyuid(out[1])[1:] == (b"1:2", b"3:4")
    assert await uids(node) == [1, 2, 3, 4]
    original, copied = await stored(node, 1), await stored(node, 3)
    assert copied == original   # bytes, internal date and flags


async def test_copy_and_move_to_a_missing_mailbox_is_trycreate(node: Node) -> None:
    await fill(node, 1)

    def run() -> list[bytes]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = [c.command(b"c1 COPY 1 Nowhere\r\n")[-1], c.command(b"m1 MOVE 1 Nowhere\r\n")[-1],
               c.command(b"m2 UID MOVE 1 bob/INBOX\r\n")[-1]]
        c.close()
        return out

    for answer in await asyncio.to_thread(run):
        assert b" NO [TRYCREATE] " in answer, answer
    assert await uids(node) == [1]


async def test_bad_message_sets_are_bad_and_uid_sets_may_name_nothing(node: Node) -> None:
    await fill(node, 2)

    def run() -> list[list[bytes]]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = [c.command(b"c1 COPY 3 Trash\r\n"), c.command(b"c2 MOVE 0:1 Trash\r\n"),
               c.command(b"c3 COPY $ Trash\r\n"), c.command(b"c4 UID COPY 7:9 Trash\r\n"),
               c.command(b"c5 UID MOVE 7:9 Trash\r\n"), c.command(b"n1 NOOP\r\n")]
        c.close()
        return out

    c1, c2, c3, c4, c5, noop = await asyncio.to_thread(run)
    for answer in (c1, c2):   # RFC 9051 section 9: no such sequence number
        assert answer[-1].split(b" ")[1] == b"BAD", answer
    # RFC 5182 section 2.1: the saved result is empty until a SEARCH saves one
    assert c3 == [b"c3 OK COPY completed\r\n"]
    assert c4 == [b"c4 OK COPY completed\r\n"]   # nothing to copy: no COPYUID
    assert c5 == [b"c5 OK MOVE completed\r\n"]
    assert noop[-1].startswith(b"n1 OK")
    assert await uids(node) == [1, 2]
    assert await uids(node, name="Trash") == []


async def test_move_sends_copyuid_then_expunges(node: Node) -> None:
    await fill(node, 5)

    def run() -> list[bytes]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = c.command(b"m1 MOVE 2,4 Archive\r\n")
        c.close()
        return out

    out = await asyncio.to_thread(run)
    # RFC 6851 section 4.3: untagged OK with COPYUID, then EXPUNGE responses, then OK
    assert out[0].startswith(b"* OK [COPYUID ")
    assert _copyuid(out[0])[1:] == (b"2,4", b"1:2")
    assert out[1:3] == [b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"]
    assert out[3].startswith(b"m1 OK") and len(out) == 4
    assert await uids(node) == [1, 3, 5]
    assert await uids(node, name="Archive") == [1, 2]


async def test_move_in_a_read_only_mailbox_is_refused_copy_is_not(node: Node) -> None:
    await fill(node, 2)

    def run() -> list[bytes]:
        c = login(node)
        c.command(b"e1 EXAMINE INBOX\r\n")
        out = [c.command(b"m1 MOVE 1 Trash\r\n")[-1], c.command(b"c1 COPY 1 Trash\r\n")[-1]]
        c.close()
        return out

    move, copy = await asyncio.to_thread(run)
    assert move.startswith(b"m1 NO [READ-ONLY]")
    assert copy.startswith(b"c1 OK [COPYUID ")
    assert await uids(node) == [1, 2]


async def test_imapclient_uid_copy_and_move(node: Node) -> None:
    await fill(node, 4)

    def run() -> None:
        with imapclient.IMAPClient("127.0.0.1", node.ports["imaps"], ssl=True,
                                   ssl_context=tls_client_context(), timeout=30) as client:
            client.login("alice", PASSWORD)
            assert client.has_capability("MOVE") and client.has_capability("UIDPLUS")
            client.select_folder("INBOX")
            client.copy([1, 3], "Sent")
            client.move([2, 3], "Trash")
            client.noop()

    await asyncio.to_thread(run)
    assert await uids(node) == [1, 4]
    assert await uids(node, name="Sent") == [1, 2]
    assert await uids(node, name="Trash") == [1, 2]


@pytest.fixture
async def quota_node(tmp_path: Path) -> AsyncIterator[Node]:
    path = write_config(tmp_path)
    add_user(path, "carol", "--quota", "600")
    n = await start_node(path)
    try:
        yield n
    finally:
        await n.stop()


async def test_a_copy_over_quota_is_refused_and_leaves_the_target_as_it_was(
        quota_node: Node) -> None:
    node = quota_node
    await fill(node, 3, user="carol", name="INBOX")   # about 115 bytes each

    def run() -> list[bytes]:
        c = login(node, "carol")
        c.command(b"s1 SELECT INBOX\r\n")
        out = [c.command(b"c1 COPY 1:3 Archive\r\n")[-1]]   # joins: no new bytes
        # new messages in Archive itself: the third passes the quota
        c.command(b"s2 SELECT Archive\r\n")
        out.append(c.command(b"c2 COPY 1:3 Archive\r\n")[-1])
        c.close()
        return out

    first, second = await asyncio.to_thread(run)
    assert first.startswith(b"c1 OK [COPYUID ")
    assert second.startswith(b"c2 NO [OVERQUOTA]"), second
    # RFC 9051 section 6.4.7: a failed COPY leaves the target as it was
    assert await uids(node, "carol", "Archive") == [1, 2, 3]


async def test_a_move_failing_midway_reports_what_moved(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    await fill(node, 5)
    monkeypatch.setattr(mutate, "BATCH", 2)
    calls = 0
    real = mutate.transact

    async def flaky(engine: object, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        if fn is move_messages:
            calls += 1
            if calls == 2:
                raise StoreUnavailable("injected")
        return await real(engine, fn, *args, **kwargs)   # type: ignore[arg-type]

    monkeypatch.setattr(mutate, "transact", flaky)

    def run() -> list[list[bytes]]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = [c.command(b"m1 MOVE 1:4 Trash\r\n"), c.command(b"m2 UID MOVE 3:4 Trash\r\n")]
        c.close()
        return out

    failed, again = await asyncio.to_thread(run)
    assert _copyuid(failed[0])[1:] == (b"1:2", b"1:2")
    assert failed[1:3] == [b"* 1 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]
    assert failed[3].startswith(b"m1 NO [UNAVAILABLE]") and len(failed) == 4
    assert _copyuid(again[0])[1:] == (b"3:4", b"3:4")
    assert again[1:3] == [b"* 1 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]
    assert await uids(node) == [5]
    assert await uids(node, name="Trash") == [1, 2, 3, 4]
