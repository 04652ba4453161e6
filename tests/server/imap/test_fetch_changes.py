"""A FETCH and the check for others' changes that follows it (RFC 9051 sections 5.2,
6.4.5, 7.4.1): the records, the implicit \\Seen and the check read in one transaction,
and what another session changed meanwhile still announced before the tagged OK."""

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


def _committed() -> float:
    return REGISTRY.get_sample_value("fdbmail_store_transactions_total",
                                     {"engine": "sqlite", "result": "committed"}) or 0.0


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
        # nobody else changed the mailbox: the FETCH that sets \Seen is one transaction,
        # its own change reported once, in its FETCH response (RFC 9051 section 6.4.5)
        before = _committed()
        typ, data = a.uid("FETCH", "1", "(BODY[])")
        assert typ == "OK" and _committed() - before == 1
        got = _flat(data)
        assert b"\\Seen" in got and b"body 0" in got and got.count(b"FLAGS") == 1
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
