"""Email/set (RFC 8621 section 4.6) through a real node: create from the JSON structure
(the stored message parsed back with Python's ``email`` package), updates by full value
and by patch (seen by the mail layer, which IMAP reads), ifInState, destroy, and the
SetErrors."""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fdb_layers.mail import get_email, list_messages, transact
from tests.server.imap.conftest import tls_client_context
from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import calls, mail_node, one, upload

PDF = b"%PDF-1.4\n\x00\x01\x02 binary \xff" * 50


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path) as m:
        yield m


async def _roles(c: httpx.AsyncClient, account: str) -> dict[str, str]:
    got = await one(c, "Mailbox/get", {"accountId": account, "ids": None})
    return {m["role"]: m["id"] for m in got["list"] if m["role"]}


def _draft(drafts: str, **extra: Any) -> dict[str, Any]:
    return {"mailboxIds": {drafts: True}, "keywords": {"$draft": True},
            "from": [{"name": "Älice Wonder", "email": "alice@example.com"}],
            "to": [{"name": None, "email": "bob@example.com"}],
            "subject": "Grüße und Anhang",
            "textBody": [{"partId": "t", "type": "text/plain"}],
            "htmlBody": [{"partId": "h", "type": "text/html"}],
            "bodyValues": {"t": {"value": "Hallo Bob, schöne Grüße.\n" + "z" * 300 + "\n"},
                           "h": {"value": "<p>Hallo Bob</p>"}},
            **extra}


async def test_create_with_an_attachment_builds_a_real_message(mail: Mail) -> None:
    alice = mail.ids["alice"]
    async with mail.client() as c:
        roles = await _roles(c, alice)
        pdf = (await upload(c, alice, PDF, "application/pdf"))["blobId"]
        got = await one(c, "Email/set", {"accountId": alice, "create": {"d": _draft(
            roles["drafts"], attachments=[{"blobId": pdf, "type": "application/pdf",
                                           "name": "Bericht.pdf"}])}})
        created = got["created"]["d"]
        [email_got] = (await one(c, "Email/get", {"accountId": alice,
                                                  "ids": [created["id"]]}))["list"]
        blob = await one(c, "Blob/get", {"accountId": alice, "ids": [created["blobId"]],
                                         "properties": ["data:asText", "size"]})
    assert got["notCreated"] is None and got["oldState"] != got["newState"]
    assert email_got["mailboxIds"] == {roles["drafts"]: True}
    assert email_got["keywords"] == {"$draft": True}
    assert email_got["subject"] == "Grüße und Anhang" and email_got["hasAttachment"] is True
    assert email_got["from"] == [{"name": "Älice Wonder", "email": "alice@example.com"}]
    raw = blob["list"][0]["data:asText"].encode()
    assert blob["list"][0]["size"] == created["size"] == len(raw)
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))  # RFC 5322 2.1.1
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    for header in ("Date", "Message-ID", "MIME-Version"):  # added by the server
        assert parsed[header], header
    assert parsed.get_content_type() == "multipart/mixed"
    body, attachment = parsed.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    text, html = body.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert text.get_content_charset() == "utf-8"
    assert text["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert text.get_content().startswith("Hallo Bob, schöne Grüße.")
    assert html.get_content().strip() == "<p>Hallo Bob</p>"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "Bericht.pdf"
    assert attachment["Content-Transfer-Encoding"] == "base64"
    assert attachment.get_content() == PDF


async def test_create_from_body_structure(mail: Mail) -> None:
    alice = mail.ids["alice"]
    async with mail.client() as c:
        roles = await _roles(c, alice)
        got = await one(c, "Email/set", {"accountId": alice, "create": {"s": {
            "mailboxIds": {roles["drafts"]: True}, "subject": "structured",
            "header:X-Mailer:asText": "fdbmail tests",
            "messageId": ["given@example.com"], "sentAt": "2026-12-05T10:00:00Z",
            "bodyStructure": {"type": "multipart/alternative", "subParts": [
                {"partId": "a", "type": "text/plain"},
                {"partId": "b", "type": "text/html"}]},
            "bodyValues": {"a": {"value": "plain"}, "b": {"value": "<b>html</b>"}}}}})
        created = got["created"]["s"]
        blob = await one(c, "Blob/get", {"accountId": alice, "ids": [created["blobId"]]})
    parsed = email.message_from_bytes(blob["list"][0]["data:asText"].encode(),
                                      policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Message-ID"] == "<given@example.com>"
    assert parsed["X-Mailer"] == "fdbmail tests"
    assert parsed["Date"].datetime.isoformat() == "2026-12-05T10:00:00+00:00"
    assert [p.get_content().strip() for p in parsed.iter_parts()] == ["plain", "<b>html</b>"]


async def test_updates_by_value_and_by_patch_are_seen_by_the_layer(mail: Mail) -> None:
    alice = mail.ids["alice"]
    engine = mail.node.engine
    assert engine is not None
    async with mail.client() as c:
        roles = await _roles(c, alice)
        made = await one(c, "Email/set", {"accountId": alice, "create": {
            "d": _draft(roles["drafts"])}})
        email_id = made["created"]["d"]["id"]
        # RFC 8620 5.3 PatchObject: one keyword, one mailbox in, one out
        patched = await one(c, "Email/set", {"accountId": alice, "update": {email_id: {
            "keywords/$seen": True, "keywords/$draft": None,
            f"mailboxIds/{roles['inbox']}": True, f"mailboxIds/{roles['drafts']}": None}}})
        assert patched["updated"] == {email_id: None}
        assert patched["oldState"] != patched["newState"]
        stored = await transact(engine, get_email, alice, email_id)
        assert stored is not None and stored.keywords == ("$seen",)
        assert set(stored.mailboxes) == {roles["inbox"]}
        # what IMAP FETCH FLAGS reads: the inbox's message records
        [message] = await transact(engine, list_messages, alice, roles["inbox"])
        assert message.email_id == email_id and message.keywords == ("$seen",)

        whole = await one(c, "Email/set", {"accountId": alice, "update": {email_id: {
            "keywords": {"$Flagged": True, "work": True},
            "mailboxIds": {roles["archive"]: True, roles["inbox"]: True}}}})
        assert whole["updated"] == {email_id: None}
        [got] = (await one(c, "Email/get", {"accountId": alice, "ids": [email_id],
                                            "properties": ["keywords", "mailboxIds"]}))["list"]
    assert got["keywords"] == {"$flagged": True, "work": True}
    assert got["mailboxIds"] == {roles["archive"]: True, roles["inbox"]: True}


async def test_state_mismatch_and_another_accounts_ids(mail: Mail) -> None:
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    async with mail.client("bob") as c:
        bob_roles = await _roles(c, bob)
        bobs = (await one(c, "Email/set", {"accountId": bob, "create": {
            "d": _draft(bob_roles["drafts"])}}))["created"]["d"]["id"]
    async with mail.client() as c:
        state = (await one(c, "Email/get", {"accountId": alice, "ids": []}))["state"]
        stale = await calls(c, ["Email/set", {"accountId": alice, "ifInState": "nope",
                                              "destroy": [bobs]}, "s"])
        foreign = await one(c, "Email/set", {"accountId": alice, "ifInState": state,
                                             "update": {bobs: {"keywords/$seen": True}},
                                             "destroy": [bobs]})
        other_account = await calls(c, ["Email/set", {"accountId": bob, "destroy": [bobs]},
                                        "o"])
    assert stale[0][1]["type"] == "stateMismatch"  # RFC 8620 5.3
    assert foreign["notUpdated"][bobs]["type"] == "notFound"
    assert foreign["notDestroyed"][bobs]["type"] == "notFound"
    assert other_account[0][1]["type"] == "accountNotFound"
    async with mail.client("bob") as c:
        still = await one(c, "Email/get", {"accountId": bob, "ids": [bobs]})
    assert [e["id"] for e in still["list"]] == [bobs]


async def test_destroy(mail: Mail) -> None:
    alice = mail.ids["alice"]
    async with mail.client() as c:
        roles = await _roles(c, alice)
        email_id = (await one(c, "Email/set", {"accountId": alice, "create": {
            "d": _draft(roles["drafts"])}}))["created"]["d"]["id"]
        gone = await one(c, "Email/set", {"accountId": alice, "destroy": [email_id]})
        again = await one(c, "Email/set", {"accountId": alice, "destroy": [email_id]})
        got = await one(c, "Email/get", {"accountId": alice, "ids": [email_id]})
    assert gone["destroyed"] == [email_id]
    assert again["notDestroyed"][email_id]["type"] == "notFound"
    assert got["notFound"] == [email_id]


async def test_set_errors(mail: Mail) -> None:
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    async with mail.client("bob") as c:
        bobs_blob = (await upload(c, bob, b"bob's secret", "text/plain"))["blobId"]
    async with mail.client() as c:
        roles = await _roles(c, alice)
        drafts = roles["drafts"]
        email_id = (await one(c, "Email/set", {"accountId": alice, "create": {
            "d": _draft(drafts)}}))["created"]["d"]["id"]
        got = await one(c, "Email/set", {"accountId": alice, "create": {
            "nobox": {"subject": "x"},
            "badbox": {"mailboxIds": {"nope": True}},
            "blob": _draft(drafts, attachments=[{"blobId": bobs_blob}]),
            "kw": {"mailboxIds": {drafts: True},
                   "keywords": {f"k{i}": True for i in range(101)}},
            "both": _draft(drafts, bodyStructure={"partId": "t"}),
            "server": _draft(drafts, id="x"),
            "addr": _draft(drafts, to=[{"email": "not an address"}]),
            "cte": _draft(drafts, **{"header:Content-Type": "text/plain"}),
        }, "update": {
            email_id: {"subject": "changed"},
            "missing": {"keywords/$seen": True},
        }})
        bad_box = await one(c, "Email/set", {"accountId": alice, "update": {
            email_id: {"mailboxIds/nope": True}}})
        no_box = await one(c, "Email/set", {"accountId": alice, "update": {
            email_id: {f"mailboxIds/{drafts}": None}}})
    errors = {k: v["type"] for k, v in got["notCreated"].items()}
    assert errors == {"nobox": "invalidProperties", "badbox": "invalidProperties",
                      "blob": "blobNotFound", "kw": "tooManyKeywords",
                      "both": "invalidProperties", "server": "invalidProperties",
                      "addr": "invalidProperties", "cte": "invalidProperties"}
    assert got["notCreated"]["nobox"]["properties"] == ["mailboxIds"]
    assert got["notCreated"]["badbox"]["properties"] == ["mailboxIds"]
    assert got["notCreated"]["blob"]["notFound"] == [bobs_blob]
    assert got["notCreated"]["server"]["properties"] == ["id"]
    assert got["notCreated"]["addr"]["properties"] == ["to"]
    assert got["notUpdated"][email_id] == {"type": "invalidProperties",
                                           "description": got["notUpdated"][email_id][
                                               "description"], "properties": ["subject"]}
    assert got["notUpdated"]["missing"]["type"] == "notFound"
    assert bad_box["notUpdated"][email_id]["properties"] == ["mailboxIds"]
    assert no_box["notUpdated"][email_id]["properties"] == ["mailboxIds"]  # none left


def _imap_status(port: int, mailbox: str) -> tuple[bytes, bytes]:
    """STATUS (MESSAGES UNSEEN) and SELECT's HIGHESTMODSEQ of ``mailbox``, as alice."""
    client = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    try:
        client.starttls(ssl_context=tls_client_context())
        client.login("alice", "wonderland")
        _, [status] = client.status(mailbox, "(MESSAGES UNSEEN)")
        client.select(mailbox)
        _, [highest] = client.response("HIGHESTMODSEQ")
    finally:
        client.logout()
    assert isinstance(status, bytes) and isinstance(highest, bytes)
    return status, highest


async def test_a_keyword_and_a_move_made_here_are_seen_by_imap(mail: Mail) -> None:
    alice = mail.ids["alice"]
    port = mail.node.ports["imap"]
    async with mail.client() as c:
        roles = await _roles(c, alice)
        blob = (await upload(c, alice, b"Subject: imap\r\nFrom: x@remote.test\r\n\r\nhi\r\n"))
        email_id = (await one(c, "Email/import", {"accountId": alice, "emails": {
            "m": {"blobId": blob["blobId"], "mailboxIds": {roles["inbox"]: True}}}}
                              ))["created"]["m"]["id"]
        before, modseq_before = await asyncio.to_thread(_imap_status, port, "INBOX")
        await one(c, "Email/set", {"accountId": alice, "update": {
            email_id: {"keywords/$seen": True}}})
        seen, modseq_seen = await asyncio.to_thread(_imap_status, port, "INBOX")
        await one(c, "Email/set", {"accountId": alice, "update": {email_id: {
            f"mailboxIds/{roles['inbox']}": None, f"mailboxIds/{roles['archive']}": True}}})
        after, _ = await asyncio.to_thread(_imap_status, port, "INBOX")
        archive, _ = await asyncio.to_thread(_imap_status, port, "Archive")
    assert b"MESSAGES 1" in before and b"UNSEEN 1" in before
    assert b"MESSAGES 1" in seen and b"UNSEEN 0" in seen
    assert int(modseq_seen) > int(modseq_before)  # RFC 7162 CONDSTORE: the change's modseq
    assert b"MESSAGES 0" in after
    assert b"MESSAGES 1" in archive and b"UNSEEN 0" in archive


async def test_attachments_by_creation_id_and_the_attachment_size_cap(tmp_path: Path) -> None:
    async with mail_node(tmp_path, "max_size_upload = 4096\n") as node:
        alice = node.ids["alice"]
        async with node.client() as c:
            roles = await _roles(c, alice)
            # Blob/upload then Email/set in one request: the attachment is "#logo"
            # (RFC 8620 5.3 creation ids, RFC 9404 4.1)
            [[_, uploaded, _], [_, made, _]] = await calls(
                c, ["Blob/upload", {"accountId": alice, "create": {"logo": {
                    "type": "image/png", "data": [{"data:asBase64": "iVBORw0KGgo="}]}}}, "u"],
                ["Email/set", {"accountId": alice, "create": {"d": _draft(
                    roles["drafts"], attachments=[{"blobId": "#logo", "type": "image/png",
                                                   "name": "logo.png"}])}}, "s"])
            big = [(await upload(c, alice, bytes([i]) * 3000, "application/octet-stream")
                    )["blobId"] for i in range(2)]
            too_large = await one(c, "Email/set", {"accountId": alice, "create": {
                "d": _draft(roles["drafts"], attachments=[{"blobId": b} for b in big])}})
            blob = await one(c, "Blob/get", {"accountId": alice,
                                             "ids": [made["created"]["d"]["blobId"]],
                                             "properties": ["data:asText"]})
    assert uploaded["created"]["logo"]["size"] == 8
    parsed = email.message_from_bytes(blob["list"][0]["data:asText"].encode(),
                                      policy=email.policy.default)
    attachment = list(parsed.iter_attachments())[0]
    assert attachment.get_filename() == "logo.png"
    assert attachment.get_content() == b"\x89PNG\r\n\x1a\n"
    # RFC 8621 4.6: tooLarge past maxSizeAttachmentsPerEmail
    assert too_large["notCreated"]["d"]["type"] == "tooLarge"
