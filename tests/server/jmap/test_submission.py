"""EmailSubmission (RFC 8621 section 7) through a real node: a local recipient gets the
message at once (read back over IMAP), a remote one through the outbound queue and a
delivery worker to an aiosmtpd sink; onSuccessUpdateEmail moves the draft to Sent; the
SetErrors of section 7.5 send nothing."""

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

from fdb_layers.engine.run import transact
from fdb_layers.queue import list_messages as list_queue
from server.outbound.routing import Router
from server.outbound.settings import OutboundSettings
from server.outbound.worker import DeliveryWorker
from server.config import load_config
from tests.server.imap.conftest import tls_client_context
from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import calls, mail_node, one
from tests.server.outbound.sinks import Sink
from tests.support.dns import Dns, a_records, dns_server as make_dns_server
from tests.support.mailbox import inbox_messages

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

NO_WORKERS = "\n[outbound]\nworkers = false\n"


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path, NO_WORKERS) as m:
        yield m


async def roles(c: httpx.AsyncClient, account: str) -> dict[str, str]:
    got = await one(c, "Mailbox/get", {"accountId": account, "ids": None})
    return {m["role"]: m["id"] for m in got["list"] if m["role"]}


async def identity(c: httpx.AsyncClient, account: str) -> str:
    got = await one(c, "Identity/get", {"accountId": account, "ids": None})
    return str(next(i["id"] for i in got["list"] if i["email"] == "alice@example.com"))


async def draft(c: httpx.AsyncClient, account: str, drafts: str, **fields: Any) -> str:
    values = {"mailboxIds": {drafts: True}, "keywords": {"$draft": True, "$seen": True},
              "from": [{"name": "Alice", "email": "alice@example.com"}],
              "to": [{"name": "Bob", "email": "bob@example.com"}],
              "subject": "Lunch?",
              "textBody": [{"partId": "t", "type": "text/plain"}],
              "bodyValues": {"t": {"value": "Noon at the usual place.\n"}}, **fields}
    got = await one(c, "Email/set", {"accountId": account, "create": {"d": values}})
    assert "d" in (got["created"] or {}), got
    return str(got["created"]["d"]["id"])


def imap_inbox(port: int, user: str, password: str) -> list[bytes]:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    try:
        client.starttls(ssl_context=tls_client_context())
        client.login(user, password)
        client.select("INBOX")
        _, data = client.fetch("1:*", "(BODY.PEEK[])")
    finally:
        client.logout()
    return [part[1] for part in data if isinstance(part, tuple)]


async def test_local_recipient_gets_it_and_the_draft_moves_to_sent(mail: Mail) -> None:
    """Section 7.5: sent at once (undoStatus final), the implicit Email/set of
    onSuccessUpdateEmail answered after the EmailSubmission/set; Bcc removed
    (RFC 5322 3.6.3)."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        boxes = await roles(c, alice)
        email_id = await draft(c, alice, boxes["drafts"],
                               bcc=[{"name": None, "email": "bob+hidden@example.com"}])
        before = await one(c, "EmailSubmission/get", {"accountId": alice, "ids": None})
        responses = await calls(c, ["EmailSubmission/set", {
            "accountId": alice,
            "create": {"s": {"identityId": await identity(c, alice), "emailId": email_id}},
            "onSuccessUpdateEmail": {"#s": {f"mailboxIds/{boxes['drafts']}": None,
                                            f"mailboxIds/{boxes['sent']}": True,
                                            "keywords/$draft": None}}}, "0"])
        [(name, made, _), (implicit, email_set, tag)] = responses
        submission_id = made["created"]["s"]["id"]
        got = await one(c, "EmailSubmission/get", {"accountId": alice,
                                                   "ids": [submission_id, "nope"]})
        moved = await one(c, "Email/get", {"accountId": alice, "ids": [email_id],
                                           "properties": ["mailboxIds", "keywords"]})
        changes = await one(c, "EmailSubmission/changes", {"accountId": alice,
                                                           "sinceState": before["state"]})
        query = await one(c, "EmailSubmission/query", {
            "accountId": alice, "filter": {"emailIds": [email_id]},
            "sort": [{"property": "sentAt", "isAscending": False}], "calculateTotal": True})
        none = await one(c, "EmailSubmission/query", {
            "accountId": alice, "filter": {"undoStatus": "pending"}})
    assert (name, implicit, tag) == ("EmailSubmission/set", "Email/set", "0")
    assert made["created"]["s"]["undoStatus"] == "final"
    assert email_set["updated"] == {email_id: None}
    assert moved["list"][0]["mailboxIds"] == {boxes["sent"]: True}
    assert moved["list"][0]["keywords"] == {"$seen": True}
    [record] = got["list"]
    assert got["notFound"] == ["nope"]
    assert record["emailId"] == email_id and record["undoStatus"] == "final"
    assert record["envelope"] == {
        "mailFrom": {"email": "alice@example.com", "parameters": None},
        "rcptTo": [{"email": "bob@example.com", "parameters": None},
                   {"email": "bob+hidden@example.com", "parameters": None}]}
    assert record["deliveryStatus"]["bob@example.com"]["delivered"] == "yes"
    assert changes["created"] == [submission_id] and changes["newState"] == got["state"]
    assert query["ids"] == [submission_id] and query["total"] == 1 and none["ids"] == []
    [raw] = await asyncio.to_thread(imap_inbox, mail.node.ports["imap"], "bob", "builder")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "Lunch?" and message["From"] == "Alice <alice@example.com>"
    assert message["Return-Path"] == "<alice@example.com>"
    assert message["Bcc"] is None and b"hidden" not in raw
    assert "Noon at the usual place." in message.get_body().get_content()


async def test_envelope_override_and_destroy_with_the_email(mail: Mail) -> None:
    """Section 7: the envelope given is used as it is; onSuccessDestroyEmail; a
    submission sent cannot be canceled (cannotUnsend), but can be destroyed."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        boxes = await roles(c, alice)
        email_id = await draft(c, alice, boxes["drafts"])
        responses = await calls(c, ["EmailSubmission/set", {"accountId": alice, "create": {
            "s": {"identityId": await identity(c, alice), "emailId": email_id,
                  "envelope": {"mailFrom": {"email": "alice+news@example.com",
                                            "parameters": None},
                               "rcptTo": [{"email": "alice@example.com",
                                           "parameters": None}]}}},
            "onSuccessDestroyEmail": ["#s"]}, "0"])
        [(_, made, _), (_, destroyed_email, _)] = responses
        submission_id = made["created"]["s"]["id"]
        cancel = await one(c, "EmailSubmission/set", {"accountId": alice, "update": {
            submission_id: {"undoStatus": "canceled"}}})
        gone = await one(c, "EmailSubmission/set", {"accountId": alice,
                                                    "destroy": [submission_id]})
        after = await one(c, "EmailSubmission/get", {"accountId": alice, "ids": None})
    assert destroyed_email["destroyed"] == [email_id]
    assert cancel["notUpdated"][submission_id]["type"] == "cannotUnsend"
    assert gone["destroyed"] == [submission_id] and after["list"] == []
    [raw] = await inbox_messages(mail.node.engine, mail.node.blobs, alice)
    assert raw.startswith(b"Return-Path: <alice+news@example.com>")
    assert await inbox_messages(mail.node.engine, mail.node.blobs, mail.ids["bob"]) == []


async def test_refusals_send_nothing(mail: Mail) -> None:
    """Section 7.5: forbiddenFrom, forbiddenMailFrom, noRecipients, invalidRecipients,
    tooManyRecipients, tooLarge, invalidProperties (unknown identity or email)."""
    alice = mail.ids["alice"]

    def envelope(mail_from: str, *rcpt: str, **params: str) -> dict[str, Any]:
        return {"mailFrom": {"email": mail_from, "parameters": params or None},
                "rcptTo": [{"email": r, "parameters": None} for r in rcpt]}
    async with mail.client() as c:
        boxes = await roles(c, alice)
        ident = await identity(c, alice)
        mine = await draft(c, alice, boxes["drafts"])
        spoofed = await draft(c, alice, boxes["drafts"],
                              **{"from": [{"name": None, "email": "bob@example.com"}]})
        cases = {
            "from": {"emailId": spoofed},
            "mailfrom": {"emailId": mine, "envelope": envelope("bob@example.com",
                                                              "bob@example.com")},
            "none": {"emailId": mine, "envelope": envelope("alice@example.com")},
            "nouser": {"emailId": mine, "envelope": envelope(
                "alice@example.com", "bob@example.com", "nobody@example.com")},
            "syntax": {"emailId": mine, "envelope": envelope(
                "alice@example.com", "not an address")},
            "long": {"emailId": mine, "envelope": envelope(
                "alice@example.com", "x" * 300 + "@remote.test")},
            "many": {"emailId": mine, "envelope": envelope(
                "alice@example.com", *[f"r{i}@remote.test" for i in range(101)])},
            "size": {"emailId": mine, "envelope": envelope(
                "alice@example.com", "bob@example.com", SIZE="999999999999")},
            "param": {"emailId": mine, "envelope": envelope(
                "alice@example.com", "bob@example.com", XYZ="1")},
            "ident": {"emailId": mine, "identityId": "nope"},
            "email": {"emailId": "Mnope"},
            "server": {"emailId": mine, "undoStatus": "final"},
        }
        got = await one(c, "EmailSubmission/set", {"accountId": alice, "create": {
            k: {"identityId": ident, **v} for k, v in cases.items()}})
        listed = await one(c, "EmailSubmission/get", {"accountId": alice, "ids": None})
    errors = got["notCreated"]
    assert got["created"] is None and listed["list"] == []
    assert errors["from"]["type"] == "forbiddenFrom"
    assert errors["mailfrom"]["type"] == "forbiddenMailFrom"
    assert errors["none"]["type"] == "noRecipients"
    assert errors["nouser"]["type"] == "invalidRecipients"
    assert errors["nouser"]["invalidRecipients"] == ["nobody@example.com"]
    assert errors["syntax"]["invalidRecipients"] == ["not an address"]
    assert errors["long"]["type"] == "invalidRecipients"  # RFC 5321 4.5.3.1.3
    assert errors["many"]["type"] == "tooManyRecipients" and errors["many"][
        "maxRecipients"] == 100
    assert errors["size"]["type"] == "tooLarge"
    assert errors["param"]["properties"] == ["envelope"]
    assert errors["ident"]["properties"] == ["identityId"]
    assert errors["email"]["properties"] == ["emailId"]
    assert errors["server"]["properties"] == ["undoStatus"]
    assert await inbox_messages(mail.node.engine, mail.node.blobs, mail.ids["bob"]) == []
    assert await transact(mail.node.engine, list_queue) == []


async def test_session_advertises_what_submission_supports(mail: Mail) -> None:
    """Section 1.3.2: maxDelayedSend 0 (no delayed send), submissionExtensions."""
    async with mail.client() as c:
        session = (await c.get("/.well-known/jmap")).json()
    account = session["accounts"][mail.ids["alice"]]["accountCapabilities"]
    submission = account["urn:ietf:params:jmap:submission"]
    assert submission["maxDelayedSend"] == 0
    assert set(submission["submissionExtensions"]) == {"SIZE", "8BITMIME", "SMTPUTF8"}
    assert "urn:ietf:params:jmap:vacationresponse" in session["capabilities"]


@pytest.fixture
async def dns(tmp_path: Path) -> AsyncIterator[Dns]:
    (tmp_path / "dns").mkdir()
    server = make_dns_server({}, tmp_path / "dns")
    await server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[Sink]:
    s = Sink(tmp_path)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


async def test_remote_recipient_goes_through_the_queue(mail: Mail, dns: Dns,
                                                       sink: Sink) -> None:
    """Section 7: a remote recipient is queued (deliveryStatus ``queued``) and a
    delivery worker hands it to the remote host; Bcc is not sent."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        boxes = await roles(c, alice)
        email_id = await draft(c, alice, boxes["drafts"],
                               to=[{"name": None, "email": "carol@remote.test"}],
                               bcc=[{"name": None, "email": "dave@remote.test"}])
        made = await one(c, "EmailSubmission/set", {"accountId": alice, "create": {
            "s": {"identityId": await identity(c, alice), "emailId": email_id}}})
        submission_id = made["created"]["s"]["id"]
        queued = await one(c, "EmailSubmission/get", {"accountId": alice,
                                                      "ids": [submission_id]})
    status = queued["list"][0]["deliveryStatus"]
    assert {a: s["delivered"] for a, s in status.items()} == {
        "carol@remote.test": "queued", "dave@remote.test": "queued"}
    dns.set({("remote.test", "MX"): ["10 mx1.remote.test."], **a_records(["mx1.remote.test"])})
    config = load_config(None, env={}).with_overrides({"outbound": {
        "resolver": f"127.0.0.1:{dns.port}", "retry_intervals": ["60"]}})
    settings = config.get(OutboundSettings)
    node = mail.node
    assert node.engine and node.blobs and node.directory and node.delivery
    worker = DeliveryWorker(node.engine, node.blobs, node.directory, node.delivery, settings,
                            "mx.test", router=Router(settings,
                                                     mx_ports={"mx1.remote.test": sink.port}))
    assert await worker.run_once() == 1
    [got] = sink.received
    assert got.sender == "alice@example.com"
    assert sorted(got.recipients) == ["carol@remote.test", "dave@remote.test"]
    message = email.message_from_bytes(got.content, policy=email.policy.default)
    assert message["Subject"] == "Lunch?" and message["Bcc"] is None
    assert b"dave" not in got.content


async def _alice_to_herself(c: httpx.AsyncClient, account: str) -> tuple[str, dict[str, Any]]:
    """A draft of alice's to her own address, submitted: (its email id, the created
    EmailSubmission as /set's `created` gives it)."""
    boxes = await roles(c, account)
    email_id = await draft(c, account, boxes["drafts"],
                           to=[{"name": None, "email": "alice@example.com"}])
    made = await one(c, "EmailSubmission/set", {"accountId": account, "create": {
        "s": {"identityId": await identity(c, account), "emailId": email_id}}})
    created: dict[str, Any] = made["created"]["s"]
    return email_id, created


async def test_update_is_only_of_undo_status_to_canceled(mail: Mail) -> None:
    """Section 7: undoStatus "may only be set to canceled" (another value is
    invalidProperties, canceling a final one cannotUnsend); every other property is
    immutable (invalidProperties naming it); an empty patch or the same value changes
    nothing and succeeds (RFC 8620 section 5.3)."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        email_id, made = await _alice_to_herself(c, alice)
        sid = made["id"]
        got = await one(c, "EmailSubmission/set", {"accountId": alice, "update": {
            sid: {"undoStatus": "pending"}}})
        got2 = await one(c, "EmailSubmission/set", {"accountId": alice, "update": {
            sid: {"emailId": email_id}}})
        got3 = await one(c, "EmailSubmission/set", {"accountId": alice, "update": {
            sid: {"undoStatus": "canceled"}}})
        same = await one(c, "EmailSubmission/set", {"accountId": alice, "update": {
            sid: {"undoStatus": "final"}}})
        empty = await one(c, "EmailSubmission/set", {"accountId": alice, "update": {
            sid: {}}})
        after = await one(c, "EmailSubmission/get", {"accountId": alice, "ids": [sid]})
    assert got["notUpdated"][sid]["type"] == "invalidProperties"
    assert got["notUpdated"][sid]["properties"] == ["undoStatus"]
    assert got2["notUpdated"][sid]["properties"] == ["emailId"]
    assert got3["notUpdated"][sid]["type"] == "cannotUnsend"
    assert same["updated"] == {sid: None} and empty["updated"] == {sid: None}
    assert after["list"][0]["undoStatus"] == "final"


async def test_a_size_parameter_that_is_no_number_is_invalid(mail: Mail) -> None:
    """Section 7.5: tooLarge is for an email larger than the server sends, with maxSize;
    a SIZE parameter that is not a number (RFC 1870 section 3, size-value) is an invalid
    envelope, not a size."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        boxes = await roles(c, alice)
        email_id = await draft(c, alice, boxes["drafts"])
        got = await one(c, "EmailSubmission/set", {"accountId": alice, "create": {
            k: {"identityId": await identity(c, alice), "emailId": email_id,
                "envelope": {"mailFrom": {"email": "alice@example.com",
                                          "parameters": {"size": size}},
                             "rcptTo": [{"email": "bob@example.com", "parameters": None}]}}
            for k, size in (("word", "big"), ("huge", "999999999999"))}})
    assert got["notCreated"]["word"]["type"] == "invalidProperties"
    assert got["notCreated"]["word"]["properties"] == ["envelope"]
    assert got["notCreated"]["huge"]["type"] == "tooLarge"
    assert isinstance(got["notCreated"]["huge"]["maxSize"], int)
    assert await inbox_messages(mail.node.engine, mail.node.blobs, mail.ids["bob"]) == []


async def test_query_before_and_after_are_utc_dates(mail: Mail) -> None:
    """Section 7.3: before is sendAt strictly before, after is sendAt the same or after,
    both UTCDate (RFC 8620 section 1.4: time-offset "Z"); another form is
    invalidArguments (RFC 8620 section 3.6.2)."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        _, made = await _alice_to_herself(c, alice)
        sid, sent_at = made["id"], made["sendAt"]

        async def query(condition: dict[str, Any]) -> list[Any]:
            return await calls(c, ["EmailSubmission/query", {"accountId": alice,
                                                             "filter": condition}, "0"])
        at_after = await query({"after": sent_at})
        at_before = await query({"before": sent_at})
        later = await query({"before": "2999-01-01T00:00:00Z"})
        offset = await query({"before": "2999-01-01T00:00:00+00:00"})
    assert at_after[0][1]["ids"] == [sid] and at_before[0][1]["ids"] == []
    assert later[0][1]["ids"] == [sid]
    assert offset[0][0] == "error" and offset[0][1]["type"] == "invalidArguments"
