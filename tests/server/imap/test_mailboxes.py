"""Mailbox commands (RFC 9051 sections 6.3.2-6.3.11, RFC 3501 6.3.9 LSUB, RFC 6154
SPECIAL-USE, RFC 3348 CHILDREN) with imapclient and imaplib through a real node."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from collections.abc import Callable

import pytest
from imapclient import IMAPClient

from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

MESSAGE = (b"From: someone@remote.test\r\nTo: alice@example.test\r\nSubject: hello %d\r\n"
           b"Message-ID: <m%d@remote.test>\r\n\r\nHi!\r\n")


def client(node: Node, user: str = "alice") -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=node.ports["imaps"], ssl=True,
                   ssl_context=tls_client_context(), timeout=30)
    c.login(user, PASSWORD)
    return c


def names(c: IMAPClient, pattern: str = "*") -> dict[str, tuple[bytes, ...]]:
    return {name: flags for flags, _, name in c.list_folders("", pattern)}


async def test_special_use_mailboxes_exist_at_first_login(node: Node) -> None:
    def run() -> None:
        c = client(node)
        listed = names(c)
        assert set(listed) == {"INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive"}
        assert b"\\Sent" in listed["Sent"] and b"\\Trash" in listed["Trash"]   # RFC 6154
        assert b"\\HasNoChildren" in listed["INBOX"]
        c.logout()
    await asyncio.to_thread(run)


async def test_create_list_patterns_children_rename_delete(node: Node) -> None:
    def run() -> None:
        c = client(node)
        c.create_folder("Projects/2026/Q1")          # superiors are created (6.3.4)
        c.create_folder("Projects/Old")
        listed = names(c)
        assert b"\\HasChildren" in listed["Projects"]
        assert b"\\HasNoChildren" in listed["Projects/Old"]
        assert set(names(c, "Projects/%")) == {"Projects/2026", "Projects/Old"}
        assert set(names(c, "Projects/*")) == {"Projects/2026", "Projects/2026/Q1",
                                               "Projects/Old"}
        assert set(names(c, "%")) == {"INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive",
                                      "Projects"}
        assert set(names(c, "inbox")) == {"INBOX"}   # INBOX in any case (5.1)
        with pytest.raises(IMAPClient.Error, match="ALREADYEXISTS"):
            c.create_folder("Projects/Old")
        c.rename_folder("Projects/Old", "Archive/Old")
        assert "Archive/Old" in names(c) and "Projects/Old" not in names(c)
        # DELETE of a mailbox with children keeps it as \Noselect (6.3.5)
        c.delete_folder("Projects/2026")
        listed = names(c)
        assert b"\\Noselect" in listed["Projects/2026"] and "Projects/2026/Q1" in listed
        with pytest.raises(IMAPClient.Error, match="NONEXISTENT"):
            c.delete_folder("Nope")
        with pytest.raises(IMAPClient.Error):
            c.delete_folder("INBOX")
        with pytest.raises(IMAPClient.Error):
            c.select_folder("Projects/2026")          # \Noselect
        c.logout()
    await asyncio.to_thread(run)


async def test_list_empty_pattern_gives_the_delimiter(node: Node) -> None:
    def run() -> None:
        c = imaplib.IMAP4_SSL("127.0.0.1", node.ports["imaps"], ssl_context=tls_client_context())
        c.login("alice", PASSWORD)
        typ, data = c.list('""', '""')
        assert typ == "OK" and data == [b'(\\Noselect) "/" ""']
        c.logout()
    await asyncio.to_thread(run)


async def test_subscribe_lsub_and_list_subscribed(node: Node) -> None:
    def run() -> None:
        c = client(node)
        c.create_folder("News")
        assert "News" not in {n for _, _, n in c.list_sub_folders()}
        c.subscribe_folder("News")
        assert "News" in {n for _, _, n in c.list_sub_folders()}     # LSUB (rev1)
        c.unsubscribe_folder("News")
        assert "News" not in {n for _, _, n in c.list_sub_folders()}
        typ, data = c._imap._simple_command("LIST", "(SUBSCRIBED)", '""', '"*"')
        assert typ == "OK"
        c.logout()
    await asyncio.to_thread(run)


async def test_status_select_examine_close_unselect(node: Node) -> None:
    def send() -> None:
        with smtplib.SMTP("127.0.0.1", node.ports["mx"], timeout=30) as s:
            for i in range(3):
                s.sendmail("someone@remote.test", ["alice@example.test"], MESSAGE % (i, i))
    await asyncio.to_thread(send)

    def run() -> None:
        c = client(node)
        st = c.folder_status("INBOX", ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN",
                                       "DELETED", "SIZE"])
        assert st[b"MESSAGES"] == 3 and st[b"UIDNEXT"] == 4 and st[b"UNSEEN"] == 3
        assert st[b"DELETED"] == 0 and st[b"SIZE"] > 0 and st[b"UIDVALIDITY"] > 0
        sel = c.select_folder("INBOX")
        assert sel[b"EXISTS"] == 3 and sel[b"UIDNEXT"] == 4
        assert sel[b"UIDVALIDITY"] == st[b"UIDVALIDITY"]
        assert b"\\Seen" in sel[b"FLAGS"] and b"\\*" in sel[b"PERMANENTFLAGS"]
        assert sel[b"READ-WRITE"]
        c.unselect_folder()
        ex = c.select_folder("Sent", readonly=True)
        assert ex[b"EXISTS"] == 0 and ex[b"READ-ONLY"]
        c.close_folder()
        with pytest.raises(IMAPClient.Error):
            c.close_folder()                           # no longer selected: BAD
        c.logout()
    await asyncio.to_thread(run)


async def test_new_mail_is_announced_by_noop(node: Node) -> None:
    def run() -> None:
        c = client(node)
        assert c.select_folder("INBOX")[b"EXISTS"] == 0
        with smtplib.SMTP("127.0.0.1", node.ports["mx"], timeout=30) as s:
            s.sendmail("someone@remote.test", ["alice@example.test"], MESSAGE % (9, 9))
        assert (1, b"EXISTS") in c.noop()[1]
        c.logout()
    await asyncio.to_thread(run)


async def test_one_account_never_sees_anothers_mailboxes(node: Node) -> None:
    def run() -> None:
        alice = client(node)
        alice.create_folder("Secret")
        bob = client(node, "bob")
        assert "Secret" not in names(bob)
        for attempt in (lambda: bob.select_folder("Secret"),
                        lambda: bob.folder_status("Secret", ["MESSAGES"]),
                        lambda: bob.delete_folder("Secret"),
                        lambda: bob.rename_folder("Secret", "Mine")):
            with pytest.raises(IMAPClient.Error, match="NONEXISTENT"):
                attempt()
        assert "Secret" in names(alice)
        alice.logout()
        bob.logout()
    await asyncio.to_thread(run)




async def test_select_reports_the_first_unseen_message_past_the_first_pages(
        imaps: Callable[[], imaplib.IMAP4_SSL]) -> None:
    """RFC 3501 section 6.3.1: SELECT's ``OK [UNSEEN n]`` is the first message without
    \\Seen, wherever it is (the server reads pages of growing size until found), and is
    absent when every message is seen."""
    def run() -> None:
        c = imaps()
        c.login("alice", PASSWORD)
        for i in range(100):
            typ, _ = c.append("INBOX", "(\\Seen)", None, MESSAGE % (i, i))
            assert typ == "OK"
        c.select("INBOX")
        assert c.response("UNSEEN") == ("UNSEEN", [None])
        for unseen in (99, 40, 33, 32, 2, 1):
            c.store(str(unseen), "-FLAGS", "(\\Seen)")
            c.unselect()
            c.select("INBOX")
            assert c.response("UNSEEN") == ("UNSEEN", [str(unseen).encode()])
        c.logout()
    await asyncio.to_thread(run)
