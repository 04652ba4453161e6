"""MAIL FROM / RCPT TO arguments (RFC 5321 section 4.1.2, RFC 6531 section 3.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.smtp.wire.path import PathArgument, PathError, parse_mail, parse_rcpt


@pytest.mark.parametrize("arg, address, params", [
    ("FROM:<userx@y.foo.org>", "userx@y.foo.org", {}),                      # section D.1
    ("FROM:<>", "", {}),                                                    # section 4.5.5
    ("FROM:<> SIZE=10", "", {"SIZE": "10"}),
    ("from: <Smith@bar.com> BODY=8BITMIME size=42", "Smith@bar.com",
     {"BODY": "8BITMIME", "SIZE": "42"}),
    ("FROM:<@hosta.int,@jkl.org:userc@d.bar.org>", "userc@d.bar.org", {}),  # section 4.1.1.3
    ('FROM:<"john doe"@example.com>', '"john doe"@example.com', {}),
    ('FROM:<"john"@example.com>', "john@example.com", {}),
    ('FROM:<"a\\"b>c"@example.com> SMTPUTF8', '"a\\"b>c"@example.com', {"SMTPUTF8": None}),
    ("FROM:<u@[192.0.2.1]>", "u@[192.0.2.1]", {}),
    ("FROM:<u@[IPv6:2001:db8::1]>", "u@[IPv6:2001:db8::1]", {}),
    ("FROM:bare@example.com", "bare@example.com", {}),
    ("FROM:<jürgen@bücher.example> SMTPUTF8", "jürgen@bücher.example", {"SMTPUTF8": None}),
    ("FROM:<a@b.c> AUTH=<>", "a@b.c", {"AUTH": "<>"}),
])
def test_mail_examples(arg: str, address: str, params: dict[str, str | None]) -> None:
    assert parse_mail(arg) == PathArgument(address, params)


@pytest.mark.parametrize("arg, reply", [
    ("TO:<a@b.c>", "501 5.5.2"),
    ("FROM <a@b.c>", "501 5.5.2"),
    ("FROM:<a@b.c", "501 5.1.7"),
    ("FROM:<a b@c.d>", "501 5.1.7"),
    ("FROM:<a@b@c.d>", "501 5.1.7"),
    ("FROM:<@b.c>", "501 5.1.7"),
    ("FROM:<a@>", "501 5.1.7"),
    ("FROM:<a@-b.c>", "501 5.1.7"),
    ("FROM:<a..b@c.d>", "501 5.1.7"),
    ("FROM:<" + "x" * 65 + "@c.d>", "501 5.1.7"),                  # section 4.5.3.1.1
    ("FROM:<a@b.c>SIZE=1", "501 5.5.2"),
    ("FROM:<a@b.c> SIZE=", "501 5.5.4"),
    ("FROM:<a@b.c> =1", "501 5.5.4"),
    ("FROM:<a@b.c> SIZE=1 size=2", "501 5.5.4"),
    ("FROM:<a@b.c> X=a=b", "501 5.5.4"),
    ("FROM:<a\udcff@b.c>", "501 5.1.7"),                           # not UTF-8
    ("FROM:<@x:a@b.c", "501 5.1.7"),
    ("FROM:<@x;y:a@b.c>", "501 5.1.7"),
])
def test_mail_errors(arg: str, reply: str) -> None:
    with pytest.raises(PathError) as e:
        parse_mail(arg)
    assert e.value.reply.startswith(reply)


def test_rcpt() -> None:
    assert parse_rcpt("TO:<Postmaster>") == PathArgument("postmaster")      # section 4.5.1
    assert parse_rcpt("TO:<postmaster@example.com>").address == "postmaster@example.com"
    assert parse_rcpt("To: <a@b.c> NOTIFY=NEVER").params == {"NOTIFY": "NEVER"}
    with pytest.raises(PathError) as e:
        parse_rcpt("TO:<>")
    assert e.value.reply.startswith("501 5.1.3")


atext = st.text(st.sampled_from("abcXYZ019!#$%&'*+-/=?^_`{|}~é中"), min_size=1, max_size=8)
local_parts = st.lists(atext, min_size=1, max_size=3).map(".".join).filter(
    lambda s: len(s.encode()) <= 64)
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True) | st.sampled_from(
    ["bücher", "例え"])
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)
values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e).filter(
    lambda c: c != "="), min_size=1, max_size=10)
params = st.dictionaries(st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,6}", fullmatch=True),
                         st.none() | values, max_size=4)


@given(local_parts, domains, params)
def test_round_trip(local: str, domain: str, ps: dict[str, str | None]) -> None:
    text = "FROM:<" + f"{local}@{domain}>" + "".join(
        f" {k}" if v is None else f" {k}={v}" for k, v in ps.items())
    assert parse_mail(text) == PathArgument(f"{local}@{domain}", ps)


@given(st.text(max_size=80))
def test_garbage_gives_a_result_or_a_reply(text: str) -> None:
    for parse in (parse_mail, parse_rcpt):
        for prefix in ("", "FROM:", "TO:", "FROM:<", "TO:<"):
            try:
                result = parse(prefix + text)
            except PathError as e:
                assert e.reply[:3] in ("501", "553", "555")
            else:
                assert isinstance(result, PathArgument)
