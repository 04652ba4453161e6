"""SearchSnippet/get (RFC 8621 section 5): pure rules of the mark-up, then through a
real node with messages delivered over SMTP."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from server.jmap.query import FilterCondition, FilterOperator
from server.jmap.snippet import MAX_PREVIEW, excerpt, highlight, search_terms
from tests.server.jmap.messages import ALTERNATIVE, LATIN1
from tests.server.jmap.test_download import deliver
from tests.server.jmap.test_mail import Mail, error, mail, one

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

__all__ = ["mail"]


def test_terms_come_from_text_subject_and_body_outside_not() -> None:
    tree = FilterOperator("AND", (
        FilterCondition({"text": "lunch  place", "inMailbox": "x"}),
        FilterCondition({"subject": '"agenda"'}),
        FilterOperator("NOT", (FilterCondition({"body": "secret"}),)),
        FilterCondition({"from": "bob"})))
    assert search_terms(tree) == ["lunch", "place", "agenda"]
    assert search_terms(None) == []


def test_highlight_escapes_then_marks() -> None:
    pattern = re.compile("caf|r&d", re.IGNORECASE)
    assert highlight("<b>Café</b> & R&D", pattern) == \
        "&lt;b&gt;<mark>Caf</mark>é&lt;/b&gt; &amp; <mark>R&amp;D</mark>"


def test_excerpt_is_around_the_first_match_and_short() -> None:
    body = "word " * 200 + "the needle is here " + "tail " * 200
    got = excerpt(body, re.compile("needle"))
    assert got is not None and "<mark>needle</mark>" in got
    assert len(got.encode()) <= MAX_PREVIEW
    assert got.startswith("word") and got.index("<mark>") < 60
    assert excerpt("nothing", re.compile("needle")) is None


@given(st.text(max_size=600), st.lists(st.text(min_size=1, max_size=8), min_size=1,
                                       max_size=3))
def test_excerpt_never_exceeds_255_octets(body: str, terms: list[str]) -> None:
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)
    got = excerpt(body, pattern)
    assert got is None or len(got.encode("utf-8", "surrogatepass")) <= MAX_PREVIEW


async def test_search_snippets_of_delivered_mail(mail: Mail) -> None:
    await deliver(mail, ALTERNATIVE)
    await deliver(mail, LATIN1)
    account = mail.ids["alice"]
    async with mail.client() as c:
        query = await one(c, "Email/query", {"accountId": account,
                                             "filter": {"text": "réunion"}})
        [email_id] = query["ids"]
        got = await one(c, "SearchSnippet/get", {
            "accountId": account, "filter": {"text": "réunion"},
            "emailIds": [email_id, "nope"]})
        assert got["list"] == [{
            "emailId": email_id, "subject": "<mark>Réunion</mark> de lundi",
            "preview": "<mark>Réunion</mark> lundi — agenda attached."}]
        assert got["notFound"] == ["nope"]
        latin = await one(c, "Email/query", {"accountId": account,
                                             "filter": {"body": "CRÈME"}})
        [cafe] = latin["ids"]
        got = await one(c, "SearchSnippet/get", {"accountId": account,
                                                 "filter": {"body": "crème"},
                                                 "emailIds": [cafe]})
        assert got["list"] == [{"emailId": cafe, "subject": None,
                                "preview": "Un café <mark>crème</mark>, "
                                           "s'il vous plaît."}]
        none = await one(c, "SearchSnippet/get", {"accountId": account, "filter": None,
                                                  "emailIds": [cafe]})
        assert none["list"] == [{"emailId": cafe, "subject": None, "preview": None}]
        assert none["notFound"] is None
        assert await error(c, "SearchSnippet/get", {
            "accountId": account, "filter": {"nonsense": 1}, "emailIds": []}) \
            == "unsupportedFilter"
        assert await error(c, "SearchSnippet/get", {"accountId": account}) \
            == "invalidArguments"
        assert await error(c, "SearchSnippet/get", {
            "accountId": account, "emailIds": ["x"] * 10_000}) == "requestTooLarge"
