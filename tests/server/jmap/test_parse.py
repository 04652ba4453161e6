"""Email/parse (RFC 8621 section 4.10) through a real node: an attached message parsed
into an Email, its parts downloadable; a blob that is not a message is notParsable, an
unknown one or another account's notFound."""

from __future__ import annotations

from tests.server.jmap.messages import ALTERNATIVE, NESTED
from tests.server.jmap.test_download import deliver, only_email, url
from tests.server.jmap.test_mail import Mail, error, mail, one

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

__all__ = ["mail"]


async def test_parse_an_attached_message(mail: Mail) -> None:
    await deliver(mail, NESTED)
    account = mail.ids["alice"]
    async with mail.client() as c:
        email = await only_email(mail, c, properties=["attachments"])
        blob = email["attachments"][0]["blobId"]
        got = await one(c, "Email/parse", {"accountId": account, "blobIds": [blob],
                                           "fetchTextBodyValues": True})
        assert got["notFound"] is None and got["notParsable"] is None
        parsed = got["parsed"][blob]
        # section 4.10: the default properties, none of the store's
        assert sorted(parsed) == sorted([
            "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc",
            "replyTo", "subject", "sentAt", "hasAttachment", "preview", "bodyValues",
            "textBody", "htmlBody", "attachments"])
        assert parsed["subject"] == "Lunch?"
        assert parsed["from"] == [{"name": "Frank", "email": "frank@remote.test"}]
        assert parsed["messageId"] == ["lunch-1@remote.test"]
        assert parsed["sentAt"] == "2026-03-03T09:59:58+01:00"
        assert parsed["preview"] == "Noon at the usual place?"
        [text] = parsed["textBody"]
        assert parsed["bodyValues"][text["partId"]]["value"] == "Noon at the usual place?"
        part = await c.get(url(mail, text["blobId"]))
        assert part.status_code == 200 and part.content == b"Noon at the usual place?"
        size = len((await c.get(url(mail, blob))).content)
        store = await one(c, "Email/parse", {"accountId": account, "blobIds": [blob],
                                             "properties": ["id", "blobId", "threadId",
                                                            "mailboxIds", "size"]})
        assert store["parsed"][blob] == {"id": None, "blobId": blob, "threadId": None,
                                         "mailboxIds": None, "size": size}


async def test_parse_the_whole_message_and_errors(mail: Mail) -> None:
    await deliver(mail, ALTERNATIVE)
    account = mail.ids["alice"]
    async with mail.client() as c:
        email = await only_email(mail, c, properties=["blobId", "attachments", "subject"])
        pdf = email["attachments"][0]["blobId"]
        got = await one(c, "Email/parse", {
            "accountId": account, "properties": ["subject", "header:X-Tag:all"],
            "blobIds": [email["blobId"], pdf, "0" * 64, f"{email['blobId']}_7"]})
        assert got["parsed"] == {email["blobId"]: {"subject": email["subject"],
                                                   "header:X-Tag:all": [" one", " two"]}}
        assert got["notParsable"] == [pdf]
        assert got["notFound"] == ["0" * 64, f"{email['blobId']}_7"]
        assert await error(c, "Email/parse", {"accountId": account}) == "invalidArguments"
        assert await error(c, "Email/parse", {"accountId": account, "blobIds": [],
                                              "properties": ["header:From:asDate"]}) \
            == "invalidArguments"
    async with mail.client("bob") as bob:
        got = await one(bob, "Email/parse", {"accountId": mail.ids["bob"],
                                             "blobIds": [email["blobId"], pdf]})
        assert got["notFound"] == [email["blobId"], pdf] and got["parsed"] is None
