"""Address lists and message ids, from RFC 5322 Appendix A and damaged input."""

from __future__ import annotations

import pytest

from server.mime import Address, Group, parse_address_list, parse_msg_ids

A = Address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A.1.1
        ("John Doe <jdoe@machine.example>", (A("John Doe", "jdoe", "machine.example"),)),
        # A.1.2
        (
            '"Joe Q. Public" <john.q.public@example.com>',
            (A("Joe Q. Public", "john.q.public", "example.com"),),
        ),
        (
            "Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
            (
                A("Mary Smith", "mary", "x.test"),
                A(None, "jdoe", "example.org"),
                A("Who?", "one", "y.test"),
            ),
        ),
        (
            '<boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>',
            (A(None, "boss", "nil.test"), A('Giant; "Big" Box', "sysservices", "example.net")),
        ),
        # A.1.3
        (
            "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
            (
                Group(
                    "A Group",
                    (
                        A("Ed Jones", "c", "a.test"),
                        A(None, "joe", "where.test"),
                        A("John", "jdoe", "one.test"),
                    ),
                ),
            ),
        ),
        ("Undisclosed recipients:;", (Group("Undisclosed recipients", ()),)),
        # A.5 white space, comments and other oddities
        (
            "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
            (A("Pete", "pete", "silly.test"),),
        ),
        (
            "A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
            "         joe@example.org,\r\n"
            "  John <jdoe@one.test> (my dear friend); (the end of the group)",
            (
                Group(
                    "A Group",
                    (
                        A("Chris Jones", "c", "public.example"),
                        A(None, "joe", "example.org"),
                        A("John", "jdoe", "one.test"),
                    ),
                ),
            ),
        ),
        (
            "(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;",
            (Group("Hidden recipients", ()),),
        ),
        # A.6.1 obsolete route and A.6.3 obsolete white space
        ("Mary Smith <@node.test:mary@example.net>", (A("Mary Smith", "mary", "example.net"),)),
        ("John Doe <jdoe@machine(comment).  example>", (A("John Doe", "jdoe", "machine.example"),)),
        ("Mary Smith\r\n  \r\n <mary@example.net>", (A("Mary Smith", "mary", "example.net"),)),
        # obsolete "name" comment after an addr-spec
        ("joe@example.com (Joe Bloggs)", (A("Joe Bloggs", "joe", "example.com"),)),
        # quoted local part is kept quoted
        ('"john doe"@example.com', (A(None, '"john doe"', "example.com"),)),
        # encoded words stay encoded in raw_name
        ("=?utf-8?q?J=C3=B6rg?= <j@x.test>", (A("=?utf-8?q?J=C3=B6rg?=", "j", "x.test"),)),
    ],
)
def test_rfc5322_appendix_a(text: str, expected: tuple[Address | Group, ...]) -> None:
    assert parse_address_list(text) == expected


def test_decoded_name() -> None:
    (addr,) = parse_address_list("=?utf-8?q?J=C3=B6rg?= <j@x.test>")
    assert isinstance(addr, Address)
    assert addr.name == "J\u00f6rg"
    assert addr.email == "j@x.test"


@pytest.mark.parametrize(
    "text",
    [
        "",
        ",,,",
        "<>",
        "<<<>>>",
        '"unterminated <x@y>',
        "(unterminated comment <x@y>",
        "a <b@c",
        "a:b:c;;;",
        "@@@",
        "\udcff\udcfe <x@y>",
        "x" * 10_000,
        "(" * 10_000,
        '"' * 10_000,
        "\\" * 10_000,
    ],
)
def test_junk_never_raises(text: str) -> None:
    parse_address_list(text)


def test_address_count_is_capped() -> None:
    assert len(parse_address_list(", ".join(f"u{i}@x.test" for i in range(5_000)))) == 1_000


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("<1234@local.machine.example>", ("1234@local.machine.example",)),  # A.1.1
        (
            "<1234@local.machine.example> <3456@example.net>",  # A.2 References
            ("1234@local.machine.example", "3456@example.net"),
        ),
        ("bare@id.example", ("bare@id.example",)),
        ("", ()),
        ("not an id", ()),
    ],
)
def test_msg_ids(text: str, ids: tuple[str, ...]) -> None:
    assert parse_msg_ids(text) == ids
