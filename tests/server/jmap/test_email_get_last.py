"""Email/get's convenience header properties take the last instance of a repeated
field (RFC 8621 section 4.1.3), and body part blobIds (bodyStructure) are blobs like
any other: Blob/get, Blob/lookup, Blob/copy, Blob/upload sources (RFC 9404),
Email/parse (RFC 8621 section 4.9) and download (RFC 8620 section 6.2), through a
real node with messages delivered over SMTP."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from server.mime import MessageSummary, parse_message
from tests.server.jmap.messages import ALTERNATIVE, AGENDA_PDF, NESTED, crlf
from tests.server.jmap.test_download import deliver, only_email, url
from tests.server.jmap.test_mail import Mail, mail, one
from tests.server.jmap.writes import calls
from tests.server.jmap.writes import one as one_blob

__all__ = ["mail"]

BLOB = "urn:ietf:params:jmap:blob"
CONVENIENCE = ["messageId", "inReplyTo", "references", "sender", "from", "to", "cc",
               "bcc", "replyTo", "subject", "sentAt"]

REPEATED = crlf(
    "From: First <first@remote.test>\n"
    "Sender: S1 <s1@remote.test>\n"
    "To: one@example.com\n"
    "Cc: c1@remote.test\n"
    "Bcc: b1@remote.test\n"
    "Reply-To: r1@remote.test\n"
    "Subject: first subject\n"
    "Date: Mon, 01 Jun 2026 10:00:00 +0000\n"
    "Message-ID: <first@remote.test>\n"
    "In-Reply-To: <p1@remote.test>\n"
    "References: <p1@remote.test>\n"
    "From: Last <last@remote.test>\n"
    "Sender: S2 <s2@remote.test>\n"
    "To: alice@example.com\n"
    "Cc: c2@remote.test\n"
    "Bcc: b2@remote.test\n"
    "Reply-To: r2@remote.test\n"
    "Subject: last subject\n"
    "Date: Tue, 02 Jun 2026 11:00:00 +0200\n"
    "Message-ID: <last@remote.test>\n"
    "In-Reply-To: <p2@remote.test>\n"
    "References: <p2@remote.test>\n"
    "\n"
    "Which one?\n"
)

LAST = {"messageId": ["last@remote.test"], "inReplyTo": ["p2@remote.test"],
        "references": ["p2@remote.test"],
        "sender": [{"name": "S2", "email": "s2@remote.test"}],
        "from": [{"name": "Last", "email": "last@remote.test"}],
        "to": [{"name": None, "email": "alice@example.com"}],
        "cc": [{"name": None, "email": "c2@remote.test"}],
        "bcc": [{"name": None, "email": "b2@remote.test"}],
        "replyTo": [{"name": None, "email": "r2@remote.test"}],
        "subject": "last subject", "sentAt": "2026-06-02T11:00:00+02:00"}


async def test_repeated_fields_give_their_last_instance(mail: Mail) -> None:
    """RFC 8621 4.1.3: each convenience property is its header:{name}:as{Form}, which
    uses the last instance of the field (4.1.3, "header:{header-field-name}")."""
    await deliver(mail, REPEATED, to="alice@example.com")
    async with mail.client() as c:
        email = await only_email(mail, c, properties=[
            *CONVENIENCE, "blobId", "header:Subject:all", "header:From:asAddresses"])
        assert {p: email[p] for p in CONVENIENCE} == LAST
        assert email["header:Subject:all"] == [" first subject", " last subject"]
        assert email["header:From:asAddresses"] == LAST["from"]
        # Email/parse of the same octets agrees
        parsed = await one(c, "Email/parse", {"accountId": mail.ids["alice"],
                                              "blobIds": [email["blobId"]],
                                              "properties": CONVENIENCE})
        [got] = parsed["parsed"].values()
        assert got == LAST


def test_the_summary_names_the_repeated_fields_and_keeps_them_stored() -> None:
    summary = parse_message(REPEATED)
    assert summary.envelope.repeated == (
        "bcc", "cc", "date", "from", "in-reply-to", "message-id", "references",
        "reply-to", "sender", "subject", "to")
    assert summary.envelope.subject == "first subject"  # IMAP's ENVELOPE: the first
    again = MessageSummary.from_bytes(summary.to_bytes())
    assert again.envelope.repeated == summary.envelope.repeated
    assert parse_message(NESTED).envelope.repeated == ()


def _leaves(part: dict[str, Any]) -> list[dict[str, Any]]:
    if part.get("subParts"):
        return [leaf for p in part["subParts"] for leaf in _leaves(p)]
    return [part]


async def test_body_part_blob_ids_work_in_blob_methods_parse_and_download(
        mail: Mail) -> None:
    """RFC 9404 4.2 (Blob/get), 4.3 (Blob/lookup), 4.1 (Blob/upload data sources),
    RFC 8620 6.3 (Blob/copy): a part's blobId reads as its download, decoded."""
    await deliver(mail, ALTERNATIVE)
    account = mail.ids["alice"]
    async with mail.client() as c:
        email = await only_email(mail, c, properties=["id", "threadId", "bodyStructure"])
        leaves = _leaves(email["bodyStructure"])
        assert [p["type"] for p in leaves] == ["text/plain", "text/html", "application/pdf"]
        ids = [p["blobId"] for p in leaves]
        got = await one_blob(c, "Blob/get", {
            "accountId": account, "ids": ids,
            "properties": ["data:asBase64", "size", "digest:sha-256"]})
        assert got["notFound"] == []
        for part, blob in zip(leaves, got["list"], strict=True):
            downloaded = (await c.get(url(mail, part["blobId"]))).content
            assert base64.b64decode(blob["data:asBase64"]) == downloaded
            assert blob["size"] == len(downloaded)
            assert blob["digest:sha-256"] == base64.b64encode(
                hashlib.sha256(downloaded).digest()).decode()
        pdf = ids[2]
        assert base64.b64decode(got["list"][2]["data:asBase64"]) == AGENDA_PDF
        ranged = await one_blob(c, "Blob/get", {"accountId": account, "ids": [pdf],
                                           "offset": 1, "length": 3,
                                           "properties": ["data:asText"]})
        assert ranged["list"][0]["data:asText"] == AGENDA_PDF[1:4].decode()

        lookup = await one_blob(c, "Blob/lookup", {"accountId": account,
                                              "typeNames": ["Email", "Thread"],
                                              "ids": [pdf]})
        assert lookup["list"] == [{"id": pdf, "matchedIds": {
            "Email": [email["id"]], "Thread": [email["threadId"]]}}]
        copied = await one_blob(c, "Blob/copy", {"fromAccountId": account,
                                            "accountId": account, "blobIds": [pdf]})
        assert copied["copied"] == {pdf: pdf}
        [_, (_, made, _)] = await calls(
            c, ["Blob/upload", {"accountId": account, "create": {"b": {"data": [
                {"blobId": pdf, "offset": 0, "length": 4}]}}}, "u"],
            ["Blob/get", {"accountId": account, "ids": ["#b"],
                          "properties": ["data:asText"]}, "g"])
        assert made["list"][0]["data:asText"] == "%PDF"


async def test_a_part_blob_id_of_an_attached_message_parses(mail: Mail) -> None:
    await deliver(mail, NESTED)
    account = mail.ids["alice"]
    async with mail.client() as c:
        email = await only_email(mail, c, properties=["bodyStructure"])
        attached = [p for p in _leaves(email["bodyStructure"])
                    if p["type"] == "message/rfc822"]
        [blob] = [p["blobId"] for p in attached]
        parsed = await one(c, "Email/parse", {"accountId": account, "blobIds": [blob],
                                              "properties": ["subject", "from"]})
        assert parsed["parsed"][blob]["subject"] == "Lunch?"
        got = await one_blob(c, "Blob/get", {"accountId": account, "ids": [blob],
                                        "properties": ["data:asText"]})
        assert got["list"][0]["data:asText"].startswith("From: Frank")


async def test_part_blob_ids_of_another_account_or_made_up_are_not_found(
        mail: Mail) -> None:
    await deliver(mail, ALTERNATIVE)
    async with mail.client() as c:
        email = await only_email(mail, c, properties=["bodyStructure"])
    pdf = _leaves(email["bodyStructure"])[2]["blobId"]
    sha = pdf.split("_")[0]
    async with mail.client("bob") as c:
        got = await one_blob(c, "Blob/get", {"accountId": mail.ids["bob"], "ids": [pdf, sha]})
        assert got["list"] == [] and got["notFound"] == [pdf, sha]
        r = await c.get(url(mail, pdf, user="bob"))
        assert r.status_code == 404
    async with mail.client() as c:
        bogus = [f"{sha}_9", f"{sha}_1_1_1_1", f"{sha}_", f"{sha}_x", "_1", f"{sha}_1"]
        got = await one_blob(c, "Blob/get", {"accountId": mail.ids["alice"], "ids": bogus})
        # part 1 is the multipart/alternative container: no blob of its own
        assert got["list"] == [] and got["notFound"] == bogus


async def test_list_view_properties_agree_with_the_full_render(mail: Mail) -> None:
    """RFC 8621 4.1.3 and 4.2: Email/get of header convenience and record properties only
    (a list view, answered from the summary's envelope without its parts) gives the last
    instance of a repeated field, and the same values as when a body property is asked
    for too (which renders the whole summary)."""
    await deliver(mail, REPEATED, to="alice@example.com")
    head = [*CONVENIENCE, "id", "threadId", "keywords", "size", "receivedAt", "preview",
            "hasAttachment"]
    async with mail.client() as c:
        listed = await only_email(mail, c, properties=head)
        assert {p: listed[p] for p in CONVENIENCE} == LAST
        assert listed["preview"] == "Which one?" and listed["hasAttachment"] is False
        full = await only_email(mail, c, properties=[*head, "textBody"])
        assert {p: full[p] for p in head} == listed
        # without the repeated fields' properties, from the envelope alone
        short = await only_email(mail, c, properties=["id", "preview", "hasAttachment"])
        assert short == {p: listed[p] for p in ("id", "preview", "hasAttachment")}
