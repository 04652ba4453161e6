"""A FETCH and the check for others' changes that follows it (RFC 9051 sections 5.2,
6.4.5, 7.4.1): the records, the implicit \\Seen and the check read in one transaction,
and what another session changed meanwhile still announced before the tagged OK; the
\\Seen writes of concurrent sessions queued, not retried."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from collections.abc import Callable

from prometheus_client import REGISTRY

from server.node.node import Node
from tests.server.imap.conftest import PASSWORD

MESSAGE = (b"From: someone@remote.test\r\nTo: alice@example.test\r\n"
           b"Subject: hello %d\r\nMessage-ID: <c%d@remote.test>\r\n\r\nbody %d\r\n")


def _deliver(node: Node, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", node.ports["mx"], timeout=30) as s:
        for i in range(count):
            s.sendmail("someone@remote.test", ["alice@example.test"], MESSAGE % (i, i, i))


def _committed(node: Node) -> float:
    """The transactions the node's engine (sqlite or foundationdb) committed so far."""
    assert node.engine is not None
    return REGISTRY.get_sample_value("fdbmail_store_transactions_total",
                                     {"engine": node.engine.name, "result": "committed"}) or 0.0


def _flat(data: list[object]) -> bytes:
    """A command's response data as imaplib returns it, literals and all, in one string."""
    out = b""
    for item in data:
        out += b" ".join(item) if isinstance(item, tuple) else item if isinstance(item, bytes) \
            else b""
        out += b"\n"
    return out


async def test_fetch_sets_seen_and_still_reports_others_changes(
        node: Node, imaps: Callable[[], imaplib.IMAP4_SSL]) -> None:
    await asyncio.to_thread(_deliver, node, 3)

    def run() -> None:
        a, b = imaps(), imaps()
        for c in (a, b):
            c.login("alice", PASSWORD)
            c.select("INBOX")
        # nobody else changed the mailbox: the FETCH that sets \Seen is two transactions
        # (the read that finds it unseen; the read and write), no third for the change
        # check; its own change reported once, in its FETCH response (RFC 9051 6.4.5)
        before = _committed(node)
        typ, data = a.uid("FETCH", "1", "(BODY[])")
        assert typ == "OK" and _committed(node) - before == 2
        got = _flat(data)
        assert b"\\Seen" in got and b"body 0" in got and got.count(b"FLAGS") == 1
        before = _committed(node)
        typ, data = a.uid("FETCH", "1", "(BODY[])")     # seen already: one transaction
        assert typ == "OK" and _committed(node) - before == 1 and b"FLAGS" not in _flat(data)
        typ, data = a.noop()
        assert typ == "OK" and "FETCH" not in a.untagged_responses   # not announced again
        # another session flags message 2; A's next FETCH (which sets \Seen on message 3)
        # announces it before its tagged OK (RFC 9051 section 7.4.1)
        typ, data = b.uid("STORE", "2", "+FLAGS.SILENT", "(\\Flagged)")
        assert typ == "OK" and _flat(data) == b"1 (FLAGS (\\Seen) UID 1)\n"  # A's, once
        typ, data = a.uid("FETCH", "3", "(BODY[])")
        got = _flat(data)
        assert typ == "OK" and b"body 2" in got and b"2 (FLAGS (\\Flagged) UID 2)" in got
        assert got.count(b"\\Seen") == 1
        # and B learns of A's second \Seen at its next command
        typ, data = b.noop()
        got = _flat(b.untagged_responses.pop("FETCH", []))
        assert typ == "OK" and got == b"3 (FLAGS (\\Seen) UID 3)\n"
        # nothing left to announce to A, nor to B
        for c in (a, b):
            typ, _ = c.noop()
            assert typ == "OK" and "FETCH" not in c.untagged_responses
        for c in (a, b):
            c.logout()
    await asyncio.to_thread(run)


def _retries() -> float:
    return sum(s.value for m in REGISTRY.collect() if m.name == "fdbmail_store_retries"
               for s in m.samples if s.name == "fdbmail_store_retries_total")


async def test_concurrent_seen_writes_of_one_account_are_queued_not_retried(
        node: Node, imaps: Callable[[], imaplib.IMAP4_SSL]) -> None:
    """Each \\Seen write takes the account's next modseq, so overlapping writes of one
    account conflict; the sessions of a process queue them (server/imap/session/writers.py)
    and none is run twice.  Every message ends \\Seen, each reported once to its reader."""
    await asyncio.to_thread(_deliver, node, 24)

    def open_one() -> imaplib.IMAP4_SSL:
        c = imaps()
        c.login("alice", PASSWORD)
        c.select("INBOX")
        return c

    clients = [await asyncio.to_thread(open_one) for _ in range(6)]
    before = _retries()

    def read(c: imaplib.IMAP4_SSL, uids: range) -> bytes:
        out = b""
        for u in uids:
            typ, data = c.uid("FETCH", str(u), "(BODY[])")
            assert typ == "OK"
            out += _flat(data)
        return out

    got = await asyncio.gather(*(asyncio.to_thread(read, c, range(1 + 4 * i, 5 + 4 * i))
                                 for i, c in enumerate(clients)))
    assert _retries() == before
    for i, out in enumerate(got):
        for u in range(1 + 4 * i, 5 + 4 * i):
            assert out.count(b"body %d" % (u - 1)) == 1
    typ, data = await asyncio.to_thread(clients[0].uid, "SEARCH", "UNSEEN")
    assert typ == "OK" and data == [b""]
    for c in clients:
        await asyncio.to_thread(c.logout)
