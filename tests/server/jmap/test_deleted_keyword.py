"""IMAP's \\Deleted seen from JMAP (RFC 8621 section 4.1.1): "Any message with the \\Deleted
keyword MUST NOT be visible via JMAP (and so are not counted in the "totalEmails",
"unreadEmails", "totalThreads", and "unreadThreads" Mailbox properties)."  A real node on
each engine, IMAP through imaplib, JMAP through httpx."""

from __future__ import annotations

import asyncio
import imaplib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.imap.conftest import tls_client_context
from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import calls, mail_node, one, upload

COUNTS = ["id", "totalEmails", "unreadEmails", "totalThreads", "unreadThreads"]


NODE_ENGINES = ("sqlite", "foundationdb")  # tests/support/nodes.py


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path) as m:
        yield m


def _imap(port: int, *commands: tuple[str, ...]) -> list[Any]:
    """Log in as alice, SELECT INBOX, run each ``(command, args...)`` through
    ``imaplib``'s ``uid``; the data of each."""
    client = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    try:
        client.starttls(ssl_context=tls_client_context())
        client.login("alice", "wonderland")
        assert client.select("INBOX")[0] == "OK"
        out = []
        for command in commands:
            typ, data = client.uid(*command)
            assert typ == "OK", (command, data)
            out.append(data)
        return out
    finally:
        client.logout()


async def _import(c: httpx.AsyncClient, account: str, subject: str, *boxes: str) -> str:
    blob = await upload(c, account, f"Subject: {subject}\r\nFrom: x@remote.test\r\n"
                        f"Message-ID: <{subject}@remote.test>\r\n\r\nhi\r\n".encode())
    got = await one(c, "Email/import", {"accountId": account, "emails": {"m": {
        "blobId": blob["blobId"], "mailboxIds": dict.fromkeys(boxes, True)}}})
    email_id: str = got["created"]["m"]["id"]
    return email_id


async def _roles(c: httpx.AsyncClient, account: str) -> dict[str, str]:
    got = await one(c, "Mailbox/get", {"accountId": account, "ids": None})
    return {m["role"]: m["id"] for m in got["list"] if m["role"]}


async def _view(c: httpx.AsyncClient, account: str, ids: list[str], threads: list[str],
                boxes: list[str], since: tuple[str, str, str]) -> dict[str, Any]:
    """Everything JMAP shows of ``ids``, ``threads`` and ``boxes``, and the changes since
    the (Email, Mailbox, Thread) states ``since``, in one request."""
    responses = await calls(
        c,
        ["Email/get", {"accountId": account, "ids": ids,
                       "properties": ["mailboxIds", "keywords"]}, "get"],
        ["Email/query", {"accountId": account, "filter": {"inMailbox": boxes[0]},
                         "calculateTotal": True}, "inbox"],
        ["Email/query", {"accountId": account, "calculateTotal": True}, "all"],
        ["Email/query", {"accountId": account, "filter": {"inMailbox": boxes[0]},
                         "collapseThreads": True}, "threads"],
        ["Mailbox/get", {"accountId": account, "ids": boxes, "properties": COUNTS}, "boxes"],
        ["Thread/get", {"accountId": account, "ids": threads}, "thread"],
        ["Email/changes", {"accountId": account, "sinceState": since[0]}, "ec"],
        ["Mailbox/changes", {"accountId": account, "sinceState": since[1]}, "mc"],
        ["Thread/changes", {"accountId": account, "sinceState": since[2]}, "tc"],
    )
    return {tag: result for _, result, tag in responses}


async def _states(c: httpx.AsyncClient, account: str) -> tuple[str, str, str]:
    responses = await calls(c, *[[f"{kind}/get", {"accountId": account, "ids": []}, kind]
                                 for kind in ("Email", "Mailbox", "Thread")])
    email, mailbox, thread = (result["state"] for _, result, _ in responses)
    return email, mailbox, thread


def _counts(view: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
    return {m["id"]: (m["totalEmails"], m["unreadEmails"], m["totalThreads"],
                      m["unreadThreads"]) for m in view["boxes"]["list"]}


async def test_imap_deleted_hides_a_message_from_jmap_and_undeleting_shows_it(
        mail: Mail) -> None:
    """RFC 8621 section 4.1.1: STORE +FLAGS \\Deleted in INBOX hides the message there:
    an email only there is gone (Email/get notFound, no query, thread or count has it,
    Email/changes and Thread/changes say destroyed); one also in Archive stays, with
    Archive alone in its mailboxIds.  -FLAGS \\Deleted brings it back (RFC 8620 section
    5.2: created since the state in which it was destroyed, with the mailbox's counts)."""
    alice = mail.ids["alice"]
    port = mail.node.ports["imap"]
    async with mail.client() as c:
        roles = await _roles(c, alice)
        inbox, archive = roles["inbox"], roles["archive"]
        only = await _import(c, alice, "only", inbox)
        both = await _import(c, alice, "both", inbox, archive)
        got = await one(c, "Email/get", {"accountId": alice, "ids": [only, both],
                                         "properties": ["threadId"]})
        thread = {e["id"]: e["threadId"] for e in got["list"]}
        before = await _states(c, alice)
        [uids] = await asyncio.to_thread(_imap, port, ("SEARCH", "ALL"))
        assert len(uids[0].split()) == 2
        await asyncio.to_thread(_imap, port, ("STORE", b",".join(uids[0].split()).decode(),
                                              "+FLAGS", "(\\Deleted)"))
        view = await _view(c, alice, [only, both], [thread[only], thread[both]],
                           [inbox, archive], before)
        hidden = await _states(c, alice)

        assert view["get"]["notFound"] == [only]
        [shown] = view["get"]["list"]
        assert shown["mailboxIds"] == {archive: True}
        assert "$deleted" not in shown["keywords"]
        assert (view["inbox"]["ids"], view["inbox"]["total"]) == ([], 0)
        assert (view["all"]["ids"], view["all"]["total"]) == ([both], 1)
        assert view["threads"]["ids"] == []
        assert _counts(view) == {inbox: (0, 0, 0, 0), archive: (1, 1, 1, 1)}
        assert view["thread"]["notFound"] == [thread[only]]
        assert [t["emailIds"] for t in view["thread"]["list"]] == [[both]]
        assert (view["ec"]["created"], view["ec"]["updated"], view["ec"]["destroyed"]) \
            == ([], [both], [only])
        assert view["mc"]["updated"] == [inbox] and view["mc"]["destroyed"] == []
        assert view["tc"]["destroyed"] == [thread[only]]
        assert view["tc"]["updated"] == [thread[both]]

        first = uids[0].split()[0].decode()
        await asyncio.to_thread(_imap, port, ("STORE", first, "-FLAGS", "(\\Deleted)"))
        view = await _view(c, alice, [only], [thread[only]], [inbox, archive], hidden)
    [back] = view["get"]["list"]
    assert back["mailboxIds"] == {inbox: True}
    assert (view["inbox"]["ids"], view["inbox"]["total"]) == ([only], 1)
    assert _counts(view) == {inbox: (1, 1, 1, 1), archive: (1, 1, 1, 1)}
    assert view["thread"]["list"] == [{"id": thread[only], "emailIds": [only]}]
    assert (view["ec"]["created"], view["ec"]["updated"], view["ec"]["destroyed"]) \
        == ([only], [], [])
    assert view["mc"]["updated"] == [inbox]
    assert view["tc"]["updated"] == [thread[only]]


def _flags(data: list[Any]) -> dict[int, str]:
    """UID -> FLAGS of a UID FETCH (UID FLAGS) answer."""
    out = {}
    for line in data:
        text = line.decode() if isinstance(line, bytes) else line[0].decode()
        m = re.search(r"UID (\d+) FLAGS \(([^)]*)\)", text) or re.search(
            r"FLAGS \(([^)]*)\) UID (\d+)", text)
        assert m is not None, text
        uid, flags = (m.group(1), m.group(2)) if text.find("UID") < text.find("FLAGS") \
            else (m.group(2), m.group(1))
        out[int(uid)] = flags
    return out


async def test_jmap_neither_sets_deleted_nor_drops_a_hidden_membership(mail: Mail) -> None:
    """RFC 8621 section 4.1.1: $deleted is not a JMAP keyword: Email/set (update, create)
    and Email/import refuse it with invalidProperties (RFC 8620 section 5.3) and change
    nothing.  A membership with \\Deleted, which the client does not see, stays when it
    sets mailboxIds without it (IMAP still has the message, \\Deleted) and shows again,
    under its UID, when the client puts the email back in that mailbox."""
    alice = mail.ids["alice"]
    port = mail.node.ports["imap"]
    async with mail.client() as c:
        roles = await _roles(c, alice)
        inbox, archive, drafts = roles["inbox"], roles["archive"], roles["drafts"]
        email_id = await _import(c, alice, "kept", inbox, archive)
        [uids] = await asyncio.to_thread(_imap, port, ("SEARCH", "ALL"))
        uid = uids[0].decode()
        await asyncio.to_thread(_imap, port, ("STORE", uid, "+FLAGS", "(\\Deleted)"))
        state = (await _states(c, alice))[0]

        blob = await upload(c, alice, b"Subject: x\r\n\r\nx\r\n")
        refused = await calls(
            c,
            ["Email/set", {"accountId": alice, "update": {
                email_id: {"keywords/$deleted": True}}}, "update"],
            ["Email/set", {"accountId": alice, "update": {
                email_id: {"keywords": {"$Deleted": True}}}}, "replace"],
            ["Email/set", {"accountId": alice, "create": {"d": {
                "mailboxIds": {drafts: True}, "keywords": {"$deleted": True},
                "subject": "x"}}}, "create"],
            ["Email/import", {"accountId": alice, "emails": {"i": {
                "blobId": blob["blobId"], "mailboxIds": {inbox: True},
                "keywords": {"$deleted": True}}}}, "import"])
        errors = {tag: result.get("notUpdated") or result.get("notCreated") or result
                  for _, result, tag in refused}
        for tag, error in errors.items():
            [(_, set_error)] = error.items()
            assert set_error["type"] == "invalidProperties", (tag, set_error)
            assert set_error["properties"] == ["keywords"]
        assert (await _states(c, alice))[0] == state

        moved = await one(c, "Email/set", {"accountId": alice, "update": {email_id: {
            f"mailboxIds/{archive}": None, f"mailboxIds/{drafts}": True}}})
        assert list(moved["updated"]) == [email_id]
        [flags] = await asyncio.to_thread(_imap, port, ("FETCH", "1:*", "(FLAGS)"))
        assert _flags(flags) == {int(uid): "\\Deleted"}
        got = await one(c, "Email/get", {"accountId": alice, "ids": [email_id],
                                         "properties": ["mailboxIds"]})
        assert got["list"][0]["mailboxIds"] == {drafts: True}

        await one(c, "Email/set", {"accountId": alice, "update": {email_id: {
            f"mailboxIds/{inbox}": True}}})
        [flags] = await asyncio.to_thread(_imap, port, ("FETCH", "1:*", "(FLAGS)"))
        got = await one(c, "Email/get", {"accountId": alice, "ids": [email_id],
                                         "properties": ["mailboxIds"]})
    assert _flags(flags) == {int(uid): ""}
    assert got["list"][0]["mailboxIds"] == {inbox: True, drafts: True}


async def test_imap_deleted_hides_the_blob_of_a_message_and_undeleting_shows_it(
        mail: Mail) -> None:
    """RFC 8621 section 4.1.1: a message with \\Deleted is not visible via JMAP, and so
    neither is its blob: the download is 404 (RFC 8620 section 6.2), Blob/get (RFC 9404
    section 4.2) and Blob/copy (RFC 8620 section 6.3) say notFound / notCopied,
    Email/parse (RFC 8621 section 4.9) notFound, as for a blob that does not exist;
    -FLAGS \\Deleted makes it readable again.  The message comes in over SMTP, so no
    upload of the account makes its blob readable otherwise."""
    alice = mail.ids["alice"]
    port = mail.node.ports["imap"]
    await mail.send("alice@example.com", "secret")
    async with mail.client() as c:
        found = await one(c, "Email/query", {"accountId": alice})
        [email_id] = found["ids"]
        got = await one(c, "Email/get", {"accountId": alice, "ids": [email_id],
                                         "properties": ["blobId"]})
        blob_id = got["list"][0]["blobId"]

        async def seen() -> dict[str, Any]:
            r = await c.get(f"/download/{alice}/{blob_id}/m.eml")
            responses = await calls(
                c,
                ["Blob/get", {"accountId": alice, "ids": [blob_id],
                              "properties": ["size"]}, "get"],
                ["Blob/copy", {"fromAccountId": alice, "accountId": alice,
                               "blobIds": [blob_id]}, "copy"],
                ["Email/parse", {"accountId": alice, "blobIds": [blob_id],
                                 "properties": ["subject"]}, "parse"])
            out = {tag: result for _, result, tag in responses}
            out["status"] = r.status_code
            return out

        shown = await seen()
        assert shown["status"] == 200
        assert shown["get"]["notFound"] == []
        assert shown["copy"]["copied"] == {blob_id: blob_id}
        assert shown["parse"]["parsed"][blob_id]["subject"] == "secret"

        [uids] = await asyncio.to_thread(_imap, port, ("SEARCH", "ALL"))
        uid = uids[0].decode()
        await asyncio.to_thread(_imap, port, ("STORE", uid, "+FLAGS", "(\\Deleted)"))
        hidden = await seen()
        assert hidden["status"] == 404
        assert (hidden["get"]["list"], hidden["get"]["notFound"]) == ([], [blob_id])
        assert hidden["copy"]["copied"] is None
        assert hidden["copy"]["notCopied"][blob_id]["type"] == "notFound"
        assert hidden["parse"]["parsed"] is None
        assert hidden["parse"]["notFound"] == [blob_id]

        await asyncio.to_thread(_imap, port, ("STORE", uid, "-FLAGS", "(\\Deleted)"))
        again = await seen()
        assert again["status"] == 200
        assert again["get"]["notFound"] == []
        assert again["parse"]["parsed"][blob_id]["subject"] == "secret"
