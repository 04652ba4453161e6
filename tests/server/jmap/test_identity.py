"""Identity/get, /changes, /set (RFC 8621 section 6) through a real node: identities
from the directory's addresses of the account, extra ones only for addresses it owns
(forbiddenFrom otherwise), exact /changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.server.directory.conftest import run_cli
from tests.server.jmap.test_mail import Mail, _config
from tests.server.jmap.writes import SUBMISSION, calls, mail_node, one

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path) as m:
        assert run_cli(_config(tmp_path), "add-address", "alice",
                       "ally@example.com") == 0  # an alias, read at request time
        yield m


async def test_identities_come_from_the_directory(mail: Mail) -> None:
    alice = mail.ids["alice"]
    async with mail.client() as c:
        session = (await c.get("/.well-known/jmap")).json()
        got = await one(c, "Identity/get", {"accountId": alice, "ids": None})
    assert session["accounts"][alice]["accountCapabilities"][SUBMISSION][
        "maxDelayedSend"] == 0
    by_email = {i["email"]: i for i in got["list"]}
    assert set(by_email) == {"alice@example.com", "ally@example.com"}
    assert by_email["alice@example.com"]["mayDelete"] is False
    assert set(by_email["alice@example.com"]) == {
        "id", "name", "email", "replyTo", "bcc", "textSignature", "htmlSignature",
        "mayDelete"}


async def test_identity_set_and_changes(mail: Mail) -> None:
    alice = mail.ids["alice"]
    async with mail.client() as c:
        before = await one(c, "Identity/get", {"accountId": alice, "ids": None})
        primary = next(i["id"] for i in before["list"] if i["email"] == "alice@example.com")
        made = await one(c, "Identity/set", {"accountId": alice, "ifInState": before["state"],
                                             "create": {
            "work": {"email": "ally@example.com", "name": "Alice at Work",
                     "replyTo": [{"name": None, "email": "team@example.com"}],
                     "textSignature": "-- \nAlice"},
            "spoof": {"email": "bob@example.com", "name": "Not Bob"},
            "server": {"email": "ally@example.com", "mayDelete": False}},
            "update": {primary: {"name": "Alice W.", "htmlSignature": "<b>A</b>"}},
            "destroy": [primary]})
        work = made["created"]["work"]["id"]
        changes = await one(c, "Identity/changes", {"accountId": alice,
                                                    "sinceState": before["state"]})
        after = await one(c, "Identity/get", {"accountId": alice, "ids": [work, primary]})
        stale = await calls(c, ["Identity/set", {"accountId": alice,
                                                 "ifInState": before["state"],
                                                 "destroy": [work]}, "x"])
        email_change = await one(c, "Identity/set", {"accountId": alice, "update": {
            work: {"email": "alice@example.com"}}})
        gone = await one(c, "Identity/set", {"accountId": alice, "destroy": [work]})
        later = await one(c, "Identity/changes", {"accountId": alice,
                                                  "sinceState": changes["newState"]})
        bad = await calls(c, ["Identity/changes", {"accountId": alice,
                                                   "sinceState": "999"}, "y"])
    assert made["notCreated"]["spoof"]["type"] == "forbiddenFrom"  # RFC 8621 6.3
    assert made["notCreated"]["server"]["type"] == "invalidProperties"
    assert made["updated"] == {primary: None}
    assert made["notDestroyed"][primary]["type"] == "forbidden"
    assert made["created"]["work"]["mayDelete"] is True
    assert changes["created"] == [work] and changes["updated"] == [primary]
    w, p = after["list"]
    assert w["name"] == "Alice at Work" and w["replyTo"] == [
        {"name": None, "email": "team@example.com"}] and w["textSignature"] == "-- \nAlice"
    assert p["name"] == "Alice W." and p["htmlSignature"] == "<b>A</b>"
    assert stale[0][1]["type"] == "stateMismatch"
    assert email_change["notUpdated"][work]["properties"] == ["email"]
    assert gone["destroyed"] == [work]
    assert later["destroyed"] == [work] and later["created"] == []
    assert bad[0][1]["type"] == "cannotCalculateChanges"
