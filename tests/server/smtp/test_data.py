"""DATA framing (RFC 5321 sections 4.1.1.4, 4.5.2) and SMTP smuggling: table and properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.smtp.wire.data import DataDecoder, DataProblem, DataResult, dot_stuff

TERMINATOR = b"\r\n.\r\n"


def decode(stream: bytes, pieces: list[int] | None = None, **kw: int | bool) -> tuple[
        DataResult | None, int]:
    """Feed ``stream`` cut at ``pieces``; (result if the end was seen, octets used)."""
    d = DataDecoder(**kw)  # type: ignore[arg-type]
    used = 0
    cuts = sorted({p for p in (pieces or []) if 0 < p < len(stream)}) + [len(stream)]
    start = 0
    for cut in cuts:
        used += d.feed(stream[start:cut])
        start = cut
        if d.done:
            break
    return (d.result() if d.done else None), used


@pytest.mark.parametrize("stream, content", [
    (b".\r\n", b""),                                          # empty message
    (b"a\r\n.\r\n", b"a\r\n"),
    (b"..\r\n.\r\n", b".\r\n"),                               # section 4.5.2 transparency
    (b"a\r\n..b\r\n...\r\n.\r\n", b"a\r\n.b\r\n..\r\n"),
    (b"a\r\n.\r\nMAIL FROM:<x@y>\r\n", b"a\r\n"),             # the rest is the next command
])
def test_rfc5321_framing(stream: bytes, content: bytes) -> None:
    result, used = decode(stream)
    assert result is not None and result.problem is None and result.content == content
    assert stream[used:] in (b"", b"MAIL FROM:<x@y>\r\n")


@pytest.mark.parametrize("smuggle", [
    b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r.\r", b"\n.\r",
])
def test_smuggled_endings_neither_end_nor_pass(smuggle: bytes) -> None:
    """RFC 5321 section 2.3.8 and the 2023 smuggling advisories: only CRLF.CRLF ends
    the data, and data with a bare CR or LF is refused."""
    stream = (b"Subject: one\r\n\r\nfirst" + smuggle
              + b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nSubject: two\r\n")
    result, used = decode(stream)
    assert result is None and used == len(stream)             # still in DATA
    result, used = decode(stream + b".\r\n")
    assert result is not None and used == len(stream) + 3
    assert result.problem is DataProblem.BARE_LINE_ENDING and result.content == b""


def test_normalize_mode_turns_bare_endings_into_crlf() -> None:
    result, _ = decode(b"a\nb\rc\r\n\n.\r\n.\r\n", normalize=True)
    assert result is not None and result.problem is None
    # after a bare LF no line starts, so ".\r\n" there is text, not the end
    assert result.content == b"a\r\nb\r\nc\r\n\r\n.\r\n"
    result, _ = decode(b"a\nb\r\nc\r\n.\r\n", normalize=True)
    assert result is not None and result.content == b"a\r\nb\r\nc\r\n"


def test_size_and_line_limits() -> None:
    result, _ = decode(b"x" * 20 + b"\r\n.\r\n", max_size=10)
    assert result is not None and result.problem is DataProblem.TOO_BIG
    assert result.size == 22
    result, _ = decode(b"x" * 999 + b"\r\n.\r\n", max_line=1000)
    assert result is not None and result.problem is DataProblem.LINE_TOO_LONG
    result, _ = decode(b"." + b"x" * 998 + b"\r\n.\r\n", max_line=1000)   # dot not counted
    assert result is not None and result.problem is None
    # an endless line is not kept in memory, and its last "." is no terminator
    d = DataDecoder(max_line=100)
    for _ in range(1000):
        d.feed(b"y" * 1000)
    d.feed(b".")
    assert d.feed(b"\r\n") == 2 and not d.done
    assert len(d._partial) <= 1
    assert d.feed(b".\r\n") == 3 and d.done
    assert d.result().problem is DataProblem.LINE_TOO_LONG


streams = st.binary(max_size=300) | st.lists(
    st.sampled_from([b"\r", b"\n", b".", b"\r\n", b"a", b"..", b"\r\n.\r\n", b"\x00"]),
    max_size=60).map(b"".join)


@settings(max_examples=400)
@given(streams, st.lists(st.integers(0, 300), max_size=8))
def test_ends_exactly_at_first_crlf_dot_crlf(stream: bytes, pieces: list[int]) -> None:
    """Whatever the bytes and however they are cut, the data ends exactly after the first
    CRLF "." CRLF (counting the CRLF of the DATA command), and never elsewhere."""
    whole, used_whole = decode(stream)
    split, used_split = decode(stream, pieces)
    assert whole == split and used_whole == used_split
    at = (b"\r\n" + stream).find(TERMINATOR)
    if at < 0:
        assert whole is None and used_whole == len(stream)
    else:
        assert whole is not None and used_whole == at + 3


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=40).map(lambda b: re.sub(rb"[\r\n]", b"", b)),
                max_size=20), st.lists(st.integers(0, 900), max_size=6))
def test_dot_stuffing_round_trip(lines: list[bytes], pieces: list[int]) -> None:
    content = b"".join(line + b"\r\n" for line in lines)
    result, used = decode(dot_stuff(content), pieces)
    assert result is not None and result.problem is None and result.content == content
    assert used == len(dot_stuff(content))


@settings(max_examples=300)
@given(streams)
def test_normalized_content_has_only_crlf(stream: bytes) -> None:
    result, _ = decode(stream + TERMINATOR, normalize=True)
    assert result is not None and result.problem is None
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", result.content) is None
    # and nothing but line endings and transparency dots changed
    sent = (b"\r\n" + stream)[: (b"\r\n" + stream + TERMINATOR).find(TERMINATOR)]

    def text(b: bytes) -> bytes:
        return re.sub(rb"[\r\n.]", b"", b)
    assert text(result.content) == text(sent)


class LineByLine(DataDecoder):
    """The decoder without its fast path for runs of plain lines: the reference."""

    def _plain_lines(self, chunk: bytes, pos: int) -> tuple[int, int]:
        return 0, pos


lines = st.lists(st.sampled_from([b"plain text\r\n", b"\r\n", b"..dot\r\n", b".\r\n",
                                  b"x" * 30 + b"\r\n", b"bare\n", b"cr\r", b"."]),
                 max_size=40).map(b"".join)


@settings(max_examples=400)
@given(streams | lines, st.lists(st.integers(0, 400), max_size=8),
       st.integers(0, 200), st.sampled_from([0, 5, 12, 40, 1000]), st.booleans())
def test_fast_path_decodes_as_line_by_line(stream: bytes, pieces: list[int], max_size: int,
                                           max_line: int, normalize: bool) -> None:
    kw = {"max_size": max_size, "max_line": max_line, "normalize": normalize}
    fast = DataDecoder(**kw)  # type: ignore[arg-type]
    slow = LineByLine(**kw)  # type: ignore[arg-type]
    cuts = sorted({p for p in pieces if 0 < p < len(stream)}) + [len(stream)]
    start = 0
    for cut in cuts:
        assert fast.feed(stream[start:cut]) == slow.feed(stream[start:cut])
        start = cut
    assert fast.done == slow.done
    if fast.done:
        assert fast.result() == slow.result()


class Counting(DataDecoder):
    """Counts the lines that go one by one and the octets the fast path scans."""

    def __init__(self, **kw: int | bool) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.slow_lines = 0
        self.scanned = 0

    def _line(self, line: bytes) -> bool:
        self.slow_lines += 1
        return super()._line(line)

    def _plain_lines(self, chunk: bytes, pos: int) -> tuple[int, int]:
        taken, looked_at = super()._plain_lines(chunk, pos)
        self.scanned += looked_at - pos
        return taken, looked_at


def test_plain_text_goes_in_one_piece_even_after_a_partial_line() -> None:
    message = b"".join(b"line %d of plain text\r\n" % i for i in range(200))
    d = Counting()
    d.feed(message[:3])                  # the session reads the first octets on their own
    d.feed(message[3:] + b".\r\n")
    assert d.done and d.result().content == message
    assert d.slow_lines <= 2             # the rest of the first line, and the terminator


@pytest.mark.parametrize("poison", [b"bare\r", b"bare\nx\r\n", b"x" * 2000 + b"\r\n"])
def test_fast_path_scans_each_octet_a_bounded_number_of_times(poison: bytes) -> None:
    """A run the fast path refuses (a bare CR or LF, an overlong line at its end) goes
    line by line without being scanned again at every line: no quadratic work."""
    chunk = b"".join(b"line %d\r\n" % i for i in range(5000)) + poison + b"\r\n"
    d = Counting(max_line=1000)
    d.feed(chunk)
    assert d.scanned <= 2 * len(chunk)
