"""The client side's pure parts: reply lines (RFC 5321 section 4.2), enhanced status
codes (RFC 3463), transparency (RFC 5321 section 4.5.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from server.outbound.wire import (
    ReplySyntaxError,
    dot_stuff,
    dot_unstuff,
    enhanced_status,
    parse_reply_line,
)


@pytest.mark.parametrize(("line", "parsed"), [
    (b"250-mx.test Hello\r\n", (250, True, "mx.test Hello")),
    (b"250 SIZE 1000\r\n", (250, False, "SIZE 1000")),
    (b"354\r\n", (354, False, "")),                 # text is optional (section 4.2)
    (b"550 5.1.1 no such user\r\n", (550, False, "5.1.1 no such user")),
])
def test_reply_lines(line: bytes, parsed: tuple[int, bool, str]) -> None:
    assert parse_reply_line(line) == parsed


@pytest.mark.parametrize("line", [b"", b"25\r\n", b"abc hi\r\n", b"650 x\r\n", b"250x\r\n"])
def test_bad_reply_lines(line: bytes) -> None:
    with pytest.raises(ReplySyntaxError):
        parse_reply_line(line)


@given(st.binary(max_size=200))
def test_any_line_parses_or_is_a_syntax_error(line: bytes) -> None:
    try:
        code, _, _ = parse_reply_line(line)
    except ReplySyntaxError:
        return
    assert 200 <= code <= 599


@pytest.mark.parametrize(("reply", "status"), [
    ("550 5.1.1 no such user", "5.1.1"),
    ("451 4.7.1 greylisted", "4.7.1"),
    ("550 no such user", "5.0.0"),
    ("451 try later", "4.0.0"),
    ("550 4.1.1 class differs", "5.0.0"),   # the enhanced code's class must match
])
def test_enhanced_status(reply: str, status: str) -> None:
    assert enhanced_status(reply) == status


def test_dot_stuffing_example() -> None:
    assert dot_stuff(b"a\r\n.b\r\n..c\r\n.\r\n") == b"a\r\n..b\r\n...c\r\n..\r\n.\r\n"
    assert dot_stuff(b"no final newline") == b"no final newline\r\n.\r\n"


lines = st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\r", b"").replace(
    b"\n", b"")), max_size=10)


@given(lines)
def test_dot_stuffing_round_trip(parts: list[bytes]) -> None:
    body = b"".join(p + b"\r\n" for p in parts)
    sent = dot_stuff(body)
    assert b"\r\n.\r\n" not in b"\r\n" + sent[:-3]     # the terminator only at the end
    assert dot_unstuff(sent) == body
