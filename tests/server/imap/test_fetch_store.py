"""FETCH and STORE with their UID forms (RFC 9051 sections 6.4.5, 6.4.6, 6.4.9): mail
delivered by SMTP is read back over IMAP with imapclient and byte-level commands."""

from __future__ import annotations

import asyncio
import smtplib

import pytest
from imapclient import IMAPClient

from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context

HEADER = (b"From: Someone <someone@remote.test>\r\nTo: alice@example.test\r\n"
          b"Subject: hello %d\r\nMessage-ID: <f%d@remote.test>\r\nX-Extra: yes\r\n"
          b"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n\r\n")
BODY = b"Line one\r\nLine two\r\n"


def _deliver(node: Node, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", node.ports["mx"], timeout=30) as s:
        for i in range(count):
            s.sendmail("someone@remote.test", ["alice@example.test"], HEADER % (i, i) + BODY)


def _client(node: Node) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=node.ports["imaps"], ssl=True,
                   ssl_context=tls_client_context(), timeout=30)
    c.login("alice", PASSWORD)
    return c


async def test_fetch_attributes_and_sections(node: Node) -> None:
    await asyncio.to_thread(_deliver, node, 3)

    def run() -> None:
        c = _client(node)
        c.select_folder("INBOX")
        got = c.fetch([1, 2, 3], ["UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "ENVELOPE",
                              "BODYSTRUCTURE"])
        assert sorted(got) == [1, 2, 3]
        # imapclient keys a UID FETCH's results by the UID item and drops it from the
        # dict, so keys 1..3 with SEQ 1..3 show the UID came back (6.4.9; raw check in
        # test_fetch.py)
        first = got[1]
        assert first[b"SEQ"] == 1 and first[b"FLAGS"] == ()
        assert first[b"ENVELOPE"].subject == b"hello 0"
        assert first[b"ENVELOPE"].from_[0].mailbox == b"someone"
        assert first[b"BODYSTRUCTURE"][0].lower() == b"text"   # case-insensitive (9051 4)
        # the stored message may carry a Received line: the body is its tail
        whole = c.fetch([2], ["BODY.PEEK[]"])[2][b"BODY[]"]
        assert whole.endswith(HEADER % (1, 1) + BODY) and len(whole) == got[2][b"RFC822.SIZE"]
        assert c.get_flags([2])[2] == ()                      # PEEK leaves \Seen alone
        parts = c.fetch([2], ["BODY.PEEK[TEXT]", "BODY.PEEK[HEADER.FIELDS (SUBJECT X-EXTRA)]",
                              "BODY.PEEK[TEXT]<5.3>"])[2]
        assert parts[b"BODY[TEXT]"] == BODY
        assert parts[b"BODY[HEADER.FIELDS (SUBJECT X-EXTRA)]"] == (
            b"Subject: hello 1\r\nX-Extra: yes\r\n\r\n")
        assert parts[b"BODY[TEXT]<5>"] == b"one"
        fetched = c.fetch([3], ["BODY[TEXT]"])[3]              # sets \Seen (6.4.5)
        assert b"\\Seen" in fetched[b"FLAGS"]
        assert c.folder_status("INBOX", ["UNSEEN"])[b"UNSEEN"] == 2
        c.use_uid = False                                      # sequence numbers now
        assert c.fetch([3], ["UID"])[3][b"UID"] == 3
        with pytest.raises(IMAPClient.Error):
            c.fetch([7], ["FLAGS"])                            # no such number: BAD (6.4.5)
        c.logout()
    await asyncio.to_thread(run)


async def test_store_and_uid_variants(node: Node) -> None:
    await asyncio.to_thread(_deliver, node, 2)

    def run() -> None:
        c = _client(node)
        c.select_folder("INBOX")
        assert c.add_flags([1], ["\\Flagged", "custom"])[1] == (b"\\Flagged", b"custom")
        assert c.get_flags([1])[1] == (b"\\Flagged", b"custom")
        c.remove_flags([1], ["custom"])
        assert c.get_flags([1])[1] == (b"\\Flagged",)
        c.set_flags([1, 2], ["\\Seen"])
        assert c.get_flags([1, 2]) == {1: (b"\\Seen",), 2: (b"\\Seen",)}
        # UID FETCH of a UID that does not exist is not an error (RFC 9051 6.4.9)
        assert c.fetch([2, 99], ["FLAGS"]) == {2: {b"FLAGS": (b"\\Seen",), b"SEQ": 2}}
        c.select_folder("INBOX", readonly=True)
        with pytest.raises(IMAPClient.Error):
            c.add_flags([1], ["\\Deleted"])
        c.logout()
    await asyncio.to_thread(run)
