"""Email/get of a mail list view's properties, answered from the process's cache of
summary-derived properties (server/jmap/email_heads.py) after the first time: what it
answers is what the store holds now.  ``keywords`` and ``mailboxIds`` are the email's
current ones (RFC 8621 section 4.1.1), an email destroyed is notFound (RFC 8620 section
5.1), another account never gets one (RFC 8620 section 1.6.2), and a repeated header
field gives its last instance (RFC 8621 section 4.1.3), from the cache as without it."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from server.jmap.email_heads import copy_value
from tests.server.jmap.test_mail import Mail, mail, one

__all__ = ["mail"]

LIST_VIEW = ["id", "threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt",
             "size", "preview", "hasAttachment"]


def _hits() -> float:
    return REGISTRY.get_sample_value("fdbmail_jmap_email_head_cache_total",
                                     {"result": "hit"}) or 0.0


async def _list(c: Any, account: str, ids: list[str]) -> dict[str, Any]:
    return await one(c, "Email/get", {"accountId": account, "ids": ids,
                                      "properties": LIST_VIEW})


async def test_cached_list_view_properties_follow_the_store(mail: Mail) -> None:
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    await mail.send("alice@example.com", "first", body="The first body.")
    await mail.send("alice@example.com", "second",
                    extra="From: Last Sender <last@remote.test>\r\n")
    await mail.send("alice@example.com", "third")
    await mail.send("bob@example.com", "for bob")
    async with mail.client() as c, mail.client("bob") as b:
        boxes = (await one(c, "Mailbox/get", {"accountId": alice, "ids": None}))["list"]
        role = {m["role"]: m["id"] for m in boxes}
        ids = (await one(c, "Email/query", {"accountId": alice, "sort": [
            {"property": "receivedAt", "isAscending": True}]}))["ids"]
        assert len(ids) == 3
        first = await _list(c, alice, ids)
        hits = _hits()
        # (the same ids again would be the answer kept whole: tests/server/jmap/
        # test_state_cache.py; in another order, each email's properties are built again)
        again = await _list(c, alice, ids[::-1])
        assert _hits() - hits == 2  # the one with two From fields reads its message
        assert again["list"] == first["list"][::-1]
        assert await _list(c, alice, ids) == first
        by_id = {e["id"]: e for e in first["list"]}
        assert by_id[ids[0]]["preview"].startswith("The first body.")
        assert by_id[ids[0]]["from"] == [{"name": "Some One",
                                          "email": "someone@remote.test"}]
        assert by_id[ids[1]]["from"] == [{"name": "Last Sender",
                                          "email": "last@remote.test"}]
        assert [by_id[i]["subject"] for i in ids] == ["first", "second", "third"]

        # another account asking for them gets nothing, before and after they are cached
        got = await _list(b, bob, ids)
        assert got["list"] == [] and sorted(got["notFound"]) == sorted(ids)

        # keywords and mailboxes change: the next answer has the new ones
        updated = await one(c, "Email/set", {"accountId": alice, "update": {
            ids[0]: {"keywords/$flagged": True},
            ids[2]: {"mailboxIds": {role["archive"]: True}}}})
        assert sorted(updated["updated"]) == sorted([ids[0], ids[2]])
        hits = _hits()
        after = await _list(c, alice, ids)
        assert _hits() - hits == 2
        assert after["state"] != first["state"]
        now = {e["id"]: e for e in after["list"]}
        assert now[ids[0]]["keywords"] == {"$flagged": True}
        assert now[ids[2]]["mailboxIds"] == {role["archive"]: True}
        for i in ids:
            rest = {k: v for k, v in now[i].items() if k not in ("keywords", "mailboxIds")}
            assert rest == {k: v for k, v in by_id[i].items()
                            if k not in ("keywords", "mailboxIds")}

        # destroyed: notFound, though its properties were cached
        destroyed = await one(c, "Email/set", {"accountId": alice, "destroy": [ids[0]]})
        assert destroyed["destroyed"] == [ids[0]]
        gone = await _list(c, alice, ids)
        assert [e["id"] for e in gone["list"]] == ids[1:] and gone["notFound"] == [ids[0]]


def test_held_values_are_given_as_copies() -> None:
    """The cache's values leave it as the caller's own: a response being built (or a
    result reference, RFC 8620 section 3.7) cannot change what the next request gets."""
    held = [{"name": "A", "email": "a@remote.test"}]
    ids = ["m1@remote.test"]
    got, got_ids = copy_value(held), copy_value(ids)
    assert got == held and got_ids == ids
    assert isinstance(got, list) and isinstance(got[0], dict)
    assert isinstance(got_ids, list)
    got[0]["name"] = "B"
    got.append({})
    got_ids.append("m2@remote.test")
    assert held == [{"name": "A", "email": "a@remote.test"}] and ids == ["m1@remote.test"]
    assert copy_value("subject") == "subject" and copy_value(None) is None
