"""Quota/get, /changes, /query (RFC 9425) through a real node: the directory's limit and
the mail layer's usage, changing as mail is imported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import QUOTA, calls, mail_node, one, upload

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

MESSAGE = b"Subject: q\r\nFrom: x@remote.test\r\n\r\nbody\r\n"


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path, quotas={"bob": 100_000}) as m:
        yield m


async def test_session_advertises_quota(mail: Mail) -> None:
    async with mail.client("bob") as c:
        session = (await c.get("/.well-known/jmap")).json()
    assert session["capabilities"][QUOTA] == {}
    assert session["primaryAccounts"][QUOTA] == mail.ids["bob"]


async def test_quota_get_changes_query_follow_usage(mail: Mail) -> None:
    bob = mail.ids["bob"]
    async with mail.client("bob") as c:
        before = await one(c, "Quota/get", {"accountId": bob, "ids": None})
        [quota] = before["list"]
        # RFC 9425 section 4: the properties of a Quota
        assert quota == {"id": quota["id"], "resourceType": "octets", "used": 0,
                         "hardLimit": 100_000, "scope": "account", "name": quota["name"],
                         "types": ["Email"], "warnLimit": None, "softLimit": None,
                         "description": None}
        inbox = (await one(c, "Mailbox/query", {"accountId": bob,
                                                "filter": {"role": "inbox"}}))["ids"][0]
        blob = (await upload(c, bob, MESSAGE))["blobId"]
        await one(c, "Email/import", {"accountId": bob, "emails": {
            "m": {"blobId": blob, "mailboxIds": {inbox: True}}}})
        after = await one(c, "Quota/get", {"accountId": bob, "ids": [quota["id"], "nope"],
                                           "properties": ["used"]})
        changes = await one(c, "Quota/changes", {"accountId": bob,
                                                 "sinceState": before["state"]})
        none = await one(c, "Quota/changes", {"accountId": bob,
                                              "sinceState": after["state"]})
        bad = await calls(c, ["Quota/changes", {"accountId": bob, "sinceState": "zz"}, "x"])
        query = await one(c, "Quota/query", {"accountId": bob, "calculateTotal": True,
                                             "filter": {"resourceType": "octets",
                                                        "type": "Email"},
                                             "sort": [{"property": "used"}]})
        empty = await one(c, "Quota/query", {"accountId": bob,
                                             "filter": {"resourceType": "count"}})
    assert after["list"] == [{"id": quota["id"], "used": len(MESSAGE)}]
    assert after["notFound"] == ["nope"] and after["state"] != before["state"]
    assert changes["updated"] == [quota["id"]] and changes["newState"] == after["state"]
    assert none["updated"] == none["created"] == none["destroyed"] == []
    # RFC 9425 section 4.2: only "used" changed, and the server can tell
    assert changes["updatedProperties"] == ["used"] and none["updatedProperties"] is None
    assert bad[0][1]["type"] == "cannotCalculateChanges"
    assert query["ids"] == [quota["id"]] and query["total"] == 1
    assert empty["ids"] == []


async def test_an_unlimited_account_has_no_quota(mail: Mail) -> None:
    alice = mail.ids["alice"]
    async with mail.client() as c:
        got = await one(c, "Quota/get", {"accountId": alice, "ids": None})
    assert got["list"] == [] and got["notFound"] == []
