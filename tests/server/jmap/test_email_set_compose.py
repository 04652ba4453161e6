"""The message Email/set creates (server/jmap/email_compose.py, RFC 8621 section 4.6),
without a server: any text survives the trip through the built message, lines stay
within RFC 5322 section 2.1.1's limits, and bad input is invalidProperties, never a
crash."""

from __future__ import annotations

import email
import email.policy
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from server.jmap.email_compose import blob_ids_of, compose
from server.jmap.email_import import is_keyword
from server.jmap.errors import SetError
from server.mime.addresses import Address, parse_address_list
from server.mime.encoded_words import decode_header_value

text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r"),
               max_size=400)
one_line = st.text(st.characters(exclude_categories=["Cs", "Cc", "Zl", "Zp"]),
                   min_size=1, max_size=120).filter(lambda s: s.strip() == s and s)


def _parse(raw: bytes) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


@settings(max_examples=150, deadline=None)
@given(body=text, subject=one_line, name=one_line)
# Python's folder split this name into two encoded words and lost the space between them
@example(body="", subject="0", name="00000" + "\xa0" * 11 + "\U00010000" * 4 + " \xa1")
def test_any_text_survives_and_lines_stay_short(body: str, subject: str, name: str) -> None:
    raw = compose({"subject": subject, "from": [{"name": name, "email": "a@example.com"}],
                   "textBody": [{"partId": "1", "type": "text/plain"}],
                   "bodyValues": {"1": {"value": body}}}, {}, now=0, domain="example.com").raw
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))  # RFC 5322 2.1.1 MUST
    assert b"\n" not in raw.replace(b"\r\n", b"")
    raw.decode("ascii")  # 7-bit: encoded words, quoted-printable or base64
    # headers read back as Email/get reads them (server.mime: RFC 2047 6.2, whitespace
    # between encoded words ignored; Python's default policy adds spaces there)
    headers = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert decode_header_value(headers["Subject"].encode()) == subject
    [sender] = parse_address_list(headers["From"])
    assert isinstance(sender, Address) and sender.email == "a@example.com"
    # a phrase's whitespace runs are folding whitespace (RFC 5322 3.2.5): one space
    assert " ".join((sender.name or "").split()) == " ".join(name.split())
    parsed = _parse(raw)
    content = parsed.get_content()
    assert content.replace("\r\n", "\n").rstrip("\n") == body.replace("\r\n", "\n").rstrip("\n")


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(
                        ["partId", "blobId", "type", "subParts", "name", "charset",
                         "header:X-A", "disposition", "cid", "language"]), inner, max_size=4),
                    max_leaves=12))
def test_garbage_body_structures_are_invalid_properties(structure: Any) -> None:
    try:
        compose({"bodyStructure": structure, "bodyValues": {"1": {"value": "x"}}},
                {"b": b"data"}, now=0, domain="example.com")
    except SetError as e:
        assert e.type == "invalidProperties"


@pytest.mark.parametrize("values, prop", [
    ({"textBody": [{"partId": "1", "type": "text/html"}],
      "bodyValues": {"1": {"value": "x"}}}, "textBody"),
    ({"textBody": [{"partId": "nope"}]}, "textBody"),
    ({"bodyValues": {"1": {"value": "unused"}}}, "bodyValues"),
    ({"bodyValues": {"1": {"value": "x", "isTruncated": True}}}, "bodyValues"),
    ({"to": [{"name": "x", "email": "no-at-sign"}]}, "to"),
    ({"subject": "two\r\nlines"}, "subject"),
    ({"header:Content-Transfer-Encoding": "8bit"}, "header:Content-Transfer-Encoding"),
    ({"messageId": ["has space@x"]}, "messageId"),
    ({"sentAt": "yesterday"}, "sentAt"),
    ({"attachments": [{"partId": "1", "header:Content-Transfer-Encoding": "7bit"}],
      "bodyValues": {"1": {"value": "x"}}}, "attachments"),
])
def test_bad_values_name_their_property(values: dict[str, Any], prop: str) -> None:
    with pytest.raises(SetError) as e:
        compose(values, {}, now=0, domain="example.com")
    assert e.value.type == "invalidProperties" and e.value.properties[0] == prop


_TEXT = {"textBody": [{"partId": "1", "type": "text/plain"}],
         "bodyValues": {"1": {"value": "x"}}}


@pytest.mark.parametrize("values, props", [
    # "Header fields beginning with "Content-" MUST NOT be specified on the Email object"
    ({**_TEXT, "header:Content-Language": "en"}, ("header:Content-Language",)),
    ({**_TEXT, "header:content-x": "y"}, ("header:content-x",)),
    # "There MUST NOT be two properties that represent the same header field"
    ({**_TEXT, "header:from:asAddresses": [{"email": "a@example.com"}],
      "header:FROM": " a@example.com"}, ("header:from:asAddresses", "header:FROM")),
    ({"textBody": [{"partId": "1", "type": "text/plain", "header:X-A": " a",
                    "header:x-a:asText": "b"}], "bodyValues": {"1": {"value": "x"}}},
     ("textBody",)),
    # "MUST NOT be specified in parsed forms that are forbidden for that particular field"
    ({**_TEXT, "header:Subject:asAddresses": [{"email": "a@example.com"}]},
     ("header:Subject:asAddresses",)),
    ({**_TEXT, "header:Date:asMessageIds": ["a@example.com"]}, ("header:Date:asMessageIds",)),
    # "the bodyStructure EmailBodyPart MUST NOT contain a property representing a header
    # field that is already defined on the top-level Email object"
    ({"subject": "top", "bodyStructure": {"partId": "1", "type": "text/plain",
                                          "header:Subject": "part"},
      "bodyValues": {"1": {"value": "x"}}}, ("bodyStructure",)),
    ({"header:X-A": " top", "bodyStructure": {"partId": "1", "type": "text/plain",
                                              "header:x-a": " part"},
      "bodyValues": {"1": {"value": "x"}}}, ("bodyStructure",)),
    # "The size property MUST be omitted if a partId is given"
    ({"bodyStructure": {"partId": "1", "type": "text/plain", "size": 2},
      "bodyValues": {"1": {"value": "ok"}}}, ("bodyStructure",)),
    # the one textBody part is the message: its fields and the Email's are one header
    ({"subject": "top", "textBody": [{"partId": "1", "type": "text/plain",
                                      "header:Subject": "part"}],
      "bodyValues": {"1": {"value": "x"}}}, ("textBody",)),
    ({"sentAt": "2020-01-01T00:00:00Z", "htmlBody": [
        {"partId": "1", "type": "text/html", "header:Date": " Mon, 1 Jan 2024 10:00 +0000"}],
      "bodyValues": {"1": {"value": "x"}}}, ("htmlBody",)),
    # RFC 5322 section 3.6: Subject and Date occur at most once
    ({**_TEXT, "header:Subject:all": ["a", "b"]}, ("header:Subject:all",)),
])
def test_rfc_8621_section_4_6_creation_rules(values: dict[str, Any],
                                             props: tuple[str, ...]) -> None:
    """RFC 8621 section 4.6's rules on the create object: each broken one is
    invalidProperties naming the properties, never another exception."""
    with pytest.raises(SetError) as e:
        compose(values, {}, now=0, domain="example.com")
    assert e.value.type == "invalidProperties" and e.value.properties == props


def test_a_body_structure_may_carry_fields_the_email_does_not() -> None:
    raw = compose({"bodyStructure": {"partId": "1", "type": "text/plain",
                                     "header:Subject": "from the part",
                                     "header:X-A:all": ["a", "b"]},
                   "bodyValues": {"1": {"value": "x"}}}, {}, now=0,
                  domain="example.com").raw
    assert b"\r\nSubject: from the part\r\n" in raw
    assert b"X-A: a\r\nX-A: b\r\n" in raw


def test_blob_ids_of_every_part() -> None:
    assert blob_ids_of({"bodyStructure": {"subParts": [{"blobId": "a"}, {"subParts": [
        {"blobId": "b"}, {"blobId": "a"}]}]}, "attachments": [{"blobId": "c"}]}) == [
        "a", "b", "c"]


def test_keywords_follow_rfc_8621_section_4_1_1() -> None:
    assert is_keyword("$seen") and is_keyword("$Forwarded") and is_keyword("x" * 255)
    for bad in ("", "x" * 256, "a b", "a(b", "a)b", "a{b", "a]b", "a%b", "a*b", 'a"b',
                "a\\b", "ä"):
        assert not is_keyword(bad), bad


def test_header_properties_in_every_form() -> None:
    # RFC 8621 4.1.3: header:Name[:asForm][:all] may be set on create
    raw = compose({
        "header:X-Raw": "raw value",
        "header:X-Text:asText": "text value",
        "header:Reply-To:asAddresses": [{"name": "Team", "email": "team@example.com"}],
        "header:X-Ref:asMessageIds": ["a@b", "c@d"],
        "header:X-When:asDate": "2026-12-05T10:00:00Z",
        "header:List-Post:asURLs": ["mailto:list@example.com"],
        "header:X-Many:all": ["one", "two"],
        "header:X-Many-Text:asText:all": ["three"],
    }, {}, now=0, domain="example.com").raw
    parsed = _parse(raw)
    assert parsed["X-Raw"] == "raw value" and parsed["X-Text"] == "text value"
    assert parsed["Reply-To"].addresses[0].addr_spec == "team@example.com"
    assert parsed["X-Ref"] == "<a@b> <c@d>"
    assert parsed["X-When"] == "Sat, 05 Dec 2026 10:00:00 +0000"
    assert parsed["List-Post"] == "<mailto:list@example.com>"
    assert parsed.get_all("X-Many") == ["one", "two"]
    assert parsed.get_all("X-Many-Text") == ["three"]
    cases: list[dict[str, Any]] = [
        {"header:X:asGroupedAddresses": []}, {"header:X:asDate": "soon"},
        {"header:X:all": "not a list"}, {"header:Bad Name": "x"},
        {"header:Subject": "x", "subject": "y"}]
    for bad in cases:
        with pytest.raises(SetError) as e:
            compose(bad, {}, now=0, domain="example.com")
        assert e.value.type == "invalidProperties"


def test_inline_attachments_go_with_the_html_as_multipart_related() -> None:
    # RFC 8621 4.6: a cid part shown by the HTML belongs with it (RFC 2387)
    raw = compose({
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "htmlBody": [{"partId": "h", "type": "text/html"}],
        "bodyValues": {"t": {"value": "see the logo"},
                       "h": {"value": '<img src="cid:logo@x">'}},
        "attachments": [{"blobId": "img", "type": "image/png", "cid": "logo@x"},
                        {"blobId": "doc", "type": "application/pdf", "name": "a.pdf"}],
    }, {"img": b"\x89PNG", "doc": b"%PDF"}, now=0, domain="example.com").raw
    parsed = _parse(raw)
    assert parsed.get_content_type() == "multipart/mixed"
    body, pdf = parsed.iter_parts()
    assert pdf.get_filename() == "a.pdf" and pdf.get_content_disposition() == "attachment"
    text, related = body.iter_parts()
    assert (body.get_content_type(), text.get_content_type(), related.get_content_type()) \
        == ("multipart/alternative", "text/plain", "multipart/related")
    html, image = related.iter_parts()
    assert html.get_content_type() == "text/html"
    assert image["Content-ID"] == "<logo@x>" and image.get_content_disposition() == "inline"
    assert image.get_content() == b"\x89PNG"


def test_an_internationalised_domain_goes_out_as_its_a_label() -> None:
    """Header fields are 7-bit without SMTPUTF8 (RFC 6532 is opt-in): an IDN in an address
    is written as its A-label (RFC 5890), never as a broken encoded word in the domain."""
    raw = compose({"from": [{"name": "A", "email": "a@exämple.com"}],
                   "textBody": [{"partId": "1", "type": "text/plain"}],
                   "bodyValues": {"1": {"value": "x"}}}, {}, now=0, domain="example.com").raw
    assert b"From: A <a@xn--exmple-cua.com>\r\n" in raw


_FIELDS = st.sampled_from(["Subject", "subject", "Date", "Message-ID", "From", "X-A",
                           "Content-Language", "Content-Type", "MIME-Version"])
_TOP = st.dictionaries(st.sampled_from(["subject", "sentAt", "messageId", "from"]),
                       st.sampled_from(["s", "2020-01-01T00:00:00Z", ["a@example.com"],
                                        [{"email": "a@example.com"}]]), max_size=3)


@given(top=_TOP, top_headers=st.lists(_FIELDS, max_size=3),
       part_headers=st.lists(_FIELDS, max_size=3),
       shape=st.sampled_from(["bodyStructure", "textBody", "htmlBody"]),
       all_form=st.booleans())
@settings(max_examples=300, deadline=None)
def test_header_fields_anywhere_give_a_message_or_invalid_properties(
        top: dict[str, Any], top_headers: list[str], part_headers: list[str], shape: str,
        all_form: bool) -> None:
    """Whatever header fields the Email and its body part give (each other's, twice,
    Content-*), compose makes a message or refuses with invalidProperties (RFC 8621
    section 4.6) - nothing else escapes (the email package's ValueError did)."""
    kind = "text/html" if shape == "htmlBody" else "text/plain"
    part: dict[str, Any] = {"partId": "1", "type": kind}
    for n, field in enumerate(part_headers):
        part[f"header:{field}" + (":all" if all_form else "")] = \
            [f" v{n}", " w"] if all_form else f" v{n}"
    values: dict[str, Any] = {**top, "bodyValues": {"1": {"value": "x"}},
                              shape: part if shape == "bodyStructure" else [part]}
    for n, field in enumerate(top_headers):
        values[f"header:{field}"] = f" t{n}"
    try:
        raw = compose(values, {}, now=0, domain="example.com").raw
    except SetError as e:
        assert e.type == "invalidProperties" and e.properties
        return
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    for once in ("Subject", "Date", "Message-ID", "From"):
        assert len(parsed.get_all(once) or []) <= 1, raw
