"""APPEND (RFC 9051 section 6.3.12) through the delivery pipeline, with UIDPLUS's APPENDUID
(RFC 4315 section 3), MULTIAPPEND (RFC 3502), APPENDLIMIT (RFC 7889) and the UTF8 form of
RFC 6855 section 4, on a real node with imaplib and byte-level clients."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.node.node import Node
from tests.server.imap.conftest import start_node, write_config
from tests.server.imap.mutating import add_user, client, login, message, stored, uids

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py


def _appenduid(text: bytes) -> tuple[int, str]:
    m = re.search(rb"\[APPENDUID (\d+) ([0-9:,]+)\]", text)
    assert m, text
    return int(m.group(1)), m.group(2).decode()


async def test_append_stores_the_bytes_flags_and_date_and_reports_appenduid(node: Node) -> None:
    raw = message(1, 3000)

    def run() -> tuple[int, str, bytes]:
        m = client(node)
        caps = m.capabilities
        assert {"UIDPLUS", "MULTIAPPEND", "APPENDLIMIT=52428800"} <= set(caps)
        typ, data = m.append("INBOX", r"(\Seen $Label1)", '"05-Dec-2026 10:00:00 +0100"', raw)
        assert typ == "OK"
        validity, uid = _appenduid(data[0])
        typ, sel = m.select("INBOX")
        assert sel == [b"1"]
        uidvalidity = m.response("UIDVALIDITY")[1][0]
        m.logout()
        return validity, uid, uidvalidity

    validity, uid, uidvalidity = await asyncio.to_thread(run)
    assert validity == int(uidvalidity)
    # RFC 4315 section 3: the UID is the message's UID in the mailbox
    assert await uids(node) == [int(uid)]
    data, received, keywords = await stored(node, int(uid))
    assert data == raw   # byte-identical, CRLF kept
    assert received == 1796461200.0   # 2026-12-05 09:00:00 UTC: the given INTERNALDATE
    assert set(keywords) == {"$seen", "$label1"}


async def test_append_to_the_selected_mailbox_announces_exists_first(node: Node) -> None:
    raw = message(2)

    def run() -> list[bytes]:
        c = login(node)
        c.command(b"s1 SELECT INBOX\r\n")
        c.send(b"a1 APPEND INBOX {%d}\r\n" % len(raw))
        assert c.line().startswith(b"+ ")
        c.send(raw + b"\r\n")
        out = [c.line()]
        while not out[-1].startswith(b"a1 "):
            out.append(c.line())
        c.close()
        return out

    out = await asyncio.to_thread(run)
    # RFC 9051 section 6.3.12: the new message is announced before the tagged OK
    assert out[0] == b"* 1 EXISTS\r\n"
    assert re.match(rb"a1 OK \[APPENDUID \d+ 1\] ", out[-1]), out


async def test_append_in_a_read_only_session_and_to_another_mailbox(node: Node) -> None:
    def run() -> list[list[bytes]]:
        c = login(node)
        c.command(b"e1 EXAMINE INBOX\r\n")   # EXAMINE does not forbid APPEND
        out = [c.command(b"a1 APPEND INBOX {5+}\r\nhello\r\n")]
        out.append(c.command(b"a2 APPEND Drafts (\\Draft) {5+}\r\nworld\r\n"))
        c.close()
        return out

    inbox, drafts = await asyncio.to_thread(run)
    assert inbox[0] == b"* 1 EXISTS\r\n" and inbox[-1].startswith(b"a1 OK [APPENDUID ")
    assert drafts == [drafts[-1]] and drafts[-1].startswith(b"a2 OK [APPENDUID ")
    assert len(await uids(node, name="Drafts")) == 1


async def test_append_to_a_missing_mailbox_is_trycreate_and_never_another_users(
        node: Node) -> None:
    def run() -> list[bytes]:
        login(node, "bob").close()   # bob's account and mailboxes exist
        c = login(node)
        out = []
        for name in (b"Nowhere", b"bob/INBOX", b"user/bob", b"~bob/INBOX"):
            out.append(c.command(b"a1 APPEND %s {5+}\r\nhello\r\n" % name)[-1])
        out.append(c.command(b"n1 NOOP\r\n")[-1])
        c.close()
        return out

    *answers, noop = await asyncio.to_thread(run)
    for answer in answers:   # RFC 9051 section 6.3.12: [TRYCREATE] when it does not exist
        assert answer.startswith(b"a1 NO [TRYCREATE] "), answer
    assert noop.startswith(b"n1 OK")
    assert await uids(node, user="bob") == []


async def test_append_of_a_4gb_literal_is_refused_before_the_data(node: Node) -> None:
    def run() -> list[list[bytes]]:
        c = login(node)
        # RFC 7889 section 3 / RFC 9051 section 7.1: refused at once, no continuation
        out = [c.command(b"a1 APPEND INBOX {4294967296}\r\n")]
        out.append(c.command(b"a2 APPEND INBOX {99999999999999999999999}\r\n"))
        out.append(c.command(b"n1 NOOP\r\n"))
        c.close()
        return out

    big, huge, noop = await asyncio.to_thread(run)
    assert big == [big[-1]] and big[-1].startswith(b"a1 NO [TOOBIG]")
    assert huge[-1].startswith(b"a2 NO [TOOBIG]")
    assert noop[-1].startswith(b"n1 OK")
    assert await uids(node) == []


@pytest.fixture
async def small_node(tmp_path: Path) -> AsyncIterator[Node]:
    """APPENDLIMIT 2048 and a user ``carol`` with a quota of 3000 bytes."""
    path = write_config(tmp_path)
    path.write_text(path.read_text() + "append_limit = 2048\n")   # the [imap] section
    add_user(path, "carol", "--quota", "3000")
    n = await start_node(path)
    try:
        yield n
    finally:
        await n.stop()


async def test_appendlimit_is_advertised_and_literal_plus_over_it_is_skipped(
        small_node: Node) -> None:
    node = small_node
    ok = message(3, 100)

    def run() -> list[list[bytes]]:
        c = login(node)
        out = [c.command(b"c1 CAPABILITY\r\n")]
        # RFC 7888 section 4: a non-synchronising literal over the limit is sent anyway;
        # its octets are read and thrown away, and the session goes on
        out.append(c.command(b"a1 APPEND INBOX {3000+}\r\n" + b"x" * 3000 + b"\r\n"))
        out.append(c.command(b"a2 APPEND INBOX {%d+}\r\n%s\r\n" % (len(ok), ok)))
        c.close()
        return out

    caps, big, good = await asyncio.to_thread(run)
    assert b" APPENDLIMIT=2048" in caps[0]
    assert big == [big[-1]] and big[-1].startswith(b"a1 NO [TOOBIG]")
    assert good[-1].startswith(b"a2 OK [APPENDUID ")
    assert len(await uids(node)) == 1


async def test_append_over_quota_is_overquota(small_node: Node) -> None:
    node = small_node

    def run() -> list[bytes]:
        c = login(node, "carol")
        out = [c.command(b"a1 APPEND INBOX {2000+}\r\n" + b"y" * 2000 + b"\r\n")[-1]]
        out.append(c.command(b"a2 APPEND INBOX {2000+}\r\n" + b"z" * 2000 + b"\r\n")[-1])
        c.close()
        return out

    first, second = await asyncio.to_thread(run)
    assert first.startswith(b"a1 OK [APPENDUID ")
    assert second.startswith(b"a2 NO [OVERQUOTA]")   # RFC 9208 section 4.3
    assert len(await uids(node, "carol")) == 1


async def test_the_quota_holds_for_a_login_by_address(small_node: Node) -> None:
    node = small_node

    def run() -> list[bytes]:
        c = login(node, "carol@example.test")
        out = [c.command(b"a1 APPEND INBOX {2000+}\r\n" + b"y" * 2000 + b"\r\n")[-1]]
        out.append(c.command(b"a2 APPEND INBOX {2000+}\r\n" + b"z" * 2000 + b"\r\n")[-1])
        c.close()
        return out

    first, second = await asyncio.to_thread(run)
    assert first.startswith(b"a1 OK [APPENDUID ")
    assert second.startswith(b"a2 NO [OVERQUOTA]")
    assert len(await uids(node, "carol")) == 1


async def test_multiappend_is_all_or_nothing_with_one_appenduid_set(small_node: Node) -> None:
    node = small_node
    msgs = [message(n) for n in range(3)]

    def run() -> list[bytes]:
        c = login(node, "carol")
        cmd = b"a1 APPEND INBOX"
        for n, m in enumerate(msgs):
            cmd += b" (\\Flagged) {%d+}\r\n%s" % (len(m), m) if n else b" {%d+}\r\n%s" % (
                len(m), m)
        out = [c.command(cmd + b"\r\n")[-1]]
        # RFC 3502 section 6.3.11: the second would pass the quota: none is appended
        out.append(c.command(b"a2 APPEND Drafts {1500+}\r\n" + b"a" * 1500
                             + b" {1500+}\r\n" + b"b" * 1500 + b"\r\n")[-1])
        c.close()
        return out

    ok, refused = await asyncio.to_thread(run)
    _, uid_set = _appenduid(ok)
    assert uid_set == "1:3"
    assert await uids(node, "carol") == [1, 2, 3]
    _, _, keywords = await stored(node, 2, "carol")
    assert keywords == ("$flagged",)
    assert refused.startswith(b"a2 NO [OVERQUOTA]")
    assert await uids(node, "carol", "Drafts") == []


async def test_bad_append_arguments_get_bad_and_store_nothing(node: Node) -> None:
    def run() -> list[bytes]:
        c = login(node)
        out = [c.command(b"a1 APPEND INBOX (\\Bogus) {5+}\r\nhello\r\n")[-1]]
        out.append(c.command(b"a2 APPEND INBOX\r\n")[-1])
        out.append(c.command(b'a3 APPEND INBOX "31-Feb-2026 10:00:00 +0000" {5+}\r\nhello\r\n')[-1])
        # RFC 6855 section 4: the UTF8 form needs UTF8=ACCEPT (or IMAP4rev2) enabled
        out.append(c.command(b"a4 APPEND INBOX UTF8 (~{5+}\r\nhello)\r\n")[-1])
        out.append(c.command(b"n1 NOOP\r\n")[-1])
        c.close()
        return out

    *bad, noop = await asyncio.to_thread(run)
    for answer in bad:
        assert answer.split(b" ")[1] == b"BAD", answer
    assert noop.startswith(b"n1 OK")
    assert await uids(node) == []


async def test_utf8_append_after_enable(node: Node) -> None:
    raw = "From: a@example.test\r\nSubject: Grüße\r\n\r\nhé\r\n".encode()

    def run() -> bytes:
        c = login(node)
        c.command(b"e1 ENABLE IMAP4rev2\r\n")
        out = c.command(b"a1 APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n" % (len(raw), raw))[-1]
        c.close()
        return out

    answer = await asyncio.to_thread(run)
    assert answer.startswith(b"a1 OK [APPENDUID ")
    assert (await stored(node, 1))[0] == raw

