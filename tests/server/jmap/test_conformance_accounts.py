"""RFC 8620 section 3.6.2: an accountId the session does not hold - another user's real
account as much as an unknown id - is ``accountNotFound`` for every mail method
(before any other argument is looked at), and Email/copy's fromAccountId is
``fromAccountNotFound`` (section 5.4); raw httpx against a real node."""

from __future__ import annotations

from tests.server.jmap.test_mail import Mail, error, mail, one

__all__ = ["mail"]

METHODS = (("Mailbox/get", {}), ("Mailbox/changes", {"sinceState": "0"}),
           ("Mailbox/query", {}), ("Mailbox/queryChanges", {"sinceQueryState": "0"}),
           ("Mailbox/set", {}), ("Email/get", {"ids": []}),
           ("Email/changes", {"sinceState": "0"}), ("Email/query", {}),
           ("Email/queryChanges", {"sinceQueryState": "0"}), ("Email/set", {}),
           ("Email/import", {"emails": {}}), ("Email/parse", {"blobIds": []}),
           ("Thread/get", {"ids": []}), ("Thread/changes", {"sinceState": "0"}),
           ("SearchSnippet/get", {"emailIds": []}))


async def test_another_users_account_is_not_found(mail: Mail) -> None:
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    async with mail.client() as c:
        for name, args in METHODS:
            for account in (bob, "no-such-account"):
                assert await error(c, name, {**args, "accountId": account}) \
                    == "accountNotFound", (name, account)
        assert await error(c, "Email/copy", {"fromAccountId": alice, "accountId": bob,
                                             "create": {}}) == "accountNotFound"
        assert await error(c, "Email/copy", {"fromAccountId": bob, "accountId": alice,
                                             "create": {}}) == "fromAccountNotFound"
        # and the account itself answers them (the /changes ones need a real state)
        for name, args in METHODS:
            if "sinceState" not in args and "sinceQueryState" not in args:
                got = await one(c, name, {**args, "accountId": alice})
                assert got["accountId"] == alice, name
