"""Email/query and Email/queryChanges read literally (RFC 8621 sections 4.4 and 4.5,
RFC 8620 sections 5.5 and 5.6): each filter condition at its boundary, ``header`` with
one and two elements, the thread conditions and collapseThreads, the Comparator's
defaults and refusals, and queryChanges of a collapsed query, with raw httpx against a
real node."""

from __future__ import annotations

from typing import Any

import httpx

from tests.server.jmap.test_mail import Mail, error, mail, one
from tests.server.jmap.test_query_changes import apply
from tests.server.jmap.writes import upload

__all__ = ["mail"]


def _message(name: str, *, subject: str | None = None, reply_to: str | None = None,
             extra: str = "", body: str = "Hello") -> bytes:
    lines = ["From: Someone <someone@remote.test>", "To: alice@example.com",
             f"Subject: {subject or 'about ' + name}",
             f"Message-ID: <{name}@remote.test>", "Date: Mon, 01 Jan 2024 10:00:00 +0000"]
    if reply_to is not None:
        lines += [f"In-Reply-To: <{reply_to}@remote.test>",
                  f"References: <{reply_to}@remote.test>"]
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


class Account:
    def __init__(self, c: httpx.AsyncClient, account: str) -> None:
        self.c, self.account = c, account

    async def add(self, name: str, received: str, *, keywords: tuple[str, ...] = (),
                  **message: Any) -> dict[str, Any]:
        """Email/import of a message with the given receivedAt; its id and size."""
        blob = await upload(self.c, self.account, _message(name, **message))
        got = await one(self.c, "Email/import", {"accountId": self.account, "emails": {
            "e": {"blobId": blob["blobId"], "mailboxIds": {"inbox": True},
                  "keywords": dict.fromkeys(keywords, True), "receivedAt": received}}})
        created: dict[str, Any] = got["created"]["e"]
        return created

    async def ids(self, **args: Any) -> list[str]:
        got = await one(self.c, "Email/query", {"accountId": self.account, **args})
        ids: list[str] = got["ids"]
        return ids


async def test_date_and_size_conditions_at_their_boundaries(mail: Mail) -> None:
    """Section 4.4.1: before "must be before this date-time", after "must be the same
    or after", minSize "equal to or greater than", maxSize "less than"."""
    async with mail.client() as c:
        a = Account(c, mail.ids["alice"])
        early = await a.add("early", "2024-01-01T00:00:00Z")
        late = await a.add("late", "2024-01-02T00:00:00Z", body="Hello" * 40)
        by_date = [{"property": "receivedAt"}]
        assert await a.ids(filter={"before": "2024-01-02T00:00:00Z"}) == [early["id"]]
        assert await a.ids(filter={"after": "2024-01-02T00:00:00Z"}) == [late["id"]]
        assert await a.ids(filter={"after": "2024-01-01T00:00:00Z"}, sort=by_date) == [
            early["id"], late["id"]]
        assert await a.ids(filter={"before": "2024-01-01T00:00:00Z"}) == []
        assert await a.ids(filter={"minSize": late["size"]}) == [late["id"]]
        assert await a.ids(filter={"maxSize": late["size"]}) == [early["id"]]
        assert await a.ids(filter={"minSize": early["size"], "maxSize": late["size"] + 1},
                           sort=by_date) == [early["id"], late["id"]]
        assert await a.ids(filter={"maxSize": early["size"]}) == []


async def test_header_condition_with_one_and_two_elements(mail: Mail) -> None:
    """Section 4.4.1 header: "The array MUST contain either one or two elements": the
    name alone matches a message that has the field (any case of the name), with a
    value one whose field contains it; another length is invalidArguments."""
    async with mail.client() as c:
        a = Account(c, mail.ids["alice"])
        flagged = await a.add("flagged", "2024-01-01T00:00:00Z", extra="X-Flag: Yes please")
        await a.add("plain", "2024-01-02T00:00:00Z")
        assert await a.ids(filter={"header": ["X-Flag"]}) == [flagged["id"]]
        assert await a.ids(filter={"header": ["x-flag"]}) == [flagged["id"]]
        assert await a.ids(filter={"header": ["X-Flag", "yes"]}) == [flagged["id"]]
        assert await a.ids(filter={"header": ["X-Flag", "no thanks"]}) == []
        assert await a.ids(filter={"header": ["X-Other"]}) == []
        for bad in ([], ["X-Flag", "Yes", "more"], "X-Flag", [1]):
            assert await error(c, "Email/query", {"accountId": a.account,
                                                  "filter": {"header": bad}}) \
                == "invalidArguments", bad


async def test_thread_conditions_and_collapse_threads(mail: Mail) -> None:
    """Section 4.4.1: all/some/noneInThreadHaveKeyword look at every email of the
    thread (this one included); section 4.4 collapseThreads keeps the first email of
    each thread "given the filter and sort order"."""
    async with mail.client() as c:
        a = Account(c, mail.ids["alice"])
        root = await a.add("root", "2024-01-01T00:00:00Z", keywords=("$seen", "tag"))
        reply = await a.add("reply", "2024-01-02T00:00:00Z", reply_to="root",
                            subject="Re: about root", keywords=("$seen",))
        alone = await a.add("alone", "2024-01-03T00:00:00Z", keywords=("$seen", "tag"))
        assert reply["threadId"] == root["threadId"] != alone["threadId"]
        newest = [{"property": "receivedAt", "isAscending": False}]
        assert await a.ids(filter={"allInThreadHaveKeyword": "$seen"}, sort=newest) == [
            alone["id"], reply["id"], root["id"]]
        assert await a.ids(filter={"allInThreadHaveKeyword": "tag"}) == [alone["id"]]
        assert await a.ids(filter={"someInThreadHaveKeyword": "tag"}, sort=newest) == [
            alone["id"], reply["id"], root["id"]]
        assert await a.ids(filter={"noneInThreadHaveKeyword": "tag"}) == []
        assert await a.ids(filter={"noneInThreadHaveKeyword": "nope"}, sort=newest) == [
            alone["id"], reply["id"], root["id"]]
        assert await a.ids(sort=newest, collapseThreads=True) == [alone["id"], reply["id"]]
        oldest = [{"property": "receivedAt", "isAscending": True}]
        assert await a.ids(sort=oldest, collapseThreads=True) == [root["id"], alone["id"]]
        # the filter first: the thread's email that passes it stands for the thread
        assert await a.ids(filter={"hasKeyword": "tag"}, sort=newest,
                           collapseThreads=True) == [alone["id"], root["id"]]
        # RFC 8621 section 3: a Thread's emailIds are "sorted by the receivedAt date of
        # the Email, oldest first", whatever order they arrived in
        early = await a.add("early", "2023-12-31T00:00:00Z", reply_to="root",
                            subject="Re: about root")
        threads = await one(c, "Thread/get", {"accountId": a.account,
                                              "ids": [root["threadId"]]})
        assert threads["list"] == [{"id": root["threadId"], "emailIds": [
            early["id"], root["id"], reply["id"]]}]


async def test_comparator_defaults_and_refusals(mail: Mail) -> None:
    """RFC 8620 section 5.5: isAscending "(optional; default: true)"; a property or a
    collation the server does not support is unsupportedSort; a filter condition it
    does not know is unsupportedFilter.  RFC 8621 section 4.4.2: the keyword sorts
    need their keyword."""
    async with mail.client() as c:
        a = Account(c, mail.ids["alice"])
        small = await a.add("small", "2024-01-02T00:00:00Z", subject="b")
        big = await a.add("big", "2024-01-01T00:00:00Z", subject="B", body="Hi" * 100)
        assert await a.ids(sort=[{"property": "size"}]) == [small["id"], big["id"]]
        assert await a.ids(sort=[{"property": "receivedAt"}]) == [big["id"], small["id"]]
        # i;ascii-casemap: "b" and "B" are equal; the next comparator decides
        assert await a.ids(sort=[{"property": "subject", "collation": "i;ascii-casemap"},
                                 {"property": "size", "isAscending": False}]) == [
            big["id"], small["id"]]
        for sort in ([{"property": "nope"}], [{"property": "id"}],
                     [{"property": "subject", "collation": "i;octet-nope"}]):
            assert await error(c, "Email/query", {"accountId": a.account,
                                                  "sort": sort}) == "unsupportedSort", sort
        assert await error(c, "Email/query", {"accountId": a.account, "sort": [
            {"property": "hasKeyword"}]}) == "invalidArguments"
        assert await error(c, "Email/query", {"accountId": a.account, "filter": {
            "nope": 1}}) == "unsupportedFilter"
        assert await error(c, "Email/query", {"accountId": a.account, "filter": {
            "operator": "AND", "conditions": [{"subject": "b"}, {"nope": 1}]}}) \
            == "unsupportedFilter"


async def test_query_changes_of_a_collapsed_query(mail: Mail) -> None:
    """Section 4.5 with RFC 8620 section 5.6: a reply that becomes its thread's first
    email in a collapsed query replaces the thread's old one (removed, then added at its
    index); the client's list updated by removed and added is the new result."""
    async with mail.client() as c:
        a = Account(c, mail.ids["alice"])
        root = await a.add("root", "2024-01-01T00:00:00Z")
        other = await a.add("other", "2024-01-02T00:00:00Z")
        args: dict[str, Any] = {"sort": [{"property": "receivedAt", "isAscending": False}],
                                "collapseThreads": True}
        first = await one(c, "Email/query", {"accountId": a.account, **args})
        assert first["ids"] == [other["id"], root["id"]]
        reply = await a.add("reply", "2024-01-03T00:00:00Z", reply_to="root",
                            subject="Re: about root")
        got = await one(c, "Email/queryChanges", {
            "accountId": a.account, "sinceQueryState": first["queryState"], **args})
        now = await a.ids(**args)
        assert now == [reply["id"], other["id"]]
        assert root["id"] in got["removed"]
        assert apply(first["ids"], got["removed"], got["added"]) == now
        indexes = [item["index"] for item in got["added"]]
        assert indexes == sorted(indexes)  # "sorted in order of index, lowest first"
        assert await error(c, "Email/queryChanges", {
            "accountId": a.account, "sinceQueryState": first["queryState"],
            "maxChanges": 1, **args}) == "tooManyChanges"
