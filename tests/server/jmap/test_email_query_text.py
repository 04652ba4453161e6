"""Email/query's conditions that read the message (RFC 8621 section 4.4.1: text, body,
header) through a real node, and the cheap prefilter that decides which blobs are read."""

from __future__ import annotations

from server.jmap.email import cheap_filter
from server.jmap.query import FilterCondition, FilterOperator
from tests.server.jmap.messages import ALTERNATIVE, LATIN1, NESTED
from tests.server.jmap.test_download import deliver
from tests.server.jmap.test_mail import Mail, error, mail, one

__all__ = ["mail"]


def test_cheap_filter_is_a_necessary_condition() -> None:
    body = FilterCondition({"body": "x"})
    size = FilterCondition({"minSize": 10})
    assert cheap_filter(FilterCondition({"body": "x", "minSize": 10})) == size
    assert cheap_filter(body) is None
    assert cheap_filter(FilterOperator("AND", (body, size))) == FilterOperator("AND", (size,))
    assert cheap_filter(FilterOperator("OR", (body, size))) is None
    assert cheap_filter(FilterOperator("OR", (size, size))) == FilterOperator("OR",
                                                                              (size, size))
    assert cheap_filter(FilterOperator("NOT", (body,))) is None
    assert cheap_filter(FilterOperator("NOT", (size,))) == FilterOperator("NOT", (size,))


async def test_body_header_and_text_conditions(mail: Mail) -> None:
    for raw in (ALTERNATIVE, LATIN1, NESTED):
        await deliver(mail, raw)
    account = mail.ids["alice"]
    async with mail.client() as c:
        got = await one(c, "Email/get", {"accountId": account, "ids": (await one(
            c, "Email/query", {"accountId": account}))["ids"], "properties": ["subject"]})
        by_subject = {e["subject"]: e["id"] for e in got["list"]}
        # "Caf\xe9" is not UTF-8: the raw octet reads as U+FFFD (RFC 8621 4.1.2.1)
        alt, cafe, fwd = by_subject["Réunion de lundi"], by_subject["Caf\ufffd"], \
            by_subject["Fwd: Lunch?"]

        async def query(condition: object) -> set[str]:
            result = await one(c, "Email/query", {"accountId": account,
                                                  "filter": condition})
            return set(result["ids"])
        assert await query({"body": "AGENDA attached"}) == {alt}  # quoted-printable
        assert await query({"body": "crème"}) == {cafe}  # ISO-8859-1
        assert await query({"body": "lundi"}) == {alt}  # HTML text counts too
        assert await query({"body": "Réunion de"}) == set()  # the subject is not body
        assert await query({"text": "Réunion de"}) == {alt}
        assert await query({"text": "forwarding"}) == {fwd}
        # the attached message's text: searched by text, not by body
        assert await query({"text": "usual place"}) == {fwd}
        assert await query({"body": "usual place"}) == set()
        assert await query({"header": ["X-Tag"]}) == {alt}
        assert await query({"hasAttachment": True}) == {alt, fwd}
        assert await query({"hasAttachment": False}) == {cafe}
        assert await query({"header": ["x-tag", "TWO"]}) == {alt}
        assert await query({"header": ["X-Tag", "three"]}) == set()
        assert await query({"header": ["Subject", "lundi"]}) == {alt}  # decoded text
        assert await query({"header": ["Subject", "caf"]}) == {cafe}
        assert await query({"operator": "NOT", "conditions": [{"body": "crème"}]}) \
            == {alt, fwd}
        assert await query({"operator": "AND", "conditions": [
            {"body": "lundi"}, {"minSize": 1_000_000}]}) == set()
        assert await query({"operator": "OR", "conditions": [
            {"body": "crème"}, {"header": ["Message-ID", "lunch"]}]}) == {cafe}
        bad_filters: list[dict[str, object]] = [
            {"header": []}, {"header": ["a", "b", "c"]}, {"header": "X-Tag"}, {"body": 1},
            {"hasAttachment": "yes"}]
        for bad in bad_filters:
            assert await error(c, "Email/query", {"accountId": account,
                                                  "filter": bad}) == "invalidArguments"
