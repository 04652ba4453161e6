"""Email/queryChanges and Mailbox/queryChanges (RFC 8620 section 5.6; RFC 8621 sections
2.4 and 4.5) through a real node: the client's old list, updated with ``removed`` and
``added`` as section 5.6 describes, is the list the query gives now."""

from __future__ import annotations

from typing import Any

import httpx

from tests.server.jmap.test_download import deliver
from tests.server.jmap.test_email_query_sort import raw
from tests.server.jmap.test_mail import Mail, error, mail, one

__all__ = ["mail"]


def apply(old: list[str], removed: list[str], added: list[dict[str, Any]]) -> list[str]:
    """Section 5.6's client algorithm: drop every removed id, then insert the added ones
    in index order."""
    gone = set(removed)
    out = [i for i in old if i not in gone]
    for item in sorted(added, key=lambda a: a["index"]):
        out.insert(item["index"], item["id"])
    return out


class Checker:
    def __init__(self, c: httpx.AsyncClient, account: str, kind: str) -> None:
        self.c, self.account, self.kind = c, account, kind

    async def query(self, args: dict[str, Any]) -> tuple[str, list[str]]:
        got = await one(self.c, f"{self.kind}/query", {"accountId": self.account, **args})
        assert got["canCalculateChanges"] is True
        return got["queryState"], got["ids"]

    async def changes(self, args: dict[str, Any], since: str, **more: Any) -> dict[str, Any]:
        return await one(self.c, f"{self.kind}/queryChanges", {
            "accountId": self.account, "sinceQueryState": since, **args, **more})

    async def follows(self, args: dict[str, Any], since: str, old: list[str]
                      ) -> dict[str, Any]:
        """The changes since ``since`` bring ``old`` to the query's current results."""
        changes = await self.changes(args, since, calculateTotal=True)
        state, now = await self.query(args)
        assert changes["oldQueryState"] == since and changes["newQueryState"] == state
        assert apply(old, changes["removed"], changes["added"]) == now
        assert changes["total"] == len(now)
        return changes


async def _send(mail: Mail, msgid: str, *, reply_to: str | None = None) -> None:
    subject = f"Re: about {reply_to}" if reply_to else f"about {msgid}"
    await deliver(mail, raw("<x@remote.test>", "alice@example.com", subject,
                            "Mon, 01 Jan 2024 10:00:00 +0000", msgid=msgid,
                            reply_to=reply_to))


async def _ids(c: Checker) -> dict[str, str]:
    _, every = await c.query({})
    got = await one(c.c, "Email/get", {"accountId": c.account, "ids": every,
                                        "properties": ["messageId"]})
    return {e["messageId"][0].split("@")[0]: e["id"] for e in got["list"]}


async def test_email_query_changes_follow_keyword_mailbox_and_destroy(mail: Mail) -> None:
    """Section 5.6 on a query over mutable properties (keywords, mailboxes): updated
    emails come out and back in at their new index; created ones come in; destroyed
    ones go; maxChanges gives tooManyChanges."""
    for name in ("e1", "e2", "e3"):
        await _send(mail, name)
    account = mail.ids["alice"]
    async with mail.client() as client:
        c = Checker(client, account, "Email")
        ids = await _ids(c)
        unread = {"filter": {"notKeyword": "$seen"},
                  "sort": [{"property": "receivedAt", "isAscending": False}]}
        since, old = await c.query(unread)
        same = await c.follows(unread, since, old)
        assert same["removed"] == [] and same["added"] == []

        await one(client, "Email/set", {"accountId": account, "update": {
            ids["e2"]: {"keywords/$seen": True}}, "destroy": [ids["e1"]]})
        await _send(mail, "e4")
        ids = await _ids(c)
        changes = await c.follows(unread, since, old)
        assert {ids["e2"]} <= set(changes["removed"])
        assert changes["added"] == [{"id": ids["e4"], "index": 0}]
        assert await error(client, "Email/queryChanges", {
            "accountId": account, "sinceQueryState": since, "maxChanges": 1, **unread}) \
            == "tooManyChanges"

        # marked unread again: back in its place
        since2, old2 = await c.query(unread)
        await one(client, "Email/set", {"accountId": account, "update": {
            ids["e2"]: {"keywords/$seen": None}}})
        changes = await c.follows(unread, since2, old2)
        assert changes["added"] == [{"id": ids["e2"], "index": 2}]
        # and from the first state still
        await c.follows(unread, since, old)

        # moved out of the inbox: gone from an inMailbox query
        boxes = (await one(client, "Mailbox/get", {"accountId": account, "ids": None}))["list"]
        role = {b["role"]: b["id"] for b in boxes}
        inbox = {"filter": {"inMailbox": role["inbox"]}, "sort": [{"property": "size"},
                                                                  {"property": "receivedAt"}]}
        since3, old3 = await c.query(inbox)
        await one(client, "Email/set", {"accountId": account, "update": {
            ids["e3"]: {"mailboxIds": {role["archive"]: True}}}})
        changes = await c.follows(inbox, since3, old3)
        assert ids["e3"] in changes["removed"] and changes["added"] == []


async def test_immutable_queries_report_only_creations_and_up_to_id(mail: Mail) -> None:
    """Section 5.6: with filter and sort on immutable properties, an update moves
    nothing; upToId drops the additions after the client's last cached id."""
    for name in ("e1", "e2", "e3"):
        await _send(mail, name)
    account = mail.ids["alice"]
    async with mail.client() as client:
        c = Checker(client, account, "Email")
        ids = await _ids(c)
        oldest_first = {"filter": {"after": "2000-01-01T00:00:00Z"},
                        "sort": [{"property": "receivedAt", "isAscending": True}]}
        since, old = await c.query(oldest_first)
        await one(client, "Email/set", {"accountId": account, "update": {
            ids["e2"]: {"keywords/$seen": True}}})
        for name in ("e4", "e5"):
            await _send(mail, name)
        ids = await _ids(c)
        changes = await c.follows(oldest_first, since, old)
        assert changes["removed"] == []  # the flag changed nothing the query looks at
        assert changes["added"] == [{"id": ids["e4"], "index": 3},
                                    {"id": ids["e5"], "index": 4}]
        cut = await c.changes(oldest_first, since, upToId=ids["e2"])
        assert cut["added"] == [] and cut["removed"] == []
        # upToId is ignored for a query on a mutable property (a keyword)
        flagged = {**oldest_first, "filter": {"notKeyword": "$flagged"}}
        assert len((await c.changes(flagged, since, upToId=ids["e2"]))["added"]) >= 2


async def test_collapsed_threads_follow_a_new_reply(mail: Mail) -> None:
    """RFC 8621 4.4.3 with 5.6: a reply makes itself the thread's first email; the
    email that stood for the thread goes."""
    for name in ("t1", "u1"):
        await _send(mail, name)
    account = mail.ids["alice"]
    async with mail.client() as client:
        c = Checker(client, account, "Email")
        newest = {"collapseThreads": True,
                  "sort": [{"property": "receivedAt", "isAscending": False}]}
        since, old = await c.query(newest)
        assert len(old) == 2
        await _send(mail, "t2", reply_to="t1")
        ids = await _ids(c)
        changes = await c.follows(newest, since, old)
        assert ids["t1"] in changes["removed"]
        assert changes["added"] == [{"id": ids["t2"], "index": 0}]
        # the thread keyword sort moves t1 when t2 is flagged
        some = {"sort": [{"property": "someInThreadHaveKeyword", "keyword": "$flagged",
                          "isAscending": False}, {"property": "receivedAt"}]}
        since, old = await c.query(some)
        await one(client, "Email/set", {"accountId": account, "update": {
            ids["t2"]: {"keywords/$flagged": True}}})
        changes = await c.follows(some, since, old)
        assert ids["t1"] in changes["removed"]


async def test_mailbox_query_changes_follow_renames_and_trees(mail: Mail) -> None:
    """RFC 8621 2.4 with 8620 5.6: a rename moves a mailbox in a name sort; with
    sortAsTree its children move with it."""
    account = mail.ids["alice"]
    async with mail.client() as client:
        c = Checker(client, account, "Mailbox")
        by_name = {"sort": [{"property": "name"}]}
        tree = {"sort": [{"property": "name"}], "sortAsTree": True, "filterAsTree": True,
                "filter": {"isSubscribed": True}}
        since, old = await c.query(by_name)
        since_tree, old_tree = await c.query(tree)
        created = (await one(client, "Mailbox/set", {"accountId": account, "create": {
            "p": {"name": "Aardvark", "isSubscribed": True},
            "k": {"name": "kid", "parentId": "#p", "isSubscribed": True}}}))["created"]
        parent, kid = created["p"]["id"], created["k"]["id"]
        await c.follows(by_name, since, old)
        await c.follows(tree, since_tree, old_tree)

        since, old = await c.query(by_name)
        since_tree, old_tree = await c.query(tree)
        await one(client, "Mailbox/set", {"accountId": account, "update": {
            parent: {"name": "Zebra"}}})
        changes = await c.follows(by_name, since, old)
        assert parent in changes["removed"]
        changes = await c.follows(tree, since_tree, old_tree)
        assert {parent, kid} <= set(changes["removed"])

        await one(client, "Mailbox/set", {"accountId": account, "destroy": [kid]})
        changes = await c.follows(by_name, since, old)
        assert kid in changes["removed"]
        await c.follows(tree, since_tree, old_tree)
