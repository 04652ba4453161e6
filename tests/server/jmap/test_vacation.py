"""VacationResponse (RFC 8621 section 8) through a real node: /get and /set of the
singleton, and the auto-reply sent on delivery (RFC 3834, RFC 5230): once per sender,
never to lists, bulk or automatic mail, to remote senders through the outbound queue
and to local ones through delivery."""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fdb_layers.engine.run import transact
from fdb_layers.queue import list_messages as list_queue
from tests.server.jmap.test_mail import Mail
from tests.server.jmap.test_submission import NO_WORKERS, draft, identity, roles
from tests.server.jmap.writes import calls, mail_node, one
from tests.support.mailbox import inbox_messages

VACATION = "urn:ietf:params:jmap:vacationresponse"


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path, NO_WORKERS) as m:
        yield m


async def vacation(c: httpx.AsyncClient, account: str, **values: Any) -> dict[str, Any]:
    r = await c.post("/jmap/api", json={
        "using": ["urn:ietf:params:jmap:core", VACATION], "methodCalls": [
            ["VacationResponse/set", {"accountId": account,
                                      "update": {"singleton": values}}, "0"]]})
    [[name, got, _]] = r.json()["methodResponses"]
    assert name == "VacationResponse/set", got
    out: dict[str, Any] = got
    return out


def smtp_send(port: int, sender: str, to: str, subject: str, extra: str = "") -> None:
    message = (f"From: {sender or 'daemon@remote.test'}\r\nTo: {to}\r\nSubject: {subject}\r\n"
               f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\r\n{extra}"
               "\r\nHello\r\n").encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail(sender, [to], message)


async def send(mail: Mail, sender: str, subject: str, extra: str = "",
               to: str = "bob@example.com") -> None:
    await asyncio.to_thread(smtp_send, mail.node.ports["mx"], sender, to, subject, extra)


async def replies(mail: Mail) -> list[tuple[str, list[str], bytes]]:
    assert mail.node.engine is not None and mail.node.blobs is not None
    out = []
    for m in await transact(mail.node.engine, list_queue):
        out.append((m.sender, [r.address for r in m.recipients],
                    await mail.node.blobs.get(m.blob_id)))
    return out


async def test_get_and_set_the_singleton(mail: Mail) -> None:
    """Section 8.1, 8.2: one object, id "singleton"; create and destroy are refused
    with ``singleton``; updates are checked and move the state."""
    bob = mail.ids["bob"]
    using = ["urn:ietf:params:jmap:core", VACATION]
    async with mail.client("bob") as c:
        async def api(*method_calls: list[Any]) -> list[Any]:
            r = await c.post("/jmap/api", json={"using": using,
                                                "methodCalls": list(method_calls)})
            return list(r.json()["methodResponses"])
        [[_, first, _]] = await api(["VacationResponse/get", {"accountId": bob,
                                                              "ids": None}, "0"])
        [[_, made, _]] = await api(["VacationResponse/set", {
            "accountId": bob, "ifInState": first["state"],
            "create": {"x": {"isEnabled": True}}, "destroy": ["singleton"],
            "update": {"singleton": {"isEnabled": True, "subject": "Away",
                                     "fromDate": "2026-01-01T00:00:00Z",
                                     "textBody": "Back in January."},
                       "other": {"isEnabled": True}}}, "1"])
        [[_, bad, _]] = await api(["VacationResponse/set", {"accountId": bob, "update": {
            "singleton": {"toDate": "tomorrow"}}}, "2"])
        [[_, stale, _]] = await api(["VacationResponse/set", {
            "accountId": bob, "ifInState": first["state"],
            "update": {"singleton": {"isEnabled": False}}}, "3"])
        [[_, after, _]] = await api(["VacationResponse/get", {"accountId": bob,
                                                              "ids": ["singleton", "x"]},
                                     "4"])
        [[name, unused, _]] = await calls(c, ["VacationResponse/get", {"accountId": bob},
                                              "5"])
    assert first["list"] == [{"id": "singleton", "isEnabled": False, "fromDate": None,
                              "toDate": None, "subject": None, "textBody": None,
                              "htmlBody": None}]
    assert made["notCreated"]["x"]["type"] == "singleton"
    assert made["notDestroyed"]["singleton"]["type"] == "singleton"
    assert made["notUpdated"]["other"]["type"] == "notFound"
    assert made["updated"] == {"singleton": None} and made["newState"] != first["state"]
    assert bad["notUpdated"]["singleton"]["properties"] == ["toDate"]
    assert stale["type"] == "stateMismatch"
    assert after["list"][0] == {"id": "singleton", "isEnabled": True,
                                "fromDate": "2026-01-01T00:00:00Z", "toDate": None,
                                "subject": "Away", "textBody": "Back in January.",
                                "htmlBody": None}
    assert after["notFound"] == ["x"] and after["state"] == made["newState"]
    # RFC 8620 3.6.2: without the capability in "using", the method is unknown
    assert name == "error" and unused["type"] == "unknownMethod"


async def test_a_remote_sender_is_answered_once(mail: Mail) -> None:
    """RFC 3834 sections 3.1.5, 3.1.7, 3.3, 5: In-Reply-To/References, "Re:" subject,
    Auto-Submitted: auto-replied, null reverse-path; RFC 5230 4.2: once per period."""
    async with mail.client("bob") as c:
        await vacation(c, mail.ids["bob"], isEnabled=True, textBody="Back Monday.")
    await send(mail, "carol@remote.test", "Project plan")
    await send(mail, "carol@remote.test", "Project plan again")
    [(sender, recipients, raw)] = await replies(mail)
    assert sender == "" and recipients == ["carol@remote.test"]
    reply = email.message_from_bytes(raw, policy=email.policy.default)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["Subject"] == "Re: Project plan"
    assert reply["In-Reply-To"] == "<Project.plan@remote.test>"
    assert reply["References"] == "<Project.plan@remote.test>"
    assert reply["From"] == "bob@example.com" and reply["To"] == "carol@remote.test"
    assert reply.get_body().get_content().strip() == "Back Monday."
    assert len(await inbox_messages(mail.node.engine, mail.node.blobs,
                                    mail.ids["bob"])) == 2


@pytest.mark.parametrize("sender, extra", [
    ("news@remote.test", "List-Id: <news.remote.test>\r\n"),
    ("news@remote.test", "List-Unsubscribe: <mailto:leave@remote.test>\r\n"),
    ("promo@remote.test", "Precedence: bulk\r\n"),
    ("robot@remote.test", "Auto-Submitted: auto-generated\r\n"),
    ("owner-list@remote.test", ""),
    ("mailer-daemon@remote.test", ""),
    ("", ""),  # a null reverse-path (a bounce)
    ("bob@example.com", ""),  # the account itself
])
async def test_lists_bulk_and_automatic_mail_get_no_reply(mail: Mail, sender: str,
                                                          extra: str) -> None:
    """RFC 3834 section 2 and RFC 5230 section 4.5: never to lists, bulk mail,
    automatic messages or their senders, bounces, or the account itself."""
    async with mail.client("bob") as c:
        await vacation(c, mail.ids["bob"], isEnabled=True)
    await send(mail, sender, "Newsletter", extra)
    assert await replies(mail) == []
    # nothing delivered locally either: only the message itself is in the inbox
    assert len(await inbox_messages(mail.node.engine, mail.node.blobs,
                                    mail.ids["bob"])) == 1


async def test_not_addressed_disabled_or_out_of_dates_get_no_reply(mail: Mail) -> None:
    """RFC 5230 section 4.5 (only mail addressed to the user) and RFC 8621 section 8
    (fromDate/toDate, isEnabled)."""
    bob = mail.ids["bob"]
    async with mail.client("bob") as c:
        await vacation(c, bob, isEnabled=False)
        await send(mail, "a@remote.test", "Disabled")
        await vacation(c, bob, isEnabled=True, toDate="2020-01-01T00:00:00Z")
        await send(mail, "b@remote.test", "Over")
        await vacation(c, bob, isEnabled=True, toDate=None, fromDate="2999-01-01T00:00:00Z")
        await send(mail, "c@remote.test", "Not yet")
        await vacation(c, bob, fromDate=None)

        def bcc_only() -> None:
            message = (b"From: d@remote.test\r\nTo: team@remote.test\r\n"
                       b"Subject: bcc\r\n\r\nhi\r\n")
            with smtplib.SMTP("127.0.0.1", mail.node.ports["mx"], timeout=30) as s:
                s.sendmail("d@remote.test", ["bob@example.com"], message)
        await asyncio.to_thread(bcc_only)
    assert await replies(mail) == []
    assert len(await inbox_messages(mail.node.engine, mail.node.blobs, bob)) == 4


async def test_a_local_sender_gets_the_reply_in_the_inbox(mail: Mail) -> None:
    """A submission from alice to bob (section 7) is answered into alice's inbox through
    delivery, not the queue; the reply is never answered back (Auto-Submitted)."""
    alice = mail.ids["alice"]
    async with mail.client("alice") as a, mail.client("bob") as b:
        await vacation(a, alice, isEnabled=True, subject="Alice is away")
        await vacation(b, mail.ids["bob"], isEnabled=True, subject="Bob is away",
                       htmlBody="<p>Bob is <b>away</b></p>")
        boxes = await roles(a, alice)
        email_id = await draft(a, alice, boxes["drafts"])
        made = await one(a, "EmailSubmission/set", {"accountId": alice, "create": {
            "s": {"identityId": await identity(a, alice), "emailId": email_id}}})
    assert made["created"]["s"]["id"]
    [raw] = await inbox_messages(mail.node.engine, mail.node.blobs, alice)
    reply = email.message_from_bytes(raw, policy=email.policy.default)
    assert reply["Return-Path"] == "<>" and reply["Auto-Submitted"] == "auto-replied"
    assert reply["Subject"] == "Bob is away" and reply["To"] == "alice@example.com"
    assert "away" in reply.get_body(("html",)).get_content()
    assert len(await inbox_messages(mail.node.engine, mail.node.blobs,
                                    mail.ids["bob"])) == 1
    assert await replies(mail) == []


async def test_dates_are_utc_dates(mail: Mail) -> None:
    """Section 8: fromDate and toDate are UTCDate|null; RFC 8620 section 1.4: a UTCDate's
    time-offset is "Z", its letters uppercase, its time-secfrac omitted if zero.  Any
    other form is invalidProperties and changes nothing."""
    bob = mail.ids["bob"]
    async with mail.client("bob") as c:
        refused = {}
        for value in ("2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+01:00",
                      "2026-01-01t00:00:00z", "2026-01-01T00:00:00.000Z",
                      "2026-01-01", "2026-01-01 00:00:00Z"):
            refused[value] = await vacation(c, bob, fromDate=value)
        ok = await vacation(c, bob, fromDate="2026-01-01T00:00:00Z",
                            toDate="2026-02-01T12:30:00Z")
        r = await c.post("/jmap/api", json={
            "using": ["urn:ietf:params:jmap:core", VACATION], "methodCalls": [
                ["VacationResponse/get", {"accountId": bob, "ids": ["singleton"]}, "0"]]})
        [[_, got, _]] = r.json()["methodResponses"]
    for value, answer in refused.items():
        error = answer["notUpdated"]["singleton"]
        assert error["type"] == "invalidProperties" and error["properties"] == [
            "fromDate"], value
    assert ok["updated"] == {"singleton": None}
    assert (got["list"][0]["fromDate"], got["list"][0]["toDate"]) == (
        "2026-01-01T00:00:00Z", "2026-02-01T12:30:00Z")
