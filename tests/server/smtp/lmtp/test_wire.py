"""LMTP command lines: parsing and line framing, fed whole or octet by octet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.smtp.lmtp.wire import TOO_LONG, Command, CommandReader, Malformed, parse_command


@pytest.mark.parametrize(("line", "expected"), [
    (b"LHLO mta.example.com", Command("LHLO", "mta.example.com")),
    (b"lhlo  mta ", Command("LHLO", "mta")),
    (b"MAIL FROM:<a@b> SIZE=10", Command("MAIL", "FROM:<a@b> SIZE=10")),
    (b"DATA", Command("DATA", "")),
    ("RCPT TO:<jörg@bücher.example>".encode(), Command("RCPT", "TO:<jörg@bücher.example>")),
])
def test_commands(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize("line", [b"", b" ", b"M@IL FROM:<>", b"\xff\xfe", b"NOOP\x00",
                                  b"X" * 17, b"1234"])
def test_malformed(line: bytes) -> None:
    assert isinstance(parse_command(line), Malformed)


@given(st.binary(max_size=300))
def test_garbage_is_a_command_or_malformed(line: bytes) -> None:
    assert isinstance(parse_command(line), Command | Malformed)


def _lines(reader: CommandReader) -> list[bytes | str]:
    out: list[bytes | str] = []
    while (line := reader.next_line()) is not None:
        out.append(line)
    return out


def test_framing() -> None:
    r = CommandReader(20)
    r.feed(b"NOOP\r\nRSET\nQUI")
    assert r.has_line()
    assert _lines(r) == [b"NOOP", b"RSET"]
    assert not r.has_line()
    r.feed(b"T\r\n" + b"X" * 30 + b"\r\nNOOP\r\n")
    assert _lines(r) == [b"QUIT", TOO_LONG, b"NOOP"]


def test_a_long_line_in_pieces_is_reported_once() -> None:
    r = CommandReader(10)
    r.feed(b"X" * 8)
    assert r.next_line() is None
    r.feed(b"X" * 8)
    assert r.next_line() == TOO_LONG
    r.feed(b"X" * 100)
    assert r.next_line() is None
    r.feed(b"XX\r\nNOOP\r\n")
    assert _lines(r) == [b"NOOP"]


@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=8),
       st.integers(min_value=1, max_value=7))
def test_same_lines_whole_or_in_pieces(lines: list[bytes], step: int) -> None:
    data = b"".join(line + b"\r\n" for line in lines)
    whole = CommandReader(32)
    whole.feed(data)
    expected = _lines(whole)
    pieces = CommandReader(32)
    got: list[bytes | str] = []
    for i in range(0, len(data), step):
        pieces.feed(data[i:i + step])
        got += _lines(pieces)
    assert got == expected
    assert [x for x in expected if x != TOO_LONG] == \
        [line for line in lines if len(line) + 2 <= 32]
