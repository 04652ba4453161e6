"""Email/import (RFC 8621 section 4.8) and Blob/get, Blob/lookup, Blob/copy, Blob/upload
(RFC 9404, RFC 8620 section 6.3) through a real node: upload, import, read back."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import calls, mail_node, one, upload

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

MESSAGE = (b"From: Carol <carol@remote.test>\r\nTo: alice@example.com\r\n"
           b"Subject: imported\r\nDate: Sat, 05 Dec 2026 09:00:00 +0000\r\n"
           b"Message-ID: <imp1@remote.test>\r\n\r\nImported body.\r\n")


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path, quotas={"bob": 600}) as m:
        yield m


async def _role(c: object, account: str, role: str) -> str:
    got = await one(c, "Mailbox/query", {"accountId": account,  # type: ignore[arg-type]
                                         "filter": {"role": role}})
    mailbox_id: str = got["ids"][0]
    return mailbox_id


async def test_upload_then_import_then_get(mail: Mail) -> None:
    account = mail.ids["alice"]
    async with mail.client() as c:
        blob = await upload(c, account, MESSAGE)
        inbox = await _role(c, account, "inbox")
        got = await one(c, "Email/import", {"accountId": account, "emails": {
            "k1": {"blobId": blob["blobId"], "mailboxIds": {inbox: True},
                   "keywords": {"$seen": True, "Custom": True},
                   "receivedAt": "2026-12-01T08:00:00Z"}}})
        created = got["created"]["k1"]
        assert created["blobId"] == blob["blobId"] and created["size"] == len(MESSAGE)
        assert got["notCreated"] is None and got["oldState"] != got["newState"]
        [[_, email_list, _], [_, thread_list, _]] = await calls(
            c, ["Email/get", {"accountId": account, "ids": [created["id"]]}, "g"],
            ["Thread/get", {"accountId": account, "ids": [created["threadId"]]}, "t"])
        # the same message imported twice is two emails (RFC 8621 4.8 allows either)
        again = await one(c, "Email/import", {"accountId": account, "emails": {
            "k2": {"blobId": blob["blobId"], "mailboxIds": {inbox: True}}}})
    [email] = email_list["list"]
    assert email["id"] == created["id"] and email["subject"] == "imported"
    assert email["keywords"] == {"$seen": True, "custom": True}
    assert email["mailboxIds"] == {inbox: True}
    assert email["receivedAt"] == "2026-12-01T08:00:00Z"
    assert thread_list["list"][0]["emailIds"] == [created["id"]]
    assert again["created"]["k2"]["id"] != created["id"]


async def test_import_refusals(mail: Mail) -> None:
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    async with mail.client("bob") as c:
        bobs_blob = (await upload(c, bob, MESSAGE))["blobId"]
    async with mail.client() as c:
        inbox = await _role(c, alice, "inbox")
        mine = (await upload(c, alice, MESSAGE + b"\r\n"))["blobId"]
        got = await one(c, "Email/import", {"accountId": alice, "emails": {
            "other": {"blobId": bobs_blob, "mailboxIds": {inbox: True}},  # bob's upload
            "none": {"blobId": "f" * 64, "mailboxIds": {inbox: True}},
            "nobox": {"blobId": mine, "mailboxIds": {"nope": True}},
            "empty": {"blobId": mine, "mailboxIds": {}},
            "kw": {"blobId": mine, "mailboxIds": {inbox: True}, "keywords": {"a(b": True}},
            "date": {"blobId": mine, "mailboxIds": {inbox: True}, "receivedAt": "soon"},
            "extra": {"blobId": mine, "mailboxIds": {inbox: True}, "id": "x"}}})
        stale = await calls(c, ["Email/import", {"accountId": alice, "ifInState": "old",
                                                 "emails": {}}, "s"])
    errors = {k: v["type"] for k, v in got["notCreated"].items()}
    assert errors == {"other": "blobNotFound", "none": "blobNotFound",
                      "nobox": "invalidProperties", "empty": "invalidProperties",
                      "kw": "invalidProperties", "date": "invalidProperties",
                      "extra": "invalidProperties"}
    assert got["notCreated"]["nobox"]["properties"] == ["mailboxIds"]
    assert got["notCreated"]["extra"]["properties"] == ["id"]
    assert got["created"] is None
    assert stale[0][1]["type"] == "stateMismatch"  # RFC 8620 5.3 ifInState


async def test_import_names_every_invalid_property(mail: Mail) -> None:
    """RFC 8620 section 5.3: invalidProperties' ``properties`` lists "all the properties
    that were invalid" - an EmailImport missing both required properties (RFC 8621
    section 4.8: blobId and mailboxIds) names both, one with every value of the wrong
    type names each; ``emails`` not an object, or missing, is invalidArguments."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        got = await one(c, "Email/import", {"accountId": alice, "emails": {
            "bare": {},
            "typed": {"blobId": ["foo"], "mailboxIds": ["foo"], "keywords": "foo",
                      "receivedAt": ["foo"]}}})
        refused = {k: (v["type"], v["properties"]) for k, v in got["notCreated"].items()}
        assert refused == {
            "bare": ("invalidProperties", ["blobId", "mailboxIds"]),
            "typed": ("invalidProperties", ["blobId", "mailboxIds", "keywords",
                                            "receivedAt"])}
        for bad in ({}, {"emails": None}, {"emails": "none"}, {"emails": ["foo"]}):
            [[name, args, _]] = await calls(c, ["Email/import", {"accountId": alice, **bad},
                                                "i"])
            assert (name, args["type"]) == ("error", "invalidArguments"), bad


async def test_import_over_quota(mail: Mail) -> None:
    bob = mail.ids["bob"]
    big = MESSAGE + b"x" * 700 + b"\r\n"
    async with mail.client("bob") as c:
        blob = (await upload(c, bob, big))["blobId"]
        inbox = await _role(c, bob, "inbox")
        got = await one(c, "Email/import", {"accountId": bob, "emails": {
            "q": {"blobId": blob, "mailboxIds": {inbox: True}}}})
    assert got["notCreated"]["q"]["type"] == "overQuota"


async def test_blob_get_lookup_copy_upload(mail: Mail) -> None:
    alice = mail.ids["alice"]
    async with mail.client() as c:
        blob = (await upload(c, alice, MESSAGE))["blobId"]
        binary = (await upload(c, alice, b"\xff\xfe binary", "application/octet-stream"))
        inbox = await _role(c, alice, "inbox")
        imported = await one(c, "Email/import", {"accountId": alice, "emails": {
            "k": {"blobId": blob, "mailboxIds": {inbox: True}}}})
        email = imported["created"]["k"]
        # RFC 9404 4.2: data as text or base64, size, digests, a range
        got = await one(c, "Blob/get", {"accountId": alice,
                                        "ids": [blob, binary["blobId"], "nope"]})
        ranged = await one(c, "Blob/get", {
            "accountId": alice, "ids": [blob], "offset": 6, "length": 5,
            "properties": ["data:asText", "digest:sha", "digest:sha-256", "size"]})
        past = await one(c, "Blob/get", {"accountId": alice, "ids": [blob],
                                         "offset": len(MESSAGE) - 2, "length": 10,
                                         "properties": ["data:asBase64"]})
        # RFC 9404 4.3
        lookup = await one(c, "Blob/lookup", {"accountId": alice,
                                              "typeNames": ["Email", "Thread", "Mailbox"],
                                              "ids": [blob, binary["blobId"], "f" * 64]})
        bad_type = await calls(c, ["Blob/lookup", {"accountId": alice, "typeNames": ["Cat"],
                                                   "ids": [blob]}, "x"])
        # RFC 8620 6.3
        copy = await one(c, "Blob/copy", {"fromAccountId": alice, "accountId": alice,
                                          "blobIds": [blob, "f" * 64]})
        # RFC 9404 4.1: Blob/upload from text, base64 and a range of a blob, then used
        made = await calls(
            c, ["Blob/upload", {"accountId": alice, "create": {"b1": {
                "type": "text/plain", "data": [
                    {"data:asText": "Subject: "}, {"data:asBase64":
                                                   base64.b64encode(b"made\r\n").decode()},
                    {"blobId": blob, "offset": len(MESSAGE) - 16, "length": 16}]}}}, "u"],
            ["Blob/get", {"accountId": alice, "ids": ["#b1"]}, "g"])
    assert got["notFound"] == ["nope"]
    text, data = got["list"]
    assert text == {"id": blob, "data:asText": MESSAGE.decode(), "size": len(MESSAGE),
                    "isEncodingProblem": False, "isTruncated": False}
    assert data["data:asBase64"] == base64.b64encode(b"\xff\xfe binary").decode()
    assert data["isEncodingProblem"] is True
    [r] = ranged["list"]
    assert r["data:asText"] == MESSAGE[6:11].decode() and r["size"] == len(MESSAGE)
    assert r["digest:sha-256"] == base64.b64encode(
        hashlib.sha256(MESSAGE[6:11]).digest()).decode()
    assert r["digest:sha"] == base64.b64encode(hashlib.sha1(MESSAGE[6:11]).digest()).decode()
    assert past["list"][0]["isTruncated"] is True
    assert past["list"][0]["data:asBase64"] == base64.b64encode(MESSAGE[-2:]).decode()
    first, second = lookup["list"]
    assert first["matchedIds"] == {"Email": [email["id"]], "Thread": [email["threadId"]],
                                   "Mailbox": [inbox]}
    assert second["matchedIds"] == {"Email": [], "Thread": [], "Mailbox": []}
    assert lookup["notFound"] == ["f" * 64]
    assert bad_type[0][1]["type"] == "unknownDataType"
    assert copy["copied"] == {blob: blob}
    assert copy["notCopied"]["f" * 64]["type"] == "notFound"
    created = made[0][1]["created"]["b1"]
    expected = b"Subject: made\r\n" + MESSAGE[-16:]
    assert created["size"] == len(expected) and created["type"] == "text/plain"
    assert made[1][1]["list"][0]["data:asText"] == expected.decode()


async def test_another_accounts_blobs_are_not_found(mail: Mail) -> None:
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    async with mail.client() as c:
        blob = (await upload(c, alice, MESSAGE))["blobId"]
    async with mail.client("bob") as c:
        got = await one(c, "Blob/get", {"accountId": bob, "ids": [blob]})
        lookup = await one(c, "Blob/lookup", {"accountId": bob, "typeNames": ["Email"],
                                              "ids": [blob]})
        foreign = await calls(c, ["Blob/get", {"accountId": alice, "ids": [blob]}, "x"])
    assert got["notFound"] == [blob] and got["list"] == []
    assert lookup["notFound"] == [blob]
    assert foreign[0][1]["type"] == "accountNotFound"
