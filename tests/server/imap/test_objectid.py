"""OBJECTID (RFC 8474) on a real node: MAILBOXID in CREATE's and SELECT's OK, STATUS and
LIST-STATUS; EMAILID / THREADID in FETCH and SEARCH; and the ids are JMAP's ids of the same
objects (RFC 8474 section 1: "the same ... as JMAP"), checked in both directions with imapclient
and JMAP over the node's HTTP listener."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from imapclient import IMAPClient

from server.node.node import Node
from tests.server.imap.conftest import tls_client_context
from tests.server.imap.mutating import login
from tests.server.jmap.test_mail import PASSWORDS
from tests.server.jmap.writes import mail_node, one

OBJECTID = re.compile(rb"[A-Za-z0-9_-]{1,255}")   # RFC 8474 section 7: objectid


def _mailboxid(line: bytes) -> str:
    m = re.search(rb"\[MAILBOXID \(([^)]*)\)\]", line)
    assert m is not None, line
    assert OBJECTID.fullmatch(m.group(1)), line
    return m.group(1).decode()


async def test_mailboxid_in_create_select_status_and_list_status(node: Node) -> None:
    """RFC 8474 section 4.1 (CREATE's OK and SELECT/EXAMINE's untagged OK carry MAILBOXID;
    RENAME keeps it) and 4.2 (STATUS MAILBOXID, so also in LIST-STATUS, RFC 5819)."""
    def run() -> dict[str, object]:
        c = login(node)
        out: dict[str, object] = {"caps": c.command(b"c CAPABILITY\r\n")[0]}
        out["create"] = c.command(b"a CREATE Work\r\n")[-1]
        out["special"] = c.command(b"b CREATE Old/Sub\r\n")[-1]
        out["select"] = c.command(b"s SELECT Work\r\n")
        out["examine"] = c.command(b"e EXAMINE Old/Sub\r\n")
        out["status"] = c.command(b"t STATUS Work (MESSAGES MAILBOXID)\r\n")
        out["list"] = c.command(b'l LIST "" "*" RETURN (STATUS (MAILBOXID))\r\n')
        c.command(b"u UNSELECT\r\n")
        c.command(b"r RENAME Work Play\r\n")
        out["renamed"] = c.command(b"t2 STATUS Play (MAILBOXID)\r\n")
        out["inbox"] = c.command(b"t3 STATUS INBOX (MAILBOXID)\r\n")
        c.close()
        return out

    out = await asyncio.to_thread(run)
    assert b" OBJECTID" in out["caps"]  # type: ignore[operator]
    work = _mailboxid(out["create"])  # type: ignore[arg-type]
    old = _mailboxid(out["special"])  # type: ignore[arg-type]
    assert work != old
    assert any(_mailboxid(x) == work for x in out["select"] if b"MAILBOXID" in x)  # type: ignore[attr-defined]
    assert any(_mailboxid(x) == old for x in out["examine"] if b"MAILBOXID" in x)  # type: ignore[attr-defined]
    assert out["status"][0] == b"* STATUS Work (MESSAGES 0 MAILBOXID (%s))\r\n" % work.encode()  # type: ignore[index]
    listed = b"".join(out["list"])  # type: ignore[arg-type]
    assert b"* STATUS Work (MAILBOXID (%s))\r\n" % work.encode() in listed
    assert b"* STATUS Old/Sub (MAILBOXID (%s))\r\n" % old.encode() in listed
    assert out["renamed"][0] == b"* STATUS Play (MAILBOXID (%s))\r\n" % work.encode()  # type: ignore[index]
    inbox = re.search(rb"MAILBOXID \(([^)]+)\)", out["inbox"][0]).group(1)  # type: ignore[index, union-attr]
    assert inbox.decode() not in (work, old)


def _imap(node: Node) -> IMAPClient:
    m = IMAPClient("127.0.0.1", node.ports["imaps"], ssl=True, ssl_context=tls_client_context(),
                   timeout=30)
    m.login("alice", PASSWORDS["alice"])
    return m


async def test_ids_are_jmaps_ids_both_ways(tmp_path: Path) -> None:
    """RFC 8474 section 1 and issue 12: a mailbox made with JMAP Mailbox/set shows its JMAP id
    as IMAP's MAILBOXID; a message APPENDed with IMAP has EMAILID / THREADID equal to JMAP's
    Email id / threadId; SEARCH EMAILID / THREADID (section 6) find it by JMAP's ids."""
    async with mail_node(tmp_path) as mail:
        account = mail.ids["alice"]
        async with mail.client() as http:
            made = await one(http, "Mailbox/set", {"accountId": account,
                                                   "create": {"p": {"name": "Projects"}}})
            jmap_box = made["created"]["p"]["id"]
            boxes = await one(http, "Mailbox/get", {"accountId": account, "ids": None})
            jmap_inbox = next(b["id"] for b in boxes["list"] if b["role"] == "inbox")

        raw = (b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: ids\r\n"
               b"Message-ID: <ids.1@example.com>\r\n\r\nhello\r\n")

        def imap_side() -> dict[str, object]:
            m = _imap(mail.node)
            status = m.folder_status("Projects", [b"MAILBOXID"])
            inbox = m.folder_status("INBOX", [b"MAILBOXID"])
            m.append("Projects", raw)
            m.create_folder("FromImap")
            created = m.folder_status("FromImap", [b"MAILBOXID"])
            m.select_folder("Projects")
            [uid] = m.search("ALL")
            fetched = m.fetch([uid], [b"EMAILID", b"THREADID"])[uid]
            m.logout()
            return {"status": status, "inbox": inbox, "created": created, "uid": uid,
                    "fetched": fetched}

        got = await asyncio.to_thread(imap_side)
        assert got["status"][b"MAILBOXID"] == (jmap_box.encode(),)  # type: ignore[index]
        assert got["inbox"][b"MAILBOXID"] == (jmap_inbox.encode(),)  # type: ignore[index]
        email_id = got["fetched"][b"EMAILID"][0].decode()  # type: ignore[index]
        thread_id = got["fetched"][b"THREADID"][0].decode()  # type: ignore[index]
        imap_box = got["created"][b"MAILBOXID"][0].decode()  # type: ignore[index]

        async with mail.client() as http:
            found = await one(http, "Email/query", {"accountId": account,
                                                    "filter": {"inMailbox": jmap_box}})
            assert found["ids"] == [email_id]
            emails = await one(http, "Email/get", {"accountId": account, "ids": [email_id],
                                                   "properties": ["threadId", "mailboxIds"]})
            assert emails["list"][0]["threadId"] == thread_id
            assert emails["list"][0]["mailboxIds"] == {jmap_box: True}
            boxes = await one(http, "Mailbox/get", {"accountId": account, "ids": [imap_box]})
            assert [b["name"] for b in boxes["list"]] == ["FromImap"]

        def search() -> tuple[list[int], list[int], list[int]]:
            m = _imap(mail.node)
            m.select_folder("Projects")
            by_email = m.search([b"EMAILID", email_id.encode()])
            by_thread = m.search([b"THREADID", thread_id.encode()])
            none = m.search([b"EMAILID", b"Mnosuchemail"])
            m.logout()
            return by_email, by_thread, none

        by_email, by_thread, none = await asyncio.to_thread(search)
        assert by_email == by_thread == [got["uid"]] and none == []
