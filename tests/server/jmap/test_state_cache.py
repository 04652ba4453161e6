"""Email/query's mailbox listings and Email/get's email records, reused by a process while
the account's state is the one they were read at (server/jmap/state_cache.py): every kind
of change makes the next answer a fresh one -- a new email, a destroy, a move, a keyword
that hides an email (RFC 8621 section 4.1.1: ``$deleted``), a new email in a thread
(section 4.4.3: collapseThreads lists a thread's newest), and a change made past this JMAP
front-end (straight through the mail layer, as another process or IMAP would).  One
account never gets what was computed for another (RFC 8620 section 1.6.2)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from fdb_layers.mail import (
    destroy_email,
    set_email_keywords,
    set_email_mailboxes,
    transact,
)
from server.jmap.json import JsonObject
from server.jmap.references import resolve_references
from server.jmap.request import Invocation
from server.jmap.state_cache import StateCache
from tests.server.jmap.test_mail import Mail, mail, one

__all__ = ["mail"]

LIST_VIEW = ["id", "threadId", "mailboxIds", "keywords", "subject"]


def _hits(cache: str) -> float:
    return REGISTRY.get_sample_value("fdbmail_jmap_state_cache_total",
                                     {"cache": cache, "result": "hit"}) or 0.0


async def _listing(c: Any, account: str, inbox: str, *, collapse: bool = True
                   ) -> tuple[list[str], str]:
    got = await one(c, "Email/query", {
        "accountId": account, "filter": {"inMailbox": inbox},
        "sort": [{"property": "receivedAt", "isAscending": False}],
        "collapseThreads": collapse, "limit": 50})
    return got["ids"], got["queryState"]


async def _subjects(c: Any, account: str, ids: list[str]) -> list[str]:
    got = await one(c, "Email/get", {"accountId": account, "ids": ids,
                                     "properties": ["subject"]})
    by_id = {e["id"]: e["subject"] for e in got["list"]}
    return [by_id[i] for i in ids]


async def _roles(c: Any, account: str) -> dict[str, str]:
    boxes = (await one(c, "Mailbox/get", {"accountId": account, "ids": None}))["list"]
    return {m["role"]: m["id"] for m in boxes if m["role"]}


async def test_a_listing_is_fresh_after_every_kind_of_change(mail: Mail) -> None:
    alice = mail.ids["alice"]
    for subject in ("one", "two", "three"):
        await mail.send("alice@example.com", subject,
                        extra=f"Message-ID: <{subject}@remote.test>\r\n")
    async with mail.client() as c:
        inbox = (await _roles(c, alice))["inbox"]

        async def check(expected: list[str]) -> str:
            """Twice: the second from the cache, both the store's listing."""
            ids, state = await _listing(c, alice, inbox)
            assert await _subjects(c, alice, ids) == expected
            hits = _hits("query")
            again, state_again = await _listing(c, alice, inbox)
            assert _hits("query") - hits == 1
            assert (again, state_again) == (ids, state)
            flat, _ = await _listing(c, alice, inbox, collapse=False)
            assert len(flat) == len(set(flat)) >= len(ids)
            return state

        state = await check(["three", "two", "one"])

        # a new email
        await mail.send("alice@example.com", "four",
                        extra="Message-ID: <four@remote.test>\r\n")
        assert await check(["four", "three", "two", "one"]) != state

        # a new email in a thread: the collapsed listing shows the thread's newest
        await mail.send("alice@example.com", "Re: two",
                        extra="Message-ID: <re-two@remote.test>\r\n"
                              "In-Reply-To: <two@remote.test>\r\n"
                              "References: <two@remote.test>\r\n")
        await check(["Re: two", "four", "three", "one"])
        flat, _ = await _listing(c, alice, inbox, collapse=False)
        assert await _subjects(c, alice, flat) == ["Re: two", "four", "three", "two", "one"]
        ids, _ = await _listing(c, alice, inbox)
        by_subject = dict(zip(await _subjects(c, alice, ids), ids, strict=True))
        flat_by_subject = dict(zip(await _subjects(c, alice, flat), flat, strict=True))

        # a move out of the inbox
        moved = await one(c, "Email/set", {"accountId": alice, "update": {
            by_subject["four"]: {"mailboxIds": {(await _roles(c, alice))["archive"]: True}}}})
        assert list(moved["updated"]) == [by_subject["four"]]
        await check(["Re: two", "three", "one"])

        # a keyword that changes nothing listed: a new state, the same listing
        flagged = await one(c, "Email/set", {"accountId": alice, "update": {
            by_subject["one"]: {"keywords/$flagged": True}}})
        assert list(flagged["updated"]) == [by_subject["one"]]
        await check(["Re: two", "three", "one"])

        # a keyword that hides the thread's newest email (IMAP's \Deleted, which JMAP
        # does not set: straight through the mail layer): its older one is listed again
        engine = mail.node.engine
        assert engine is not None
        await transact(engine, set_email_keywords, alice, by_subject["Re: two"],
                       ["$deleted"])
        await check(["three", "two", "one"])

        # a destroy
        destroyed = await one(c, "Email/set", {"accountId": alice,
                                               "destroy": [by_subject["three"]]})
        assert destroyed["destroyed"] == [by_subject["three"]]
        await check(["two", "one"])

        # more changes made past this front-end, straight through the mail layer
        await transact(engine, set_email_mailboxes, alice, by_subject["four"], [inbox])
        await check(["four", "two", "one"])
        await transact(engine, destroy_email, alice, flat_by_subject["one"], op_id=None)
        await check(["four", "two"])


async def test_email_records_are_fresh_after_changes_made_elsewhere(mail: Mail) -> None:
    alice = mail.ids["alice"]
    await mail.send("alice@example.com", "first")
    await mail.send("alice@example.com", "second")
    async with mail.client() as c:
        roles = await _roles(c, alice)
        ids, _ = await _listing(c, alice, roles["inbox"])
        first = await one(c, "Email/get", {"accountId": alice, "ids": ids,
                                           "properties": LIST_VIEW})
        answers, records = _hits("answer"), _hits("email")
        again = await one(c, "Email/get", {"accountId": alice, "ids": ids,
                                           "properties": LIST_VIEW})
        assert (_hits("answer") - answers, _hits("email") - records) == (1, 0)
        assert again == first
        # other ids: another answer, from the records kept
        backwards = await one(c, "Email/get", {"accountId": alice, "ids": ids[::-1],
                                               "properties": LIST_VIEW})
        assert (_hits("answer") - answers, _hits("email") - records) == (1, 2)
        assert backwards["list"] == first["list"][::-1]

        engine = mail.node.engine
        assert engine is not None
        await transact(engine, set_email_keywords, alice, ids[0], ["$flagged", "$seen"])
        await transact(engine, set_email_mailboxes, alice, ids[1], [roles["archive"]])
        now = await one(c, "Email/get", {"accountId": alice, "ids": ids,
                                         "properties": LIST_VIEW})
        assert now["state"] != first["state"]
        assert now["list"][0]["keywords"] == {"$flagged": True, "$seen": True}
        assert now["list"][1]["mailboxIds"] == {roles["archive"]: True}

        await transact(engine, destroy_email, alice, ids[0], op_id=None)
        gone = await one(c, "Email/get", {"accountId": alice, "ids": ids,
                                          "properties": LIST_VIEW})
        assert [e["id"] for e in gone["list"]] == [ids[1]] and gone["notFound"] == [ids[0]]


async def test_another_account_never_gets_what_was_kept_for_one(mail: Mail) -> None:
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    await mail.send("alice@example.com", "for alice")
    await mail.send("bob@example.com", "for bob")
    async with mail.client() as c, mail.client("bob") as b:
        inbox = (await _roles(c, alice))["inbox"]
        ids, state = await _listing(c, alice, inbox)
        assert len(ids) == 1
        await one(c, "Email/get", {"accountId": alice, "ids": ids, "properties": LIST_VIEW})
        # alice's listing and records are kept at her state now; bob's account is
        # brought to the same state, and asks the same in his own account (alice's
        # mailbox id, alice's email ids): he finds nothing of hers
        bob_inbox = (await _roles(b, bob))["inbox"]
        [own], bob_state = await _listing(b, bob, bob_inbox, collapse=False)
        assert int(bob_state) <= int(state)
        for n in range(int(state) - int(bob_state)):
            await one(b, "Email/set", {"accountId": bob, "update": {
                own: {"keywords/$flagged": True if n % 2 == 0 else None}}})
        theirs, bob_state = await _listing(b, bob, inbox)
        # (mailbox ids are the account's own: alice's inbox id may name bob's inbox)
        assert bob_state == state and theirs == ([own] if inbox == bob_inbox else [])
        got = await one(b, "Email/get", {"accountId": bob, "ids": ids,
                                         "properties": LIST_VIEW})
        assert got["state"] == state
        assert got["list"] == [] and got["notFound"] == ids


def test_an_entry_answers_only_at_its_state() -> None:
    cache: StateCache[tuple[str, str], str | None] = StateCache("test", 2)
    cache.put(("a", "x"), "5", "five")
    cache.put(("a", "y"), "5", None)  # kept: the email was not there at state 5
    assert cache.get(("a", "x"), "5") == (True, "five")
    assert cache.get(("a", "y"), "5") == (True, None)
    assert cache.get(("a", "x"), "6") == (False, None)
    assert cache.get(("b", "x"), "5") == (False, None)
    cache.put(("a", "z"), "6", "six")  # over the bound: the least recently used goes
    assert len(cache) == 2
    assert cache.get(("a", "x"), "5") == (False, None)
    assert cache.get(("a", "z"), "6") == (True, "six")


def test_a_referenced_value_is_the_methods_own() -> None:
    """RFC 8620 section 3.7: a result reference gives the value of an earlier response;
    the method it is given to gets a copy, so a response -- whose objects Email/get may
    share with later responses -- stays as it was made."""
    kept: JsonObject = {"list": [{"id": "M1", "keywords": {"$seen": True}}], "notFound": []}
    responses = [Invocation("Email/get", kept, "g")]
    args = resolve_references({"#ids": {"resultOf": "g", "name": "Email/get",
                                        "path": "/list/*/keywords"},
                               "#all": {"resultOf": "g", "name": "Email/get",
                                        "path": "/list"}}, responses)
    assert args == {"ids": [{"$seen": True}], "all": [{"id": "M1", "keywords": {"$seen": True}}]}
    ids, every = args["ids"], args["all"]
    assert isinstance(ids, list) and isinstance(ids[0], dict)
    assert isinstance(every, list) and isinstance(every[0], dict)
    ids[0]["$flagged"] = True
    every[0]["id"] = "changed"
    every.append({})
    assert kept == {"list": [{"id": "M1", "keywords": {"$seen": True}}], "notFound": []}
