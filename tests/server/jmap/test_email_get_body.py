"""Email/get's header and body properties (RFC 8621 sections 4.1.2-4.1.4, 4.2) rendered
from parsed messages, without a node: the exact JSON the methods answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.jmap.email_body import BytesReader, split_part_blob_id
from server.jmap.email_get import DEFAULT_PROPERTIES, render_email, view_arg
from server.jmap.errors import MethodError
from server.mime import parse_message
from tests.server.jmap.messages import ALTERNATIVE, BROKEN, LATIN1, NESTED, rfc_example

BLOB = "b" * 64


def render(raw: bytes, **args: Any) -> dict[str, Any]:
    view = view_arg(args, DEFAULT_PROPERTIES)
    out = asyncio.run(render_email(parse_message(raw), BLOB, BytesReader(raw), view))
    return {p: out.get(p) for p in view.properties if p != "id"}


def test_rfc_8621_4_1_4_example_text_html_and_attachments() -> None:
    """Section 4.1.4's example: textBody [A, B, C, D, K], htmlBody [A, E, K],
    attachments [C, F, G, H, J]."""
    raw = rfc_example()
    got = render(raw, properties=["textBody", "htmlBody", "attachments"],
                 bodyProperties=["partId"])
    summary = parse_message(raw)
    label = {p.path: asyncio.run(BytesReader(raw).read(p.body_start, p.body_end))
             for p in summary.parts if not p.is_multipart}

    def names(parts: list[dict[str, Any]]) -> list[str]:
        return [label[p["partId"]].decode()[-1] for p in parts]
    assert names(got["textBody"]) == ["A", "B", "C", "D", "K"]
    assert names(got["htmlBody"]) == ["A", ">", "K"]  # E is "<p>E</p>"
    assert got["htmlBody"][1]["partId"] == "2.1.2.1"
    assert names(got["attachments"]) == ["C", "F", "G", "H", "J"]


def test_body_structure_of_alternative_with_attachment() -> None:
    got = render(ALTERNATIVE, properties=["bodyStructure"])
    leaf = {"name": None, "disposition": None, "cid": None, "language": None,
            "location": None, "subParts": None}
    assert got["bodyStructure"] == {
        "partId": None, "blobId": None, "size": len(ALTERNATIVE) - ALTERNATIVE.index(
            b"\r\n\r\n") - 4, "name": None, "type": "multipart/mixed", "charset": None,
        "disposition": None, "cid": None, "language": None, "location": None,
        "subParts": [
            {"partId": None, "blobId": None, "size": got["bodyStructure"]["subParts"][0]
             ["size"], "name": None, "type": "multipart/alternative", "charset": None,
             "disposition": None, "cid": None, "language": None, "location": None,
             "subParts": [
                 {**leaf, "partId": "1.1", "blobId": f"{BLOB}_1_1", "size": 35,
                  "type": "text/plain", "charset": "utf-8"},
                 {**leaf, "partId": "1.2", "blobId": f"{BLOB}_1_2", "size": 28,
                  "type": "text/html", "charset": "utf-8"}]},
            {**leaf, "partId": "2", "blobId": f"{BLOB}_2", "size": 18,
             "name": "agenda.pdf", "type": "application/pdf", "charset": None,
             "disposition": "attachment"}]}


def test_default_properties_of_section_4_2() -> None:
    got = render(ALTERNATIVE, fetchTextBodyValues=True)
    assert list(got) == [p for p in DEFAULT_PROPERTIES if p != "id"]
    assert got["subject"] == "Réunion de lundi"
    assert got["from"] == [{"name": "Renée", "email": "renee@remote.test"}]
    assert got["to"] == [{"name": None, "email": "alice@example.com"},
                         {"name": "Bob", "email": "bob@example.com"},
                         {"name": None, "email": "carol@remote.test"}]
    assert got["sentAt"] == "2026-12-05T10:00:00+01:00"
    assert got["messageId"] == ["alt-1@remote.test"]
    assert got["references"] == ["a@remote.test", "b@remote.test"]
    assert got["hasAttachment"] is True
    assert [p["partId"] for p in got["textBody"]] == ["1.1"]
    assert [p["partId"] for p in got["htmlBody"]] == ["1.2"]
    assert [p["partId"] for p in got["attachments"]] == ["2"]
    assert got["bodyValues"] == {"1.1": {"value": "Réunion lundi — agenda attached.",
                                         "isEncodingProblem": False, "isTruncated": False}}


def test_body_values_fetch_flags_and_truncation() -> None:
    got = render(ALTERNATIVE, properties=["bodyValues"], fetchHTMLBodyValues=True,
                 maxBodyValueBytes=5)
    # "<p>R" then "é" (2 octets) does not fit in 5: never half a character
    assert got["bodyValues"] == {"1.2": {"value": "<p>R", "isEncodingProblem": False,
                                         "isTruncated": True}}
    every = render(ALTERNATIVE, properties=["bodyValues"], fetchAllBodyValues=True)
    assert sorted(every["bodyValues"]) == ["1.1", "1.2"]
    assert render(ALTERNATIVE, properties=["bodyValues"])["bodyValues"] == {}
    whole = render(ALTERNATIVE, properties=["bodyValues"], fetchTextBodyValues=True,
                   maxBodyValueBytes=0)  # section 4.2: 0 is no truncation
    assert whole["bodyValues"]["1.1"]["isTruncated"] is False


def test_non_utf8_charset_body_is_decoded() -> None:
    got = render(LATIN1, properties=["subject", "bodyValues"], fetchTextBodyValues=True)
    assert got["bodyValues"]["1"] == {"value": "Un café crème, s'il vous plaît.\r\n",
                                      "isEncodingProblem": False, "isTruncated": False}


def test_broken_message_renders_with_encoding_problems() -> None:
    got = render(BROKEN, properties=["from", "subject", "sentAt", "bodyStructure",
                                     "bodyValues", "header:Date:asDate",
                                     "header:From:asRaw"], fetchAllBodyValues=True)
    assert got["sentAt"] is None and got["header:Date:asDate"] is None
    assert got["from"][0]["email"] == "x@remote.test"
    assert "\ufffd" in got["header:From:asRaw"]
    values = got["bodyValues"]
    assert values["1"]["isEncodingProblem"] is True  # unknown charset
    assert values["2"]["isEncodingProblem"] is True  # invalid UTF-8
    assert values["2"]["value"].startswith("\ufffd(")


@pytest.mark.parametrize(("encoding", "body", "problem"), [
    ("base64", b"SGVsbG8=\r\n", False), ("base64", b"SGVs!bG8=", True),
    ("quoted-printable", b"caf=C3=A9 =\r\nx=", False),
    ("quoted-printable", b"100=%", True), ("7bit", b"=zz", False)])
def test_broken_transfer_encoding_is_an_encoding_problem(encoding: str, body: bytes,
                                                         problem: bool) -> None:
    raw = (b"Subject: t\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: " + encoding.encode() + b"\r\n\r\n" + body)
    got = render(raw, properties=["bodyValues"], fetchTextBodyValues=True)
    assert got["bodyValues"]["1"]["isEncodingProblem"] is problem


def test_nested_message_is_a_leaf_attachment() -> None:
    got = render(NESTED, properties=["bodyStructure", "attachments", "textBody"],
                 bodyProperties=["partId", "type", "blobId"])
    parts = got["bodyStructure"]["subParts"]
    assert parts == [{"partId": "1", "type": "text/plain", "blobId": f"{BLOB}_1",
                      "subParts": None},
                     {"partId": "2", "type": "message/rfc822", "blobId": f"{BLOB}_2",
                      "subParts": None}]
    assert got["attachments"] == [{"partId": "2", "type": "message/rfc822",
                                   "blobId": f"{BLOB}_2"}]
    assert split_part_blob_id(f"{BLOB}_1_2") == (BLOB, "1.2")


def test_header_forms_of_section_4_1_2() -> None:
    got = render(ALTERNATIVE, properties=[
        "header:Subject", "header:subject:asText", "header:To:asGroupedAddresses",
        "header:To:asAddresses", "header:References:asMessageIds",
        "header:Date:asDate", "header:List-Unsubscribe:asURLs", "header:X-Tag",
        "header:X-Tag:all", "header:X-Tag:asText:all", "header:X-Missing",
        "header:X-Missing:all", "header:X-Tag:asDate", "headers"])
    assert got["header:Subject"] == " =?UTF-8?B?UsOpdW5pb24gZGUgbHVuZGk=?="
    assert got["header:subject:asText"] == "Réunion de lundi"
    assert got["header:To:asGroupedAddresses"] == [
        {"name": "Team", "addresses": [{"name": None, "email": "alice@example.com"},
                                       {"name": "Bob", "email": "bob@example.com"}]},
        {"name": None, "addresses": [{"name": None, "email": "carol@remote.test"}]}]
    assert len(got["header:To:asAddresses"]) == 3
    assert got["header:References:asMessageIds"] == ["a@remote.test", "b@remote.test"]
    assert got["header:Date:asDate"] == "2026-12-05T10:00:00+01:00"
    assert got["header:List-Unsubscribe:asURLs"] == ["mailto:leave@remote.test",
                                                     "https://remote.test/leave"]
    assert got["header:X-Tag"] == " two"  # the last instance
    assert got["header:X-Tag:all"] == [" one", " two"]
    assert got["header:X-Tag:asText:all"] == ["one", "two"]
    assert got["header:X-Missing"] is None and got["header:X-Missing:all"] == []
    assert got["header:X-Tag:asDate"] is None
    assert got["headers"][0] == {"name": "From",
                                 "value": " =?UTF-8?Q?Ren=C3=A9e?= <renee@remote.test>"}
    assert got["headers"][5] == {"name": "References",
                                 "value": " <a@remote.test>\r\n <b@remote.test>"}


def test_body_part_headers_and_header_properties() -> None:
    got = render(ALTERNATIVE, properties=["attachments"],
                 bodyProperties=["partId", "headers", "header:Content-Type:asText"])
    assert got["attachments"] == [{
        "partId": "2",
        "headers": [{"name": "Content-Type", "value": ' application/pdf; name="agenda.pdf"'},
                    {"name": "Content-Disposition",
                     "value": ' attachment; filename="agenda.pdf"'},
                    {"name": "Content-Transfer-Encoding", "value": " base64"}],
        "header:Content-Type:asText": 'application/pdf; name="agenda.pdf"'}]


@pytest.mark.parametrize("prop", [
    "header:From:asDate", "header:Subject:asAddresses", "header:Date:asURLs",
    "header:Message-ID:asText", "header:Received:asText", "header:X:asNothing",
    "header:", "header:X:asRaw:all:all", "header:Bad Name", "nonsense"])
def test_forbidden_or_unknown_properties_are_invalid_arguments(prop: str) -> None:
    """Section 4.1.2: a forbidden form is invalidArguments; so is a property that does
    not exist (RFC 8620 section 5.1)."""
    with pytest.raises(MethodError) as e:
        view_arg({"properties": [prop]}, DEFAULT_PROPERTIES)
    assert e.value.type == "invalidArguments"
    with pytest.raises(MethodError):
        view_arg({"bodyProperties": [prop]}, DEFAULT_PROPERTIES)
