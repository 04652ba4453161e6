"""EXPUNGE (RFC 9051 section 6.4.3), UID EXPUNGE (RFC 4315 section 2.1) and CLOSE's silent
expunge (RFC 9051 section 6.4.1) on a real node, checked byte for byte."""

from __future__ import annotations

import asyncio
from typing import Any

import imapclient
import pytest

from fdb_layers.mail import StoreUnavailable, expunge_messages
from server.imap.session import mutate
from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.mutating import fill, login, mark_deleted, uids


async def test_expunge_numbers_each_message_as_of_its_response(node: Node) -> None:
    assert await fill(node, 6) == [1, 2, 3, 4, 5, 6]
    await mark_deleted(node, [2, 4, 5])

    def run() -> list[bytes]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = c.command(b"x1 EXPUNGE\r\n")
        out += c.command(b"x2 EXPUNGE\r\n")   # nothing left to expunge
        c.close()
        return out

    out = await asyncio.to_thread(run)
    # RFC 9051 section 7.5.1: after "* 2 EXPUNGE" the message that was 4 is 3, and after
    # that one goes, the message that was 5 is 3 too (the RFC's own example: 3, 3, 5, 8)
    assert out[:3] == [b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"]
    assert out[3].startswith(b"x1 OK") and out[4].startswith(b"x2 OK") and len(out) == 5
    assert await uids(node) == [1, 3, 6]


async def test_uid_expunge_only_touches_the_given_uids(node: Node) -> None:
    await fill(node, 6)
    await mark_deleted(node, [2, 4, 5])

    def run() -> list[list[bytes]]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = [c.command(b"x1 UID EXPUNGE 4:5,9\r\n")]
        out.append(c.command(b"x2 UID EXPUNGE 1,3\r\n"))   # not \Deleted: nothing
        out.append(c.command(b"x3 UID EXPUNGE 100:*\r\n"))  # "*" is UID 6, 6:100
        c.close()
        return out

    first, second, third = await asyncio.to_thread(run)
    assert first[:2] == [b"* 4 EXPUNGE\r\n", b"* 4 EXPUNGE\r\n"] and len(first) == 3
    assert len(second) == 1 and second[0].startswith(b"x2 OK")
    assert len(third) == 1 and third[0].startswith(b"x3 OK")
    assert await uids(node) == [1, 2, 3, 6]   # 2 is still \Deleted, not in the set


async def test_expunge_in_a_read_only_mailbox_is_refused(node: Node) -> None:
    await fill(node, 2)
    await mark_deleted(node, [1])

    def run() -> list[bytes]:
        c = login(node)
        c.command(b"e1 EXAMINE INBOX\r\n")
        out = [c.command(b"x1 EXPUNGE\r\n")[-1], c.command(b"x2 UID EXPUNGE 1\r\n")[-1]]
        out.append(c.command(b"c1 CLOSE\r\n")[-1])   # read-only: CLOSE expunges nothing
        c.close()
        return out

    x1, x2, close = await asyncio.to_thread(run)
    assert x1.startswith(b"x1 NO [READ-ONLY]") and x2.startswith(b"x2 NO [READ-ONLY]")
    assert close.startswith(b"c1 OK")
    assert await uids(node) == [1, 2]


async def test_close_expunges_silently(node: Node) -> None:
    await fill(node, 4)
    await mark_deleted(node, [1, 3])

    def run() -> list[list[bytes]]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = [c.command(b"c1 CLOSE\r\n")]
        out.append(c.command(b"x1 EXPUNGE\r\n"))   # no mailbox selected any more
        c.close()
        return out

    close, after = await asyncio.to_thread(run)
    assert len(close) == 1 and close[0].startswith(b"c1 OK")   # no untagged EXPUNGE
    assert after[-1].startswith(b"x1 BAD")
    assert await uids(node) == [2, 4]


async def test_expunge_of_thousands_goes_in_batches(node: Node,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An expunge larger than a transaction may hold (FoundationDB: 10 MB, 5 s) is done in
    batches of ``mutate.BATCH``; here 2,000 messages in batches of 64."""
    monkeypatch.setattr(mutate, "BATCH", 64)
    count = 2000
    all_uids = await fill(node, count)
    await mark_deleted(node, all_uids[:1000])
    await mark_deleted(node, all_uids[1000:1999])   # the last one stays

    def run() -> list[bytes]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = c.command(b"x1 EXPUNGE\r\n")
        c.close()
        return out

    out = await asyncio.to_thread(run)
    assert out[:-1] == [b"* 1 EXPUNGE\r\n"] * (count - 1)
    assert out[-1].startswith(b"x1 OK")
    assert await uids(node) == [all_uids[-1]]


async def test_imapclient_delete_and_expunge(node: Node) -> None:
    await fill(node, 3)
    await mark_deleted(node, [2])

    def run() -> tuple[object, object]:
        with imapclient.IMAPClient("127.0.0.1", node.ports["imaps"], ssl=True,
                                   ssl_context=tls_client_context(), timeout=30) as client:
            client.login("alice", PASSWORD)
            client.select_folder("INBOX")
            assert client.has_capability("UIDPLUS")
            first = client.uid_expunge([1, 2])
            second = client.expunge()
            return first, second

    _, second = await asyncio.to_thread(run)
    assert await uids(node) == [1, 3]   # UID EXPUNGE 1:2 took only the \Deleted 2
    assert second == (b"EXPUNGE completed", [])   # nothing left: no untagged EXPUNGE


async def test_a_failure_in_a_later_batch_still_announces_the_committed_ones(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    await fill(node, 6)
    await mark_deleted(node, [1, 2, 3, 4, 5])
    monkeypatch.setattr(mutate, "BATCH", 2)
    calls = 0
    real = mutate.transact

    async def flaky(engine: object, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        if fn is expunge_messages:
            calls += 1
            if calls == 2:
                raise StoreUnavailable("injected")
        return await real(engine, fn, *args, **kwargs)   # type: ignore[arg-type]

    monkeypatch.setattr(mutate, "transact", flaky)

    def run() -> list[list[bytes]]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        out = [c.command(b"x1 EXPUNGE\r\n"), c.command(b"x2 EXPUNGE\r\n")]
        c.close()
        return out

    failed, again = await asyncio.to_thread(run)
    # the first batch (UIDs 1, 2) committed and is announced; the second failed
    assert failed[:2] == [b"* 1 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]
    assert failed[2].startswith(b"x1 NO [UNAVAILABLE]") and len(failed) == 3
    # the session's map is right: the rest goes with the next EXPUNGE, numbered from 1
    assert again[:3] == [b"* 1 EXPUNGE\r\n"] * 3 and again[3].startswith(b"x2 OK")
    assert await uids(node) == [6]


async def test_close_and_expunge_of_a_mailbox_another_session_deleted(node: Node) -> None:
    def run() -> list[bytes]:
        a, b = login(node), login(node)
        a.command(b"m1 CREATE Folder\r\n")
        a.command(b"s1 SELECT Folder\r\n")
        b.command(b"s1 SELECT INBOX\r\n")
        assert b.command(b"d1 DELETE Folder\r\n")[-1].startswith(b"d1 OK")
        out = [a.command(b"x1 EXPUNGE\r\n")[-1], a.command(b"c1 CLOSE\r\n")[-1],
               a.command(b"n1 NOOP\r\n")[-1]]
        a.close()
        b.close()
        return out

    expunge, close, noop = await asyncio.to_thread(run)
    assert expunge.startswith(b"x1 NO [NONEXISTENT]"), expunge
    assert close.startswith(b"c1 OK")   # RFC 9051 section 6.4.1: back to authenticated
    assert noop.startswith(b"n1 OK")
