"""Email/copy (RFC 8621 section 4.7) through a real node: without shared accounts every
call is refused as RFC 8620 section 5.4 says; the copy itself is run with a call context
that gives the caller a second account (as sharing will), over the node's real store
and delivery pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.jmap.email_copy import EmailCopy
from server.jmap.mail import MAIL, MailStore
from server.jmap.methods import CORE, Account, CallContext
from server.jmap.settings import JmapSettings
from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import calls, mail_node, one, upload

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

MESSAGE = b"Subject: copy me\r\nFrom: x@remote.test\r\n\r\nbody\r\n"


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path) as m:
        yield m


async def _imported(mail: Mail, user: str) -> tuple[str, dict[str, str]]:
    account = mail.ids[user]
    async with mail.client(user) as c:
        boxes = await one(c, "Mailbox/get", {"accountId": account, "ids": None})
        roles = {b["role"]: b["id"] for b in boxes["list"] if b["role"]}
        blob = (await upload(c, account, MESSAGE))["blobId"]
        got = await one(c, "Email/import", {"accountId": account, "emails": {
            "m": {"blobId": blob, "mailboxIds": {roles["inbox"]: True},
                  "keywords": {"$seen": True}}}})
    return got["created"]["m"]["id"], roles


async def test_copy_needs_two_accounts_the_caller_may_use(mail: Mail) -> None:
    email_id, roles = await _imported(mail, "alice")
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    create = {"c": {"id": email_id, "mailboxIds": {roles["archive"]: True}}}
    async with mail.client() as c:
        same = await calls(c, ["Email/copy", {"fromAccountId": alice, "accountId": alice,
                                              "create": create}, "a"])
        foreign = await calls(c, ["Email/copy", {"fromAccountId": bob, "accountId": alice,
                                                 "create": create}, "b"])
        into = await calls(c, ["Email/copy", {"fromAccountId": alice, "accountId": bob,
                                              "create": create}, "c"])
    assert same[0][1]["type"] == "invalidArguments"
    assert foreign[0][1]["type"] == "fromAccountNotFound"
    assert into[0][1]["type"] == "accountNotFound"


async def test_copy_between_two_accounts_and_destroy_the_original(mail: Mail) -> None:
    email_id, _ = await _imported(mail, "alice")
    _, bob_roles = await _imported(mail, "bob")
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    assert mail.node.engine is not None and mail.node.delivery is not None
    assert mail.node.directory is not None
    principal = await mail.node.directory.get_principal("alice")
    assert principal is not None
    caps: dict[str, Any] = {MAIL: {}, CORE: {}}
    limits = JmapSettings.from_settings(mail.node.config.jmap).limits
    ctx = CallContext(principal, {alice: Account(alice, "alice", capabilities=caps),
                                  bob: Account(bob, "bob", capabilities=caps)},
                      frozenset({CORE, MAIL}), limits, "s", "c0", "Email/copy", MAIL, {})
    method = EmailCopy(MailStore(mail.node.engine), mail.node.delivery)
    replies = await method.call(ctx, {
        "fromAccountId": alice, "accountId": bob, "onSuccessDestroyOriginal": True,
        "create": {"c": {"id": email_id, "mailboxIds": {bob_roles["archive"]: True}},
                   "gone": {"id": "nope", "mailboxIds": {bob_roles["archive"]: True}}}})
    assert isinstance(replies, tuple)
    answers: Any = replies
    (copy_name, copied), (set_name, implicit) = answers
    assert (copy_name, set_name) == ("Email/copy", "Email/set")  # RFC 8621 4.7
    new = copied["created"]["c"]
    assert copied["notCreated"]["gone"]["type"] == "notFound"
    assert implicit["destroyed"] == [email_id] and implicit["accountId"] == alice
    async with mail.client("bob") as c:
        [got] = (await one(c, "Email/get", {"accountId": bob, "ids": [new["id"]]}))["list"]
    assert got["subject"] == "copy me" and got["keywords"] == {"$seen": True}
    assert got["mailboxIds"] == {bob_roles["archive"]: True}
    async with mail.client() as c:
        gone = await one(c, "Email/get", {"accountId": alice, "ids": [email_id]})
    assert gone["notFound"] == [email_id]
