"""Email/get's body and header properties (RFC 8621 sections 4.1 and 4.2) through a real
node, for messages delivered over SMTP: the JSON answered is the one rendered from the
stored octets, part blob ids download, a broken message is served, not refused."""

from __future__ import annotations

from typing import Any

from server.jmap.email_body import BytesReader
from server.jmap.email_get import DEFAULT_PROPERTIES, render_email, view_arg
from server.mime import parse_message
from tests.server.jmap.messages import ALTERNATIVE, BROKEN, NESTED
from tests.server.jmap.test_download import deliver, only_email, url
from tests.server.jmap.test_mail import Mail, error, mail, one

__all__ = ["mail"]

EVERYTHING = ["id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
              "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc",
              "replyTo", "subject", "sentAt", "hasAttachment", "preview", "headers",
              "bodyStructure", "textBody", "htmlBody", "attachments", "bodyValues",
              "header:List-Unsubscribe:asURLs", "header:To:asGroupedAddresses:all"]


async def test_every_property_of_a_delivered_message(mail: Mail) -> None:
    await deliver(mail, ALTERNATIVE)
    async with mail.client() as c:
        args: dict[str, Any] = {"properties": EVERYTHING, "fetchAllBodyValues": True,
                                "bodyProperties": ["partId", "blobId", "size", "type",
                                                   "name", "headers", "header:Content-Type"]}
        email = await only_email(mail, c, **args)
        assert list(email) == EVERYTHING
        stored = (await c.get(url(mail, email["blobId"]))).content
        # what the node answers is what the stored message renders to
        view = view_arg(args, DEFAULT_PROPERTIES)
        rendered = await render_email(parse_message(stored), email["blobId"],
                                      BytesReader(stored), view)
        for name in EVERYTHING[7:]:
            assert email[name] == rendered[name], name
        assert email["subject"] == "Réunion de lundi"
        assert email["header:List-Unsubscribe:asURLs"] == [
            "mailto:leave@remote.test", "https://remote.test/leave"]
        assert email["header:To:asGroupedAddresses:all"][0][0]["name"] == "Team"
        assert email["headers"][-1] == {"name": "Content-Type",
                                        "value": " multipart/mixed; boundary=outer"}
        assert email["mailboxIds"] and email["keywords"] == {}
        assert sorted(email["bodyValues"]) == ["1.1", "1.2"]
        for part in (*email["textBody"], *email["htmlBody"], *email["attachments"]):
            got = await c.get(url(mail, part["blobId"]))
            assert got.status_code == 200 and len(got.content) == part["size"]


async def test_default_properties_and_argument_errors(mail: Mail) -> None:
    await deliver(mail, NESTED)
    account = mail.ids["alice"]
    async with mail.client() as c:
        email = await only_email(mail, c, properties=None)
        assert list(email) == list(DEFAULT_PROPERTIES)
        assert email["bodyValues"] == {}
        assert [p["type"] for p in email["attachments"]] == ["message/rfc822"]
        for bad in ({"properties": ["header:From:asDate"]},
                    {"properties": ["header:X:asSomething"]},
                    {"bodyProperties": ["bodyStructure"]},
                    {"maxBodyValueBytes": -1}, {"maxBodyValueBytes": 1.5},
                    {"fetchTextBodyValues": "yes"}):
            assert await error(c, "Email/get", {"accountId": account,
                                                "ids": [email["id"]], **bad}) \
                == "invalidArguments", bad
    async with mail.client("bob") as bob:
        got = await one(bob, "Email/get", {"accountId": mail.ids["bob"],
                                           "ids": [email["id"]], "properties": ["headers"]})
        assert got["list"] == [] and got["notFound"] == [email["id"]]


async def test_a_broken_message_is_served(mail: Mail) -> None:
    await deliver(mail, BROKEN)
    async with mail.client() as c:
        email = await only_email(mail, c, properties=[
            "subject", "from", "sentAt", "bodyStructure", "bodyValues", "textBody",
            "header:Subject:asText"], fetchAllBodyValues=True)
    assert email["sentAt"] is None
    assert email["subject"] == email["header:Subject:asText"]
    assert [p["partId"] for p in email["textBody"]] == ["1", "2"]
    assert email["bodyValues"]["1"]["isEncodingProblem"] is True
    assert email["bodyValues"]["2"]["isEncodingProblem"] is True
