"""RFC 8620 section 5.3 /set rules that hold for every type (Mailbox, Email, Identity,
EmailSubmission, VacationResponse, PushSubscription), with raw httpx requests against a
real node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.jmap.test_mail import Mail
from tests.server.jmap.test_push_subscription import PUSH, receiver
from tests.server.jmap.test_submission import NO_WORKERS, draft, identity, roles
from tests.server.jmap.writes import USING, calls, mail_node, one, upload

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

VACATION = "urn:ietf:params:jmap:vacationresponse"


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path, NO_WORKERS) as m:
        yield m


def _will_destroy(got: dict[str, Any], key: str, object_id: str) -> None:
    """RFC 8620 section 5.3: "willDestroy: The client requested an object be both updated
    and destroyed in the same /set request, and the server has decided to therefore
    ignore the update" - the update is in notUpdated, the destroy is done."""
    assert got["notUpdated"][key]["type"] == "willDestroy", got
    assert got["updated"] is None, got
    assert got["destroyed"] == [object_id], got
    assert got["notDestroyed"] is None, got


async def test_update_and_destroy_of_one_mailbox_is_will_destroy(mail: Mail) -> None:
    alice = mail.ids["alice"]
    async with mail.client() as c:
        made = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "a": {"name": "A"}}})
        box = made["created"]["a"]["id"]
        got = await one(c, "Mailbox/set", {"accountId": alice,
                                           "update": {box: {"name": "Renamed"}},
                                           "destroy": [box]})
        _will_destroy(got, box, box)
        after = await one(c, "Mailbox/get", {"accountId": alice, "ids": [box]})
        assert after["notFound"] == [box]
        # the same for an object created earlier in the call, named by its creation id
        got = await one(c, "Mailbox/set", {"accountId": alice,
                                           "create": {"k": {"name": "K"}},
                                           "update": {"#k": {"name": "K2"}},
                                           "destroy": ["#k"]})
        _will_destroy(got, "#k", got["created"]["k"]["id"])


async def test_update_and_destroy_of_one_email_is_will_destroy(mail: Mail) -> None:
    alice = mail.ids["alice"]
    await mail.send("alice@example.com", "doomed")
    async with mail.client() as c:
        [email] = (await one(c, "Email/query", {"accountId": alice}))["ids"]
        got = await one(c, "Email/set", {"accountId": alice,
                                         "update": {email: {"keywords/$seen": True}},
                                         "destroy": [email]})
        _will_destroy(got, email, email)
        after = await one(c, "Email/get", {"accountId": alice, "ids": [email]})
        assert after["notFound"] == [email]


async def test_update_and_destroy_of_one_identity_is_will_destroy(mail: Mail) -> None:
    alice = mail.ids["alice"]
    async with mail.client() as c:
        made = await one(c, "Identity/set", {"accountId": alice, "create": {
            "i": {"email": "alice@example.com", "name": "Work"}}})
        extra = made["created"]["i"]["id"]
        got = await one(c, "Identity/set", {"accountId": alice,
                                            "update": {extra: {"name": "Home"}},
                                            "destroy": [extra]})
        _will_destroy(got, extra, extra)
        after = await one(c, "Identity/get", {"accountId": alice, "ids": [extra]})
        assert after["notFound"] == [extra]


async def test_update_and_destroy_of_one_submission_is_will_destroy(mail: Mail) -> None:
    """Not cannotUnsend (what the update alone gets, section 7.5 of RFC 8621): the update
    is not tried at all."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        boxes = await roles(c, alice)
        email_id = await draft(c, alice, boxes["drafts"])
        made = await one(c, "EmailSubmission/set", {"accountId": alice, "create": {
            "s": {"identityId": await identity(c, alice), "emailId": email_id}}})
        sent = made["created"]["s"]["id"]
        got = await one(c, "EmailSubmission/set", {
            "accountId": alice, "update": {sent: {"undoStatus": "canceled"}},
            "destroy": [sent]})
        _will_destroy(got, sent, sent)
        after = await one(c, "EmailSubmission/get", {"accountId": alice, "ids": [sent]})
        assert after["notFound"] == [sent]


async def test_update_and_destroy_of_the_vacation_response(mail: Mail) -> None:
    """RFC 8621 section 8.2: the singleton cannot be destroyed (``singleton``), so its
    update is not willDestroy: it is applied, as it would be alone."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        r = await c.post("/jmap/api", json={"using": [*USING, VACATION], "methodCalls": [
            ["VacationResponse/set", {"accountId": alice,
                                      "update": {"singleton": {"isEnabled": True}},
                                      "destroy": ["singleton"]}, "s"],
            ["VacationResponse/get", {"accountId": alice, "ids": ["singleton"],
                                      "properties": ["isEnabled"]}, "g"]]})
        [(_, got, _), (_, after, _)] = r.json()["methodResponses"]
        assert got["updated"] == {"singleton": None} and got["notUpdated"] is None
        assert got["notDestroyed"]["singleton"]["type"] == "singleton"
        assert after["list"] == [{"id": "singleton", "isEnabled": True}]


async def test_an_update_whose_destroy_is_refused_is_applied(mail: Mail) -> None:
    """willDestroy is for an object the call destroys: when the destroy is refused
    (mailboxHasChild here) the update is done, as it would be alone."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        made = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "p": {"name": "P"}, "k": {"name": "K", "parentId": "#p"}}})
        parent = made["created"]["p"]["id"]
        got = await one(c, "Mailbox/set", {"accountId": alice,
                                           "update": {parent: {"name": "P2"}},
                                           "destroy": [parent]})
        assert got["updated"] == {parent: None} and got["notUpdated"] is None
        assert got["notDestroyed"][parent]["type"] == "mailboxHasChild"
        after = await one(c, "Mailbox/get", {"accountId": alice, "ids": [parent],
                                             "properties": ["name"]})
        assert after["list"] == [{"id": parent, "name": "P2"}]


async def test_update_and_destroy_of_one_push_subscription_is_will_destroy(
        tmp_path: Path) -> None:
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, \
            mail.client() as c:
        made = await one(c, "PushSubscription/set", {"create": {"s": {
            "deviceClientId": "phone", "url": rx.url("w")}}})
        sub = made["created"]["s"]["id"]
        got = await one(c, "PushSubscription/set", {"update": {sub: {"types": ["Email"]}},
                                                     "destroy": [sub]})
        _will_destroy(got, sub, sub)
        assert (await one(c, "PushSubscription/get", {}))["list"] == []


async def test_update_and_destroy_of_a_missing_object_is_not_found(mail: Mail) -> None:
    """Nothing to destroy: the update is notFound, as it would be alone (section 5.3)."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        responses = await calls(
            c, ["Mailbox/set", {"accountId": alice, "update": {"nope": {"name": "x"}},
                                "destroy": ["nope"]}, "m"],
            ["Email/set", {"accountId": alice, "update": {"nope": {"keywords": {}}},
                           "destroy": ["nope"]}, "e"])
        for _, got, _ in responses:
            assert got["notUpdated"]["nope"]["type"] == "notFound", got
            assert got["notDestroyed"]["nope"]["type"] == "notFound", got


async def test_an_update_may_repeat_immutable_values(mail: Mail) -> None:
    """RFC 8620 section 5.3: an update's property is invalid when "immutable and
    different to the current server value", so a client may send back what /get gave
    (server-set properties included); a different value is invalidProperties naming
    the property."""
    alice = mail.ids["alice"]
    await mail.send("alice@example.com", "same again")
    async with mail.client() as c:
        [email] = (await one(c, "Email/query", {"accountId": alice}))["ids"]
        box = (await one(c, "Mailbox/get", {"accountId": alice, "ids": ["archive"]}))[
            "list"][0]
        record = (await one(c, "Email/get", {"accountId": alice, "ids": [email],
                                             "properties": [
            "id", "blobId", "threadId", "size", "receivedAt", "subject", "from",
            "keywords"]}))["list"][0]
        same_box = await one(c, "Mailbox/set", {"accountId": alice, "update": {
            "archive": {**box, "name": "Old mail"}}})
        same_email = await one(c, "Email/set", {"accountId": alice, "update": {
            email: {**record, "keywords": {"$seen": True}}}})
        after = await calls(
            c, ["Mailbox/get", {"accountId": alice, "ids": ["archive"],
                                "properties": ["name"]}, "m"],
            ["Email/get", {"accountId": alice, "ids": [email],
                           "properties": ["keywords"]}, "e"],
            ["Mailbox/set", {"accountId": alice, "update": {"archive": {
                "totalEmails": box["totalEmails"] + 1, "myRights/mayDelete": False}}},
             "mx"],
            ["Email/set", {"accountId": alice, "update": {email: {
                "size": record["size"] + 1, "subject": record["subject"],
                "keywords/$flagged": True}}}, "ex"])
        assert same_box["updated"] == {"archive": None}, same_box
        assert same_email["updated"] == {email: None}, same_email
        assert after[0][1]["list"] == [{"id": "archive", "name": "Old mail"}]
        assert after[1][1]["list"] == [{"id": email, "keywords": {"$seen": True}}]
        refused = after[2][1]["notUpdated"]["archive"]
        assert refused["type"] == "invalidProperties"
        assert refused["properties"] == ["myRights", "totalEmails"]
        refused = after[3][1]["notUpdated"][email]
        assert refused["type"] == "invalidProperties" and refused["properties"] == ["size"]


async def test_a_push_subscription_update_may_repeat_immutable_values(
        tmp_path: Path) -> None:
    """As above for PushSubscription (RFC 8620 section 7.2: deviceClientId and url are
    immutable)."""
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, \
            mail.client() as c:
        made = await one(c, "PushSubscription/set", {"create": {"s": {
            "deviceClientId": "phone", "url": rx.url("i")}}})
        sub = made["created"]["s"]["id"]
        got = await one(c, "PushSubscription/set", {"update": {
            sub: {"id": sub, "deviceClientId": "phone", "url": rx.url("i"),
                  "types": ["Email"]}}})
        assert got["updated"] == {sub: None}, got
        got = await one(c, "PushSubscription/set", {"update": {
            sub: {"deviceClientId": "tablet"}}})
        assert got["notUpdated"][sub]["properties"] == ["deviceClientId"]
        [listed] = (await one(c, "PushSubscription/get", {}))["list"]
        assert (listed["deviceClientId"], listed["types"]) == ("phone", ["Email"])


async def test_created_holds_server_set_and_defaulted_properties(mail: Mail) -> None:
    """RFC 8620 section 5.3: ``created`` maps each creation id to "an object containing
    any properties of the created Foo object that were not sent by the client. This
    includes all server-set properties ... and any properties that were omitted by the
    client and thus set to a default by the server" - Identity (RFC 8621 6: name and the
    signatures default to "", replyTo and bcc to null) and EmailSubmission (7: the
    envelope derived from the email when not given, deliveryStatus, dsnBlobIds,
    mdnBlobIds)."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        identity_made = await one(c, "Identity/set", {"accountId": alice, "create": {
            "i": {"email": "alice@example.com", "textSignature": "-- A"}}})
        created = identity_made["created"]["i"]
        assert created == {"id": created["id"], "name": "", "replyTo": None, "bcc": None,
                           "htmlSignature": "", "mayDelete": True}
        boxes = await roles(c, alice)
        email_id = await draft(c, alice, boxes["drafts"])
        sent = await one(c, "EmailSubmission/set", {"accountId": alice, "create": {
            "s": {"identityId": created["id"], "emailId": email_id}}})
        submission = sent["created"]["s"]
        assert set(submission) == {"id", "threadId", "envelope", "sendAt", "undoStatus",
                                   "deliveryStatus", "dsnBlobIds", "mdnBlobIds"}
        assert submission["envelope"] == {
            "mailFrom": {"email": "alice@example.com", "parameters": None},
            "rcptTo": [{"email": "bob@example.com", "parameters": None}]}
        got = await one(c, "EmailSubmission/get", {"accountId": alice,
                                                   "ids": [submission["id"]]})
        assert {k: v for k, v in got["list"][0].items() if k in submission} == submission
        # section 7: "If null or omitted on creation, the server MUST generate this"
        again = await one(c, "EmailSubmission/set", {"accountId": alice, "create": {
            "n": {"identityId": created["id"], "emailId": email_id, "envelope": None}}})
        assert again["created"]["n"]["envelope"] == submission["envelope"]


async def test_created_push_subscription_holds_its_defaults(tmp_path: Path) -> None:
    """The same for PushSubscription (RFC 8620 section 7.2): id, the expires the server
    chose, verificationCode null, types null when not given; url and keys (given)
    are not echoed."""
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, \
            mail.client() as c:
        made = await one(c, "PushSubscription/set", {"create": {"s": {
            "deviceClientId": "phone", "url": rx.url("c")}}})
        created = made["created"]["s"]
        assert set(created) == {"id", "expires", "verificationCode", "types"}
        assert created["verificationCode"] is None and created["types"] is None


async def test_created_email_holds_its_defaulted_keywords_and_received_at(
        mail: Mail) -> None:
    """RFC 8620 section 5.3 with RFC 8621 section 4.1.1 (keywords "default: {}",
    receivedAt "default: time of creation on server"): an Email/set create that leaves
    them out gets them back in created, as Email/get then shows them; given, they are
    not echoed."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        got = await one(c, "Email/set", {"accountId": alice, "create": {
            "bare": {"mailboxIds": {"drafts": True}, "subject": "bare"},
            "full": {"mailboxIds": {"drafts": True}, "subject": "full",
                     "keywords": {"$draft": True},
                     "receivedAt": "2026-01-02T03:04:05Z"}}})
        bare, full = got["created"]["bare"], got["created"]["full"]
        server_set = {"id", "blobId", "threadId", "size", "hasAttachment", "preview",
                      "messageId", "sentAt"}  # the last two: see the test below
        assert set(bare) == server_set | {"keywords", "receivedAt"}
        assert set(full) == server_set
        stored = await one(c, "Email/get", {"accountId": alice, "ids": [bare["id"]],
                                            "properties": ["keywords", "receivedAt"]})
        assert stored["list"] == [{"id": bare["id"], "keywords": {},
                                   "receivedAt": bare["receivedAt"]}]


async def test_created_email_holds_what_the_server_generated(mail: Mail) -> None:
    """RFC 8620 section 5.3 (created holds "all server-set properties" and those "set to
    a default by the server") with RFC 8621 section 4.1: hasAttachment and preview are
    "(immutable; server-set)", and the Message-ID and Date header fields the server
    adds to a create that lacks them (section 4.6) are messageId and sentAt.  Each is
    as Email/get shows it; a messageId, sentAt or header:Message-ID given is not
    echoed."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        got = await one(c, "Email/set", {"accountId": alice, "create": {
            "bare": {"mailboxIds": {"drafts": True}, "keywords": {},
                     "receivedAt": "2026-01-02T03:04:05Z",
                     "bodyValues": {"1": {"value": "Hello there"}},
                     "textBody": [{"partId": "1", "type": "text/plain"}]},
            "given": {"mailboxIds": {"drafts": True}, "keywords": {},
                      "receivedAt": "2026-01-02T03:04:05Z",
                      "messageId": ["given@example.com"],
                      "sentAt": "2026-01-02T04:05:06+01:00"},
            "raw": {"mailboxIds": {"drafts": True}, "keywords": {},
                    "receivedAt": "2026-01-02T03:04:05Z",
                    "header:Message-ID": " <raw@example.com>"}}})
        assert got["notCreated"] is None, got
        bare, given, raw = (got["created"][k] for k in ("bare", "given", "raw"))
        assert set(bare) == {"id", "blobId", "threadId", "size", "hasAttachment",
                             "preview", "messageId", "sentAt"}
        assert bare["preview"] == "Hello there" and bare["hasAttachment"] is False
        assert isinstance(bare["messageId"], list) and len(bare["messageId"]) == 1
        assert isinstance(bare["sentAt"], str)
        assert set(given) == {"id", "blobId", "threadId", "size", "hasAttachment",
                              "preview"}
        assert set(raw) == {"id", "blobId", "threadId", "size", "hasAttachment",
                            "preview", "sentAt"}
        shown = await one(c, "Email/get", {"accountId": alice,
                                           "ids": [bare["id"], raw["id"]],
                                           "properties": [
            "blobId", "threadId", "size", "hasAttachment", "preview", "messageId",
            "sentAt"]})
        assert shown["list"] == [bare, {**raw, "messageId": ["raw@example.com"]}]


async def test_an_email_update_may_repeat_its_header_and_body_properties(
        mail: Mail) -> None:
    """RFC 8620 section 5.3 (invalid when "immutable and different to the current server
    value") for the Email properties read from the message (RFC 8621 section 4.1):
    headers, header:*, bodyStructure, textBody, htmlBody, attachments and bodyValues as
    Email/get gave them - also with other bodyProperties or truncated bodyValues - are
    accepted beside a keywords change; each one changed is invalidProperties naming it,
    and nothing of the update is applied."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        blob = await upload(c, alice, b"PDF-ish bytes", "application/pdf")
        made = await one(c, "Email/set", {"accountId": alice, "create": {"m": {
            "mailboxIds": {"drafts": True}, "subject": "Parts",
            "header:X-Tag:asText": "one",
            "bodyValues": {"t": {"value": "Plain words here"},
                           "h": {"value": "<p>HTML words</p>"}},
            "textBody": [{"partId": "t", "type": "text/plain"}],
            "htmlBody": [{"partId": "h", "type": "text/html"}],
            "attachments": [{"blobId": blob["blobId"], "type": "application/pdf",
                             "name": "a.pdf"}]}}})
        email = made["created"]["m"]["id"]
        wanted = ["headers", "header:X-Tag:asText", "header:Subject:all", "bodyStructure",
                  "textBody", "htmlBody", "attachments", "bodyValues"]
        full = (await one(c, "Email/get", {"accountId": alice, "ids": [email],
                                           "properties": wanted,
                                           "fetchAllBodyValues": True}))["list"][0]
        slim = (await one(c, "Email/get", {"accountId": alice, "ids": [email],
                                           "properties": wanted,
                                           "bodyProperties": ["partId", "type"],
                                           "fetchTextBodyValues": True,
                                           "maxBodyValueBytes": 5}))["list"][0]
        assert slim["bodyValues"][slim["textBody"][0]["partId"]]["isTruncated"] is True
        del full["id"], slim["id"]
        got = await one(c, "Email/set", {"accountId": alice, "update": {
            email: {**full, "keywords/$seen": True}}})
        assert got["updated"] == {email: None}, got
        got = await one(c, "Email/set", {"accountId": alice, "update": {
            email: {**slim, "keywords/$flagged": True}}})
        assert got["updated"] == {email: None}, got
        text_part = full["textBody"][0]["partId"]
        changes: dict[str, Any] = {
            "headers": full["headers"][:-1],
            "header:X-Tag:asText": "two",
            "header:Subject:all": ["Parts", "Again"],
            "bodyStructure": {**full["bodyStructure"], "type": "multipart/alternative"},
            "textBody": [{**full["textBody"][0], "charset": "latin1"}],
            "htmlBody": [],
            "attachments": [{"partId": full["attachments"][0]["partId"], "name": "b.pdf"}],
            "bodyValues": {text_part: {"value": "Other words", "isTruncated": False}}}
        for key, value in changes.items():
            got = await one(c, "Email/set", {"accountId": alice, "update": {
                email: {key: value, "keywords/$answered": True}}})
            refused = got["notUpdated"][email]
            assert refused["type"] == "invalidProperties", (key, got)
            assert refused["properties"] == [key], (key, got)
        # a patch path into one, and a truncated value that is not a beginning
        got = await one(c, "Email/set", {"accountId": alice, "update": {email: {
            "bodyStructure/type": full["bodyStructure"]["type"],
            "bodyValues": {text_part: {"value": "Words", "isTruncated": True}}}}})
        assert got["notUpdated"][email]["properties"] == ["bodyStructure", "bodyValues"]
        after = await one(c, "Email/get", {"accountId": alice, "ids": [email],
                                           "properties": ["keywords"]})
        assert after["list"][0]["keywords"] == {"$seen": True, "$flagged": True}


async def test_a_mailbox_create_may_give_the_server_set_values_it_will_get(
        mail: Mail) -> None:
    """RFC 8620 section 5.3: "The client MUST omit any properties that may only be set
    by the server"; a Mailbox/get record sent back as a create (a copy) carries them.
    With the values a new mailbox gets (no emails, the rights of its role) it is
    created; with others, or with an id, it is invalidProperties naming each."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        made = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "a": {"name": "Original"}}})
        box = made["created"]["a"]["id"]
        record = (await one(c, "Mailbox/get", {"accountId": alice, "ids": [box]}))[
            "list"][0]
        copy = {k: v for k, v in record.items() if k != "id"}
        rights = {k: not v for k, v in record["myRights"].items()}
        got = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "same": {**copy, "name": "Copy"},
            "counts": {**copy, "name": "Counts", "totalEmails": 52, "unreadThreads": 1},
            "rights": {**copy, "name": "Rights", "myRights": rights},
            "id": {**record, "name": "With id"}}})
        assert set(got["created"]) == {"same"}, got
        refused = {k: (v["type"], v["properties"]) for k, v in got["notCreated"].items()}
        assert refused == {
            "counts": ("invalidProperties", ["totalEmails", "unreadThreads"]),
            "rights": ("invalidProperties", ["myRights"]),
            "id": ("invalidProperties", ["id"])}
        names = await one(c, "Mailbox/query", {"accountId": alice,
                                               "filter": {"name": "Copy"}})
        assert names["ids"] == [got["created"]["same"]["id"]]
