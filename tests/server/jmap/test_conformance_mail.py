"""RFC 8620 standard methods (sections 5.1-5.6) as RFC 8621 defines them for Mailbox,
Email, Thread and SearchSnippet: /get, /changes, /set and its SetErrors, /query and
/queryChanges, with raw httpx requests against a real node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import USING, calls, mail_node, one, upload

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

VACATION = "urn:ietf:params:jmap:vacationresponse"


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path, quotas={"bob": 3000}) as m:
        yield m


async def _by_tag(c: httpx.AsyncClient, *method_calls: list[Any]) -> dict[str, Any]:
    """The arguments of each response by call id (an error as ``["error", args]``)."""
    out: dict[str, Any] = {}
    for name, args, tag in await calls(c, *method_calls):
        out[tag] = ["error", args] if name == "error" else args
    return out


async def _deliver(mail: Mail, *subjects: str) -> list[str]:
    """Deliver one message per subject to alice over SMTP; the email ids, oldest first."""
    for subject in subjects:
        await mail.send("alice@example.com", subject, body=f"about {subject}")
    async with mail.client() as c:
        got = await one(c, "Email/query", {"accountId": mail.ids["alice"],
                                           "sort": [{"property": "receivedAt",
                                                     "isAscending": True}]})
    ids: list[str] = got["ids"]
    return ids


async def _state(c: httpx.AsyncClient, account: str, kind: str) -> str:
    state: str = (await one(c, f"{kind}/get", {"accountId": account, "ids": []}))["state"]
    return state


async def test_get_with_ids_null_and_properties_always_returns_the_id(mail: Mail) -> None:
    """RFC 8620 section 5.1: ``ids: null`` returns every record (Mailbox: the account's
    mailboxes); ``properties`` limits the properties, ``id`` always returned; an unknown
    id is in notFound; ``state`` is the type's state."""
    alice = mail.ids["alice"]
    [email] = await _deliver(mail, "one")
    async with mail.client() as c:
        got = await _by_tag(
            c, ["Mailbox/get", {"accountId": alice, "ids": None, "properties": ["role"]}, "m"],
            ["Mailbox/get", {"accountId": alice, "ids": ["nope", "inbox"],
                             "properties": []}, "n"],
            ["Email/get", {"accountId": alice, "ids": [email, "nope"],
                           "properties": ["subject"]}, "e"],
            ["Thread/get", {"accountId": alice, "ids": ["nope"]}, "t"])
        assert {m["role"] for m in got["m"]["list"]} >= {"inbox", "drafts", "sent", "junk",
                                                        "trash", "archive"}
        assert all(set(m) == {"id", "role"} for m in got["m"]["list"])
        assert got["n"]["list"] == [{"id": "inbox"}] and got["n"]["notFound"] == ["nope"]
        assert got["e"]["list"] == [{"id": email, "subject": "one"}]
        assert got["e"]["notFound"] == ["nope"]
        assert got["t"]["list"] == [] and got["t"]["notFound"] == ["nope"]
        assert all(isinstance(got[t]["state"], str) for t in "mnet")


async def test_changes_pages_with_max_changes_and_drops_created_then_destroyed(
        mail: Mail) -> None:
    """RFC 8620 section 5.2: maxChanges caps created + updated + destroyed, with
    hasMoreChanges until newState catches up; an email created and destroyed since
    sinceState is in no list (the server SHOULD remove it entirely); maxChanges 0 is
    invalidArguments; a state the server does not know is cannotCalculateChanges."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        since = await _state(c, alice, "Email")
    ids = await _deliver(mail, "a", "b", "c")
    async with mail.client() as c:
        gone = (await one(c, "Email/set", {"accountId": alice, "destroy": [ids[2]]}))
        assert gone["destroyed"] == [ids[2]]
        seen: list[str] = []
        state, more = since, True
        for _ in range(10):
            if not more:
                break
            page = await one(c, "Email/changes", {"accountId": alice, "sinceState": state,
                                                  "maxChanges": 1})
            assert page["oldState"] == state
            assert len(page["created"]) + len(page["updated"]) + len(page["destroyed"]) <= 1
            assert set(page["destroyed"]) <= {ids[2]}  # its page may say so, once
            seen += page["created"] + page["updated"]
            state, more = page["newState"], page["hasMoreChanges"]
        assert not more and sorted(set(seen)) == sorted(ids[:2])
        assert state == await _state(c, alice, "Email")
        whole = await one(c, "Email/changes", {"accountId": alice, "sinceState": since})
        assert sorted(whole["created"]) == sorted(ids[:2])
        assert whole["destroyed"] == [] and not whole["hasMoreChanges"]
        errors = await _by_tag(
            c, ["Email/changes", {"accountId": alice, "sinceState": since,
                                  "maxChanges": 0}, "zero"],
            ["Email/changes", {"accountId": alice, "sinceState": "no-such-state"}, "bad"],
            ["Mailbox/changes", {"accountId": alice, "sinceState": "no-such-state"}, "mb"],
            ["Thread/changes", {"accountId": alice, "sinceState": "99999999"}, "future"])
        assert errors["zero"] == ["error", {"type": "invalidArguments",
                                            "description": errors["zero"][1]["description"]}]
        for tag in ("bad", "mb", "future"):
            assert errors[tag][1]["type"] == "cannotCalculateChanges", (tag, errors[tag])


async def test_set_if_in_state_and_old_and_new_state(mail: Mail) -> None:
    """RFC 8620 section 5.3: ifInState other than the current state is stateMismatch and
    nothing changes; otherwise oldState is the state before and newState after."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        before = await _state(c, alice, "Mailbox")
        got = await _by_tag(
            c, ["Mailbox/set", {"accountId": alice, "ifInState": before + "x",
                                "create": {"a": {"name": "A"}}}, "stale"],
            ["Mailbox/set", {"accountId": alice, "ifInState": before,
                             "create": {"b": {"name": "B"}}}, "ok"],
            ["Mailbox/get", {"accountId": alice, "ids": None, "properties": ["name"]}, "g"])
        assert got["stale"][1]["type"] == "stateMismatch"
        assert got["ok"]["oldState"] == before != got["ok"]["newState"]
        assert got["g"]["state"] == got["ok"]["newState"]
        names = [m["name"] for m in got["g"]["list"]]
        assert "B" in names and "A" not in names


async def test_set_errors_name_their_type(mail: Mail) -> None:
    """RFC 8620 section 5.3 and RFC 8621 sections 2.5, 4.6, 8.2: invalidProperties with
    ``properties``, notFound, singleton, mailboxHasChild, mailboxHasEmail, overQuota
    (bob's quota, RFC 8621 4.6 via Email/import), per object, the others done."""
    alice, bob = mail.ids["alice"], mail.ids["bob"]
    [email] = await _deliver(mail, "kept")
    async with mail.client() as c:
        made = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "p": {"name": "Parent"}, "k": {"name": "Kid", "parentId": "#p"},
            "full": {"name": "Full"}}})
        parent, full = made["created"]["p"]["id"], made["created"]["full"]["id"]
        await one(c, "Email/set", {"accountId": alice,
                                   "update": {email: {f"mailboxIds/{full}": True}}})
        got = await _by_tag(
            c, ["Mailbox/set", {"accountId": alice,
                                "create": {"bad": {"name": "", "bogus": 1},
                                           "ro": {"name": "X", "totalEmails": 3}},
                                "update": {"nope": {"name": "y"}},
                                "destroy": [parent, full, "nope"]}, "m"])
        r = await c.post("/jmap/api", json={"using": [*USING, VACATION], "methodCalls": [
            ["VacationResponse/set", {"accountId": alice, "create": {"v": {}},
                                      "destroy": ["singleton"]}, "v"]]})
        got["v"] = r.json()["methodResponses"][0][1]
        m = got["m"]
        assert m["notCreated"]["bad"]["type"] == "invalidProperties"
        assert "bogus" in m["notCreated"]["bad"]["properties"]
        assert m["notCreated"]["ro"] == {"type": "invalidProperties", "properties":
                                         ["totalEmails"], "description":
                                         m["notCreated"]["ro"].get("description")}
        assert m["notUpdated"]["nope"]["type"] == "notFound"
        assert m["notDestroyed"][parent]["type"] == "mailboxHasChild"
        assert m["notDestroyed"][full]["type"] == "mailboxHasEmail"
        assert m["notDestroyed"]["nope"]["type"] == "notFound"
        assert m["created"] is None and m["destroyed"] is None
        email_create = await one(c, "Email/set", {"accountId": alice, "create": {
            "odd": {"mailboxIds": {"drafts": True}, "subject": "x", "bogus": 1},
            "set": {"mailboxIds": {"drafts": True}, "threadId": "T1"}}})
        assert email_create["notCreated"]["odd"]["type"] == "invalidProperties"
        assert email_create["notCreated"]["odd"]["properties"] == ["bogus"]
        assert email_create["notCreated"]["set"]["properties"] == ["threadId"]
        assert got["v"]["notCreated"]["v"]["type"] == "singleton"
        assert got["v"]["notDestroyed"]["singleton"]["type"] == "singleton"
    async with mail.client("bob") as c:
        big = await upload(c, bob, b"Subject: big\r\n\r\n" + b"x" * 4000 + b"\r\n")
        inbox = (await one(c, "Mailbox/query", {"accountId": bob,
                                                "filter": {"role": "inbox"}}))["ids"][0]
        got = await one(c, "Email/import", {"accountId": bob, "emails": {"i": {
            "blobId": big["blobId"], "mailboxIds": {inbox: True}}}})
        assert got["created"] is None
        assert got["notCreated"]["i"]["type"] == "overQuota"


async def test_mailbox_roles_and_parent_cycles(mail: Mail) -> None:
    """RFC 8621 section 2: a role is one of the IANA registry's, held by one mailbox at
    most; a mailbox cannot become its own ancestor (section 2.5: parentId must not
    form a loop) - each refusal is invalidProperties naming the property."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        made = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "a": {"name": "A"}, "b": {"name": "B", "parentId": "#a"},
            "c": {"name": "C", "parentId": "#b"}}})
        a, b = made["created"]["a"]["id"], made["created"]["b"]["id"]
        got = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "twin": {"name": "Inbox 2", "role": "inbox"},
            "odd": {"name": "Odd", "role": "not-a-role"}},
            "update": {a: {"parentId": made["created"]["c"]["id"]}, b: {"parentId": b}}})
        for key in ("twin", "odd"):
            assert got["notCreated"][key]["type"] == "invalidProperties"
            assert got["notCreated"][key]["properties"] == ["role"]
        for key in (a, b):
            assert got["notUpdated"][key]["type"] == "invalidProperties"
            assert got["notUpdated"][key]["properties"] == ["parentId"]
        tree = await one(c, "Mailbox/get", {"accountId": alice, "ids": [a, b],
                                            "properties": ["parentId", "isSubscribed"]})
        assert [m["parentId"] for m in tree["list"]] == [None, a]
        # section 2: isSubscribed SHOULD default to true for the user's new mailboxes
        assert made["created"]["a"]["isSubscribed"] is True
        assert [m["isSubscribed"] for m in tree["list"]] == [True, True]


async def test_email_keyword_and_mailbox_patches(mail: Mail) -> None:
    """RFC 8621 section 4.6 (with RFC 8620 5.3 patches): ``keywords/$seen: true`` sets
    one keyword, ``keywords/$seen: null`` clears it, ``mailboxIds/<id>: true`` adds a
    mailbox and ``mailboxIds/<id>: null`` removes one; an email left in no mailbox is
    invalidProperties (mailboxIds), as is a keyword value other than true; an update
    of an immutable property is invalidProperties."""
    alice = mail.ids["alice"]
    [email] = await _deliver(mail, "patched")

    async def update(patch: dict[str, Any]) -> dict[str, Any]:
        got = await _by_tag(c, ["Email/set", {"accountId": alice,
                                              "update": {email: patch}}, "s"],
                            ["Email/get", {"accountId": alice, "ids": [email],
                                           "properties": ["keywords", "mailboxIds"]}, "g"])
        return {"set": got["s"], "email": got["g"]["list"][0]}
    async with mail.client() as c:
        step = await update({"keywords/$seen": True, "keywords/$flagged": True})
        assert step["set"]["updated"] == {email: None}
        assert step["email"]["keywords"] == {"$seen": True, "$flagged": True}
        step = await update({"keywords/$flagged": None, "mailboxIds/archive": True})
        assert step["email"]["keywords"] == {"$seen": True}
        assert step["email"]["mailboxIds"] == {"inbox": True, "archive": True}
        step = await update({"mailboxIds/inbox": None})
        assert step["email"]["mailboxIds"] == {"archive": True}
        for patch, prop in (({"mailboxIds/archive": None}, "mailboxIds"),
                            ({"mailboxIds": {}}, "mailboxIds"),
                            ({"keywords/$seen": False}, "keywords"),
                            ({"subject": "changed"}, "subject")):
            step = await update(patch)
            error = step["set"]["notUpdated"][email]
            assert error["type"] == "invalidProperties" and error["properties"] == [prop]
        assert step["email"] == {"id": email, "keywords": {"$seen": True},
                                 "mailboxIds": {"archive": True}}


async def test_query_windows_anchor_and_total(mail: Mail) -> None:
    """RFC 8620 section 5.5: a negative position counts from the end; anchor with
    anchorOffset places the window (position ignored), an anchor not in the results is
    anchorNotFound; calculateTotal adds total; canCalculateChanges is given; RFC 8621
    4.4: collapseThreads is echoed."""
    alice = mail.ids["alice"]
    ids = await _deliver(mail, "q1", "q2", "q3", "q4")
    oldest_first = [{"property": "receivedAt", "isAscending": True}]
    base = {"accountId": alice, "sort": oldest_first}
    async with mail.client() as c:
        got = await _by_tag(
            c, ["Email/query", {**base, "position": -2, "calculateTotal": True}, "neg"],
            ["Email/query", {**base, "anchor": ids[2], "anchorOffset": -1, "limit": 2,
                             "position": 3}, "anchor"],
            ["Email/query", {**base, "anchor": "nope"}, "nf"],
            ["Email/query", {**base, "collapseThreads": True}, "collapse"],
            ["Email/query", {**base, "position": 10, "calculateTotal": True}, "past"])
        assert (got["neg"]["ids"], got["neg"]["position"], got["neg"]["total"]) == (
            ids[2:], 2, 4)
        assert isinstance(got["neg"]["canCalculateChanges"], bool)
        assert (got["anchor"]["ids"], got["anchor"]["position"]) == (ids[1:3], 1)
        assert got["nf"][1]["type"] == "anchorNotFound"
        assert got["collapse"]["collapseThreads"] is True
        assert got["collapse"]["ids"] == ids  # one thread each
        assert (got["past"]["ids"], got["past"]["total"]) == ([], 4)


async def test_query_changes_removed_added_up_to_id_and_limits(mail: Mail) -> None:
    """RFC 8620 section 5.6: since a queryState, ``removed`` holds every id that left
    (or may have moved) and ``added`` each id now in the results with its index;
    upToId stops at that id; more changes than maxChanges is tooManyChanges; an unknown
    queryState is cannotCalculateChanges."""
    alice = mail.ids["alice"]
    ids = await _deliver(mail, "c1", "c2", "c3")
    newest_first = {"accountId": alice, "sort": [{"property": "receivedAt",
                                                  "isAscending": False}]}
    async with mail.client() as c:
        before = await one(c, "Email/query", newest_first)
        assert before["canCalculateChanges"] is True
        state = before["queryState"]
        await one(c, "Email/set", {"accountId": alice, "destroy": [ids[1]]})
    new = await _deliver(mail, "c4", "c5")
    added = [i for i in new if i not in ids]
    async with mail.client() as c:
        got = await _by_tag(
            c, ["Email/queryChanges", {**newest_first, "sinceQueryState": state,
                                       "calculateTotal": True}, "all"],
            ["Email/queryChanges", {**newest_first, "sinceQueryState": state,
                                    "upToId": added[-1]}, "upto"],
            ["Email/queryChanges", {**newest_first, "sinceQueryState": state,
                                    "maxChanges": 1}, "few"],
            ["Email/queryChanges", {**newest_first, "sinceQueryState": "nope"}, "bad"],
            ["Email/query", newest_first, "now"])
        everything = got["all"]
        assert everything["oldQueryState"] == state
        assert everything["newQueryState"] == got["now"]["queryState"]
        assert ids[1] in everything["removed"]
        now = got["now"]["ids"]
        assert {a["id"] for a in everything["added"]} >= set(added)
        for item in everything["added"]:
            assert now[item["index"]] == item["id"]
        assert everything["total"] == len(now) == 4
        assert [a["id"] for a in got["upto"]["added"]] == [added[-1]]
        assert got["few"][1]["type"] == "tooManyChanges"
        assert got["bad"][1]["type"] == "cannotCalculateChanges"


async def test_import_thread_get_and_search_snippets(mail: Mail) -> None:
    """RFC 8621 section 4.8 (Email/import: created with id, blobId, threadId, size; a
    blob the account cannot read is blobNotFound), 3.1 (Thread/get: a reply joins its
    parent's thread, emailIds oldest first) and 5.1 (SearchSnippet/get: the search
    terms marked, an unknown email in notFound)."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        first = await upload(c, alice, b"Subject: cake\r\nMessage-ID: <p@x.test>\r\n"
                             b"From: a@x.test\r\n\r\nchocolate cake\r\n")
        reply = await upload(c, alice, b"Subject: Re: cake\r\nMessage-ID: <r@x.test>\r\n"
                             b"In-Reply-To: <p@x.test>\r\nFrom: b@x.test\r\n\r\nyes\r\n")
        got = await one(c, "Email/import", {"accountId": alice, "emails": {
            "p": {"blobId": first["blobId"], "mailboxIds": {"inbox": True},
                  "receivedAt": "2026-01-01T10:00:00Z"},
            "r": {"blobId": reply["blobId"], "mailboxIds": {"inbox": True},
                  "receivedAt": "2026-01-01T11:00:00Z"},
            "x": {"blobId": "0" * 64, "mailboxIds": {"inbox": True}}}})
        p, r = got["created"]["p"], got["created"]["r"]
        assert set(p) >= {"id", "blobId", "threadId", "size"}
        assert p["blobId"] == first["blobId"] and p["size"] == first["size"]
        assert got["notCreated"]["x"]["type"] == "blobNotFound"
        assert r["threadId"] == p["threadId"]
        refs = await _by_tag(
            c, ["Thread/get", {"accountId": alice, "ids": [p["threadId"]]}, "t"],
            ["SearchSnippet/get", {"accountId": alice, "filter": {"text": "chocolate"},
                                   "emailIds": [p["id"], "nope"]}, "s"])
        assert refs["t"]["list"] == [{"id": p["threadId"], "emailIds": [p["id"], r["id"]]}]
        [snippet] = refs["s"]["list"]
        assert snippet["emailId"] == p["id"]
        assert "<mark>chocolate</mark>" in (snippet["preview"] or "")
        assert refs["s"]["notFound"] == ["nope"]


async def test_email_and_thread_get_with_ids_null(tmp_path: Path) -> None:
    """RFC 8620 section 5.1: "If null, then all records of the data type are returned,
    if ... the number of records does not exceed the maxObjectsInGet limit" - RFC 8621
    lets neither Email/get nor Thread/get refuse it; past the limit it is
    requestTooLarge."""
    async with mail_node(tmp_path, "max_objects_in_get = 3\n") as m:
        alice = m.ids["alice"]
        ids = await _deliver(m, "n1", "n2", "n3")
        async with m.client() as c:
            await one(c, "Email/set", {"accountId": alice,
                                       "update": {ids[0]: {"mailboxIds/archive": True}}})
            got = await _by_tag(
                c, ["Email/get", {"accountId": alice, "ids": None,
                                  "properties": ["threadId"]}, "e"],
                ["Thread/get", {"accountId": alice, "ids": None}, "t"])
            assert sorted(e["id"] for e in got["e"]["list"]) == sorted(ids)
            assert got["e"]["notFound"] == []
            assert got["e"]["state"] == got["t"]["state"] == await _state(c, alice, "Email")
            threads = {e["threadId"]: [e["id"]] for e in got["e"]["list"]}
            assert sorted(got["t"]["list"], key=lambda t: t["id"]) == sorted(
                ({"id": t, "emailIds": e} for t, e in threads.items()), key=lambda t: t["id"])
        await _deliver(m, "n4")
        async with m.client() as c:
            got = await _by_tag(
                c, ["Email/get", {"accountId": alice, "ids": None}, "e"],
                ["Thread/get", {"accountId": alice, "ids": None}, "t"])
            assert got["e"][1]["type"] == "requestTooLarge"
            assert got["t"][1]["type"] == "requestTooLarge"


async def test_email_set_attachments_past_the_limit_are_too_large(tmp_path: Path) -> None:
    """RFC 8620 section 5.3 (tooLarge) with RFC 8621 section 1.3.1: attachments whose
    total is over maxSizeAttachmentsPerEmail make the create tooLarge; under it, it
    is created."""
    async with mail_node(tmp_path, "max_size_upload = 1000\n") as m:
        alice = m.ids["alice"]
        async with m.client() as c:
            session = (await c.get("/jmap/session")).json()
            cap = session["accounts"][alice]["accountCapabilities"][
                "urn:ietf:params:jmap:mail"]["maxSizeAttachmentsPerEmail"]
            assert cap == 1000
            blobs = [(await upload(c, alice, bytes([65 + i]) * 600,
                                   "application/octet-stream"))["blobId"] for i in range(2)]

            def email(*blob_ids: str) -> dict[str, Any]:
                return {"mailboxIds": {"drafts": True}, "subject": "files",
                        "attachments": [{"blobId": b, "type": "application/octet-stream",
                                         "name": f"{n}.bin"} for n, b in enumerate(blob_ids)]}
            got = await one(c, "Email/set", {"accountId": alice, "create": {
                "two": email(*blobs), "one": email(blobs[0])}})
            assert got["notCreated"]["two"]["type"] == "tooLarge"
            assert set(got["created"]) == {"one"}


async def test_mailbox_changes_and_updated_properties(mail: Mail) -> None:
    """RFC 8620 section 5.2 and RFC 8621 section 2.2: a mailbox created and destroyed
    since sinceState is in no list; a renamed mailbox is updated with
    updatedProperties null (not only counts changed); a delivery changes only counts,
    so updatedProperties names them."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        since = await _state(c, alice, "Mailbox")
        got = await _by_tag(
            c, ["Mailbox/set", {"accountId": alice, "create": {"k": {"name": "K"}}}, "c"],
            ["Mailbox/set", {"accountId": alice, "destroy": ["#k"]}, "d"],
            ["Mailbox/changes", {"accountId": alice, "sinceState": since}, "gone"],
            ["Mailbox/set", {"accountId": alice, "update": {"archive": {"name": "Old"}}},
             "u"],
            ["Mailbox/changes", {"accountId": alice, "sinceState": since}, "renamed"])
        assert got["d"]["destroyed"] == [got["c"]["created"]["k"]["id"]]
        gone = got["gone"]
        assert (gone["created"], gone["updated"], gone["destroyed"]) == ([], [], [])
        assert got["renamed"]["updated"] == ["archive"]
        assert got["renamed"]["updatedProperties"] is None
        counted = got["renamed"]["newState"]
    await mail.send("alice@example.com", "counts")
    async with mail.client() as c:
        after = await one(c, "Mailbox/changes", {"accountId": alice, "sinceState": counted})
        assert after["updated"] == ["inbox"]
        assert set(after["updatedProperties"]) == {"totalEmails", "unreadEmails",
                                                   "totalThreads", "unreadThreads"}


async def test_mailbox_role_set_and_cleared_by_update(mail: Mail) -> None:
    """RFC 8621 section 2: a role is not immutable, only held by one mailbox of the account
    at most; an update that would give a second mailbox a role is invalidProperties
    naming ``role``.  The inbox role stays with INBOX (IMAP's INBOX)."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        start = (await one(c, "Mailbox/get", {"accountId": alice, "ids": []}))["state"]
        made = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "o": {"name": "Old stuff"}}})
        mine = made["created"]["o"]["id"]
        roles = await one(c, "Mailbox/get", {"accountId": alice, "ids": None,
                                             "properties": ["role"]})
        by_role = {m["role"]: m["id"] for m in roles["list"] if m["role"]}
        taken = await one(c, "Mailbox/set", {"accountId": alice, "update": {
            mine: {"role": "archive"}, by_role["inbox"]: {"role": "trash"}}})
        assert taken["notUpdated"][mine]["type"] == "invalidProperties"
        assert taken["notUpdated"][mine]["properties"] == ["role"]
        assert taken["notUpdated"][by_role["inbox"]]["properties"] == ["role"]
        # the role moves: cleared on one mailbox, then given to the other
        moved = await one(c, "Mailbox/set", {"accountId": alice, "update": {
            by_role["archive"]: {"role": None}}})
        assert set(moved["updated"]) == {by_role["archive"]}
        moved = await one(c, "Mailbox/set", {"accountId": alice, "update": {
            mine: {"role": "archive"}}})
        assert set(moved["updated"]) == {mine}
        got = await one(c, "Mailbox/get", {"accountId": alice,
                                           "ids": [mine, by_role["archive"]],
                                           "properties": ["role"]})
        assert [m["role"] for m in got["list"]] == ["archive", None]
        query = await one(c, "Mailbox/query", {"accountId": alice,
                                               "filter": {"role": "archive"}})
        assert query["ids"] == [mine]
        changes = await one(c, "Mailbox/changes", {"accountId": alice, "sinceState": start})
        assert {mine, by_role["archive"]} <= set(changes["created"]) | set(changes["updated"])


async def test_the_inbox_keeps_its_role_name_and_place(mail: Mail) -> None:
    """RFC 8621 section 2 makes no role mandatory ("An account is not required to have
    Mailboxes with any particular roles") but does not oblige a server to let the inbox
    role go either: this server keeps it with INBOX, where delivery and IMAP put new
    mail (RFC 9051 section 5.1), as its policy.  The RFC allows that; what it asks is
    that the refusal be the policy SetError ``forbidden`` (RFC 8620 section 5.3) and
    that myRights tell the truth beforehand: mayRename and mayDelete are false on the
    inbox only.  Giving its role to a second mailbox breaks "there MUST NOT be two
    Mailboxes in the same account with the same role": invalidProperties (role)."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        made = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "o": {"name": "Other"}}})
        other = made["created"]["o"]["id"]
        assert made["created"]["o"]["myRights"]["mayDelete"] is True
        listed = await one(c, "Mailbox/get", {"accountId": alice, "ids": None,
                                              "properties": ["role", "myRights", "name"]})
        [inbox] = [m for m in listed["list"] if m["role"] == "inbox"]
        for box in listed["list"]:
            rights = box["myRights"]
            own = box["role"] != "inbox"
            assert (rights["mayRename"], rights["mayDelete"]) == (own, own), box
            assert rights["mayReadItems"] and rights["mayAddItems"]
        [archive] = [m["id"] for m in listed["list"] if m["role"] == "archive"]
        got = await _by_tag(
            c, ["Mailbox/set", {"accountId": alice, "update": {
                inbox["id"]: {"role": None}}}, "clear"],
            ["Mailbox/set", {"accountId": alice, "update": {
                inbox["id"]: {"role": "archive"}}}, "taken"],
            ["Mailbox/set", {"accountId": alice, "update": {
                archive: {"role": None}}}, "free"],
            ["Mailbox/set", {"accountId": alice, "update": {
                inbox["id"]: {"role": "archive"}}}, "swap"],
            ["Mailbox/set", {"accountId": alice, "update": {
                inbox["id"]: {"name": "Post"}}}, "rename"],
            ["Mailbox/set", {"accountId": alice, "update": {
                inbox["id"]: {"parentId": other}}}, "move"],
            ["Mailbox/set", {"accountId": alice, "update": {
                other: {"role": "inbox"}}}, "give"],
            ["Mailbox/set", {"accountId": alice, "destroy": [inbox["id"]]}, "destroy"],
            ["Mailbox/get", {"accountId": alice, "ids": [inbox["id"], other],
                             "properties": ["role", "name", "parentId"]}, "after"])
        for tag in ("clear", "swap", "rename", "move"):
            assert got[tag]["updated"] is None, got[tag]
            assert got[tag]["notUpdated"][inbox["id"]]["type"] == "forbidden", got[tag]
        assert got["free"]["updated"] == {archive: None}
        for tag, key in (("give", other), ("taken", inbox["id"])):
            assert got[tag]["notUpdated"][key]["type"] == "invalidProperties", got[tag]
            assert got[tag]["notUpdated"][key]["properties"] == ["role"]
        assert got["destroy"]["notDestroyed"][inbox["id"]]["type"] == "forbidden"
        assert got["after"]["list"] == [
            {"id": inbox["id"], "role": "inbox", "name": inbox["name"], "parentId": None},
            {"id": other, "role": None, "name": "Other", "parentId": None}]


async def test_mailbox_sort_order_is_kept_and_sorts(mail: Mail) -> None:
    """RFC 8621 section 2: sortOrder "UnsignedInt (default: 0)" is the client's to set,
    "an integer in the range 0 <= sortOrder < 2^31" (other values invalidProperties);
    section 2.3: Mailbox/query sorts by it, ascending unless told; an update of it is
    a Mailbox/changes update."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        made = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "z": {"name": "zzz", "sortOrder": 1}, "x": {"name": "xxx", "sortOrder": 2},
            "y": {"name": "yyy", "sortOrder": 3},
            "big": {"name": "big", "sortOrder": 2**31},
            "neg": {"name": "neg", "sortOrder": -1},
            "odd": {"name": "odd", "sortOrder": "1"}}})
        for key in ("big", "neg", "odd"):
            assert made["notCreated"][key]["type"] == "invalidProperties", key
            assert made["notCreated"][key]["properties"] == ["sortOrder"], key
        z, x, y = (made["created"][k]["id"] for k in ("z", "x", "y"))
        got = await one(c, "Mailbox/get", {"accountId": alice, "ids": [z, x, y],
                                           "properties": ["sortOrder"]})
        assert [m["sortOrder"] for m in got["list"]] == [1, 2, 3]
        ours = {"operator": "OR", "conditions": [{"name": n} for n in ("zzz", "xxx",
                                                                       "yyy")]}
        query = await one(c, "Mailbox/query", {"accountId": alice, "filter": ours,
                                               "sort": [{"property": "sortOrder"}]})
        assert query["ids"] == [z, x, y]
        state = (await one(c, "Mailbox/get", {"accountId": alice, "ids": []}))["state"]
        moved = await one(c, "Mailbox/set", {"accountId": alice, "update": {
            z: {"sortOrder": 9}, x: {"sortOrder": 2**31}}})
        assert set(moved["updated"]) == {z}
        assert moved["notUpdated"][x]["properties"] == ["sortOrder"]
        query = await one(c, "Mailbox/query", {"accountId": alice, "filter": ours,
                                               "sort": [{"property": "sortOrder",
                                                         "isAscending": False}]})
        assert query["ids"] == [z, y, x]
        changed = await one(c, "Mailbox/changes", {"accountId": alice,
                                                   "sinceState": state})
        assert changed["updated"] == [z]
        assert changed["updatedProperties"] is None  # section 2.2: not the counts only


async def test_mailbox_roles_of_the_registry(mail: Mail) -> None:
    """RFC 8621 section 2: a role is a name of the IANA "IMAP Mailbox Name Attributes"
    registry in lowercase.  "important" (RFC 8457) may be given, once per account; the
    registry's names that no mailbox of ours can honour - views of other mailboxes
    (all, flagged) and attributes that are no purpose (subscribed, haschildren,
    noselect) - a name not in lowercase and one not in the registry are
    invalidProperties naming role."""
    alice = mail.ids["alice"]
    async with mail.client() as c:
        refused = ("all", "flagged", "subscribed", "haschildren", "noselect", "Important",
                   "inbox2")
        made = await one(c, "Mailbox/set", {"accountId": alice, "create": {
            "key": {"name": "Key", "role": "important"},
            "twin": {"name": "Twin", "role": "important"},
            **{role: {"name": f"R {role}", "role": role} for role in refused}}})
        assert set(made["created"]) == {"key"}, made
        assert made["created"]["key"]["role"] == "important"
        for key in ("twin", *refused):
            assert made["notCreated"][key]["type"] == "invalidProperties", key
            assert made["notCreated"][key]["properties"] == ["role"], key
        query = await one(c, "Mailbox/query", {"accountId": alice,
                                               "filter": {"role": "important"}})
        assert query["ids"] == [made["created"]["key"]["id"]]
