"""Email/query's sorts (RFC 8621 section 4.4.2), its thread keyword conditions (section
4.4.1) and collapseThreads (section 4.4.3) through a real node, mail delivered over SMTP."""

from __future__ import annotations

from typing import Any

import pytest

from server.jmap.email_sort import collation_key
from tests.server.jmap.test_download import deliver
from tests.server.jmap.test_mail import Mail, error, mail, one

__all__ = ["mail"]


def raw(from_: str, to: str, subject: str, date: str | None, *, msgid: str,
        reply_to: str | None = None) -> bytes:
    lines = [f"From: {from_}", f"To: {to}", f"Subject: {subject}",
             f"Message-ID: <{msgid}@remote.test>"]
    if date is not None:
        lines.append(f"Date: {date}")
    if reply_to is not None:
        lines += [f"In-Reply-To: <{reply_to}@remote.test>",
                  f"References: <{reply_to}@remote.test>"]
    return ("\r\n".join(lines) + "\r\n\r\nHello\r\n").encode()


def _key(text: str, collation: str) -> Any:
    return collation_key(text, collation)


def test_collations_order_as_rfc_4790_and_5051_say() -> None:
    """RFC 4790 9.2 folds ASCII only; RFC 5051 folds and decomposes every script;
    RFC 4790 9.1 compares leading digits as numbers, no digits last."""
    assert _key("abc", "i;ascii-casemap") == _key("ABC", "i;ascii-casemap")
    assert _key("é", "i;ascii-casemap") != _key("É", "i;ascii-casemap")
    assert _key("é", "i;unicode-casemap") == _key("É", "i;unicode-casemap")
    assert _key("émile", "i;unicode-casemap") < _key("frank", "i;unicode-casemap")
    assert _key("émile", "i;ascii-casemap") > _key("frank", "i;ascii-casemap")
    numeric = sorted(["10 x", "9", "abc", "011"], key=lambda t: _key(t, "i;ascii-numeric"))
    assert numeric == ["9", "10 x", "011", "abc"]


@pytest.fixture
async def emails(mail: Mail) -> dict[str, str]:
    """Four emails: a, b, c and a2 (a reply to a, in a's thread); name -> id."""
    await deliver(mail, raw('"bob" <zed@remote.test>', '"Yan" <a@example.com>',
                            "Re: banana", "Mon, 01 Jan 2024 10:00:00 +0000", msgid="a"))
    await deliver(mail, raw("<Alice@remote.test>", "<alice@example.com>", "apple",
                            "Sun, 01 Jan 2023 10:00:00 +0000", msgid="b"))
    await deliver(mail, raw('"émile" <c@remote.test>', '"Xavier" <alice@example.com>',
                            "[list] Cherry", "Wed, 01 Jan 2025 10:00:00 +0200", msgid="c"))
    await deliver(mail, raw('"Frank" <f@remote.test>', "alice@example.com",
                            "Re: banana", None, msgid="a2", reply_to="a"))
    account = mail.ids["alice"]
    async with mail.client() as c:
        every = (await one(c, "Email/query", {"accountId": account}))["ids"]
        got = await one(c, "Email/get", {"accountId": account, "ids": every,
                                          "properties": ["messageId"]})
    return {e["messageId"][0].split("@")[0]: e["id"] for e in got["list"]}


async def test_every_sort_of_section_4_4_2(mail: Mail, emails: dict[str, str]) -> None:
    account = mail.ids["alice"]
    name = {v: k for k, v in emails.items()}
    async with mail.client() as c:
        async def order(*sort: dict[str, Any], **args: Any) -> list[str]:
            result = await one(c, "Email/query", {"accountId": account, "sort": list(sort),
                                                  **args})
            return [name[i] for i in result["ids"]]

        # receivedAt: delivery order; the default is newest first
        assert await order({"property": "receivedAt"}) == ["a", "b", "c", "a2"]
        assert await order() == ["a2", "c", "b", "a"]
        # from: the first address's name, else its email, in the collation
        assert await order({"property": "from"}) == ["b", "a", "c", "a2"]
        assert await order({"property": "from", "collation": "i;ascii-casemap"}) \
            == ["b", "a", "a2", "c"]
        assert await order({"property": "from", "isAscending": False}) \
            == ["a2", "c", "a", "b"]
        # to: "Yan", "alice@example.com", "Xavier", "alice@example.com"
        assert await order({"property": "to"}, {"property": "receivedAt"}) \
            == ["b", "a2", "c", "a"]
        # subject: the base subject (RFC 5256 2.1: "Re:" and "[list]" go); ties by
        # the next comparator
        assert await order({"property": "subject"}, {"property": "receivedAt",
                                                     "isAscending": False}) \
            == ["b", "a2", "a", "c"]
        # sentAt: the Date field, in UTC; none (a2) first
        assert await order({"property": "sentAt"}) == ["a2", "b", "a", "c"]
        sizes = await order({"property": "size"})
        assert len(sizes) == 4

        await one(c, "Email/set", {"accountId": account, "update": {
            emails["a"]: {"keywords/$flagged": True},
            emails["b"]: {"keywords/$flagged": True}}})
        flagged = {"keyword": "$Flagged"}  # keywords compare case-insensitively
        received = {"property": "receivedAt"}
        assert await order({"property": "hasKeyword", **flagged}, received) \
            == ["c", "a2", "a", "b"]
        assert await order({"property": "hasKeyword", "isAscending": False, **flagged},
                           received) == ["a", "b", "c", "a2"]
        # a's thread has a2, unflagged: some of it is flagged, not all
        assert await order({"property": "someInThreadHaveKeyword", "isAscending": False,
                            **flagged}, received) == ["a", "b", "a2", "c"]
        assert await order({"property": "allInThreadHaveKeyword", "isAscending": False,
                            **flagged}, received) == ["b", "a", "c", "a2"]

        # RFC 8620 5.5: an unknown collation or property is unsupportedSort; the
        # keyword sorts need their keyword (RFC 8621 4.4.2)
        async def kind(sort: dict[str, Any]) -> str:
            return await error(c, "Email/query", {"accountId": account, "sort": [sort]})
        assert await kind({"property": "from", "collation": "i;octet-x"}) \
            == "unsupportedSort"
        assert await kind({"property": "preview"}) == "unsupportedSort"
        assert await kind({"property": "hasKeyword"}) == "invalidArguments"
        assert await kind({"property": "hasKeyword", "keyword": "\\Seen"}) \
            == "invalidArguments"
        assert await kind({"property": "hasKeyword", "keyword": 3}) == "invalidArguments"


async def test_thread_conditions_and_collapse_threads(mail: Mail,
                                                      emails: dict[str, str]) -> None:
    """Section 4.4.1 all/some/noneInThreadHaveKeyword; section 4.4.3 collapseThreads:
    only the first email of each thread in the sorted, filtered list."""
    account = mail.ids["alice"]
    name = {v: k for k, v in emails.items()}
    async with mail.client() as c:
        async def found(condition: dict[str, Any] | None, **args: Any) -> list[str]:
            result = await one(c, "Email/query", {
                "accountId": account, "filter": condition,
                "sort": [{"property": "receivedAt"}], **args})
            return [name[i] for i in result["ids"]]

        await one(c, "Email/set", {"accountId": account, "update": {
            emails["a2"]: {"keywords/$seen": True}, emails["b"]: {"keywords/$seen": True}}})
        assert await found({"someInThreadHaveKeyword": "$seen"}) == ["a", "b", "a2"]
        assert await found({"allInThreadHaveKeyword": "$seen"}) == ["b"]
        assert await found({"noneInThreadHaveKeyword": "$seen"}) == ["c"]
        assert await error(c, "Email/query", {"accountId": account, "filter": {
            "allInThreadHaveKeyword": 1}}) == "invalidArguments"

        assert await found(None, collapseThreads=True) == ["a", "b", "c"]
        newest = await one(c, "Email/query", {
            "accountId": account, "collapseThreads": True, "calculateTotal": True,
            "sort": [{"property": "receivedAt", "isAscending": False}]})
        assert [name[i] for i in newest["ids"]] == ["a2", "c", "b"]
        assert newest["total"] == 3 and newest["collapseThreads"] is True
        # the filter runs before the collapse: a2 is filtered out, a stands for it
        assert await found({"notKeyword": "$seen"}, collapseThreads=True) == ["a", "c"]


async def test_collapsed_inbox_listing_answers_as_the_scan_does(mail: Mail) -> None:
    """Section 4.4.3 on the layer's received-at index ({inMailbox} by receivedAt with
    collapseThreads): the same ids and positions as the general query (the condition
    wrapped in an AND runs as a scan), threads spread over the index."""
    for n in range(3):
        await deliver(mail, raw("<x@remote.test>", "alice@example.com", f"t{n}", None,
                                msgid=f"t{n}"))
    for n in range(3):  # replies, newest: each thread's first email moves up
        await deliver(mail, raw("<x@remote.test>", "alice@example.com", f"Re: t{n}",
                                None, msgid=f"r{n}", reply_to=f"t{n}"))
    await deliver(mail, raw("<x@remote.test>", "alice@example.com", "lone", None,
                            msgid="lone"))
    account = mail.ids["alice"]
    async with mail.client() as c:
        inbox = (await one(c, "Mailbox/query", {"accountId": account,
                                                "filter": {"role": "inbox"}}))["ids"][0]
        for window in ({}, {"position": 1, "limit": 2}, {"position": 3}, {"position": 9},
                       {"limit": 0}, {"limit": 1}):
            for sort in (None, [{"property": "receivedAt"}],
                         [{"property": "receivedAt", "isAscending": False}]):
                condition = {"inMailbox": inbox}
                args = {"accountId": account, "collapseThreads": True, "sort": sort,
                        **window}
                fast = await one(c, "Email/query", {**args, "filter": condition})
                scan = await one(c, "Email/query", {**args, "filter": {
                    "operator": "AND", "conditions": [condition]}})
                assert fast == scan, (window, sort)
        every = await one(c, "Email/query", {"accountId": account, "collapseThreads": True,
                                             "filter": {"inMailbox": inbox}})
        assert len(every["ids"]) == 4
