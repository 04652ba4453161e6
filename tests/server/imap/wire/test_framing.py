"""The connection-level reader: literals (RFC 9051 §4.3, §7.5; RFC 7888), limits, resync, modes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server.imap.wire.commands import Append, AppendMessage, Capability, Login, Noop, StartTLS
from server.imap.wire.framing import (
    NEED_DATA, AuthenticateLine, CommandReader, ContinuationRequired, IdleDone, Limits, Mode,
    Rejected,
)

from ._feed import drain, run

SMALL = Limits(max_line=200, max_literal=100, max_upload=1000, max_command=5000)


def test_synchronizing_literal_asks_for_continuation_first() -> None:
    """RFC 9051 §7.5: the server sends "+" before the client sends the literal octets."""
    reader = CommandReader()
    reader.feed(b"a1 LOGIN {4}\r\n")
    assert reader.next_event() == ContinuationRequired(4)
    assert reader.next_event() is NEED_DATA
    reader.feed(b"fred {6}\r\n")
    assert reader.next_event() == ContinuationRequired(6)
    reader.feed(b"secret\r\n")
    assert reader.next_event() == Login("a1", "fred", "secret")
    assert reader.next_event() is NEED_DATA


def test_non_synchronizing_literals_need_no_continuation() -> None:
    """RFC 7888 §3: {n+} is sent at once."""
    events = run([b"a1 LOGIN {4+}\r\nfred {6+}\r\nsecret\r\n"], continuations=True)
    assert events == [Login("a1", "fred", "secret")]
    events = run(
        [b"a1 LOGIN {4-}\r\nfred {6-}\r\nsecret\r\n"], Limits(literal_plus=False),
        continuations=True,
    )
    assert events == [Login("a1", "fred", "secret")]


def test_literal_minus_over_4096_is_refused_and_skipped() -> None:
    """RFC 7888 §5: LITERAL- allows non-synchronizing literals of at most 4096 octets; a larger
    one is refused with BAD; its octets are still sent and must not be read as commands."""
    limits = Limits(literal_plus=False)
    body = b"a2 NOOP\r\n" * 600  # 5400 octets that look like commands
    events = run([b"a1 LOGIN {%d+}\r\n" % len(body) + body + b" x\r\na3 NOOP\r\n"], limits)
    assert events == [Rejected("a1", events[0].text), Noop("a3")]  # type: ignore[union-attr]
    assert "4096" in events[0].text  # type: ignore[union-attr]


def test_over_limit_synchronizing_literal_is_refused_before_its_octets() -> None:
    """No continuation is sent, so the client does not send the octets (RFC 9051 §7.5)."""
    reader = CommandReader(SMALL)
    reader.feed(b"a1 LOGIN {101}\r\n")
    event = reader.next_event()
    assert isinstance(event, Rejected) and event.tag == "a1" and event.status == "BAD"
    reader.feed(b"a2 CAPABILITY\r\n")
    assert drain(reader) == [Capability("a2")]


def test_append_over_limit_is_no_toobig() -> None:
    """RFC 9051 §7.1 TOOBIG / RFC 7889 APPENDLIMIT: a message over the limit is NO [TOOBIG]."""
    events = run([b"a1 APPEND INBOX {1001}\r\n", b"a2 NOOP\r\n"], SMALL)
    assert events == [Rejected("a1", "message too large", "NO", "TOOBIG"), Noop("a2")]
    events = run([b"a1 UID REPLACE 3 INBOX {1001}\r\n"], SMALL)
    assert events == [Rejected("a1", "message too large", "NO", "TOOBIG")]


def test_a_4gb_literal_is_refused_without_buffering() -> None:
    reader = CommandReader()
    reader.feed(b"a1 APPEND INBOX {4294967296+}\r\n" + b"x" * 100_000)
    event = reader.next_event()
    assert isinstance(event, Rejected) and event.code == "TOOBIG"
    assert reader.next_event() is NEED_DATA
    assert len(reader._buf) == 0  # skipped octets are dropped as they come
    reader.feed(b"y" * 1000)
    assert reader.next_event() is NEED_DATA


def test_huge_digit_count_is_refused() -> None:
    events = run([b"a1 LOGIN {" + b"9" * 40 + b"}\r\n", b"a2 NOOP\r\n"])
    assert isinstance(events[0], Rejected) and events[0].tag == "a1"
    assert events[1] == Noop("a2")


def test_refused_non_synchronizing_literal_skips_the_rest_of_the_command() -> None:
    """After the skipped literal the command goes on, possibly with more literals."""
    events = run([b"a1 APPEND INBOX {2000+}\r\n" + b"z" * 2000 + b" {5+}\r\nhello\r\na2 NOOP\r\n"],
                 SMALL)
    assert [type(e) for e in events] == [Rejected, Noop]


def test_command_total_is_bounded() -> None:
    limits = Limits(max_line=200, max_literal=100, max_upload=1000, max_command=1500)
    data = b"a1 APPEND INBOX {900+}\r\n" + b"m" * 900 + b" {900+}\r\n" + b"n" * 900 + b"\r\n"
    events = run([data, b"a2 NOOP\r\n"], limits)
    assert events[0] == Rejected("a1", "message too large", "NO", "TOOBIG")
    assert events[1:] == [Noop("a2")]


def test_multiappend_within_limits() -> None:
    data = b"a1 APPEND INBOX {3+}\r\nabc (\\Seen) {2+}\r\nde\r\n"
    (event,) = run([data], SMALL)
    assert isinstance(event, Append) and [m.data for m in event.messages] == [b"abc", b"de"]


def test_line_too_long_is_bad_with_tag_and_resynchronizes() -> None:
    events = run([b"a1 LOGIN " + b"x" * 300, b"x" * 300 + b"\r\n", b"a2 NOOP\r\n"], SMALL)
    assert events == [Rejected("a1", "line too long"), Noop("a2")]


def test_line_too_long_ending_in_a_non_synchronizing_literal() -> None:
    data = b"a1 LOGIN " + b"x" * 300 + b" {10+}\r\n0123456789\r\na2 NOOP\r\n"
    for chunks in ([data], [bytes([b]) for b in data]):
        assert run(chunks, SMALL) == [Rejected("a1", "line too long"), Noop("a2")]


def test_parse_error_keeps_the_tag_and_the_stream() -> None:
    events = run([b"a1 FETCH 1 (FLAGS\r\na2 NOOP\r\n"])
    assert isinstance(events[0], Rejected) and events[0].tag == "a1"
    assert events[1] == Noop("a2")


def test_no_tag_gives_untagged_bad() -> None:
    events = run([b"+ NOOP\r\n", b"\x01\r\n", b"a2 NOOP\r\n"])
    assert [e.tag for e in events[:2]] == [None, None]  # type: ignore[union-attr]
    assert events[2] == Noop("a2")


def test_bare_lf_is_refused() -> None:
    events = run([b"a1 NOOP\na2 NOOP\r\n"])
    assert events == [Rejected("a1", "lines must end with CRLF"), Noop("a2")]


def test_empty_lines_are_ignored() -> None:
    assert run([b"\r\n\r\na1 NOOP\r\n"]) == [Noop("a1")]


def test_authenticate_mode_reads_lines() -> None:
    """RFC 9051 §6.2.2: the client's responses are lines of base64, or "*" to cancel."""
    reader = CommandReader()
    reader.feed(b"a1 AUTHENTICATE PLAIN\r\nAGZyZWQAc2VjcmV0\r\n*\r\na2 NOOP\r\n")
    assert reader.next_event().__class__.__name__ == "Authenticate"
    reader.set_mode(Mode.AUTHENTICATE)
    assert reader.next_event() == AuthenticateLine(b"AGZyZWQAc2VjcmV0")
    assert reader.next_event() == AuthenticateLine(b"*")
    reader.set_mode(Mode.COMMAND)
    assert reader.next_event() == Noop("a2")


def test_idle_mode_waits_for_done() -> None:
    """RFC 2177 §3: IDLE ends with "DONE" (case-insensitive)."""
    reader = CommandReader()
    reader.feed(b"a1 IDLE\r\n")
    reader.next_event()
    reader.set_mode(Mode.IDLE)
    assert reader.next_event() is NEED_DATA
    reader.feed(b"nope\r\ndone\r\n")
    assert isinstance(reader.next_event(), Rejected)
    assert reader.next_event() == IdleDone()


def test_starttls_leaves_injected_bytes_for_the_session_to_drop() -> None:
    """RFC 9051 §11.1: bytes after STARTTLS in the same packet must be discarded."""
    reader = CommandReader()
    reader.feed(b"a1 STARTTLS\r\na2 LOGIN evil evil\r\n")
    assert reader.next_event() == StartTLS("a1")
    assert reader.take_buffered() == b"a2 LOGIN evil evil\r\n"
    assert reader.next_event() is NEED_DATA


def test_utf8_mode_switches_mailbox_decoding() -> None:
    reader = CommandReader()
    reader.feed(b"a1 SELECT Entw&APw-rfe\r\n")
    assert reader.next_event().mailbox == "Entwürfe"  # type: ignore[union-attr]
    reader.set_utf8(True)
    reader.feed("a2 SELECT \"Entwürfe\"\r\n".encode())
    assert reader.next_event().mailbox == "Entwürfe"  # type: ignore[union-attr]


ALLOWED = (Rejected, ContinuationRequired, AuthenticateLine, IdleDone)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=8), st.sampled_from(list(Mode)))
def test_garbage_gives_commands_or_rejections_only(chunks: list[bytes], mode: Mode) -> None:
    """Arbitrary bytes: every event is a command or a protocol error, nothing raises, the
    reader always comes back with NEED_DATA (no loop), and the buffer stays bounded."""
    reader = CommandReader(SMALL)
    reader.set_mode(mode)
    for chunk in chunks:
        reader.feed(chunk)
        for event in drain(reader):
            assert isinstance(event, ALLOWED) or type(event).__module__.endswith("commands")
        assert len(reader._buf) <= SMALL.max_line + 2
        assert len(reader._pending) <= SMALL.max_command


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120).filter(lambda b: b"\n" not in b))
def test_a_bad_line_never_swallows_the_next_command(junk: bytes) -> None:
    """A line without a literal marker is one command: whatever it holds, the next parses."""
    if junk.rstrip().endswith(b"}"):
        return
    events = run([junk + b"\r\nz9 NOOP\r\n"])
    assert events[-1] == Noop("z9")


def test_rejections_become_responses() -> None:
    """RFC 9051 §7.1.3: BAD is tagged when the tag was read, else untagged."""
    events = run([b"a1 FROB\r\n", b"\x01\r\n", b"a2 APPEND x {2000}\r\n"], SMALL)
    assert [e.response().render() for e in events] == [  # type: ignore[union-attr]
        b"a1 BAD unknown command FROB\r\n",
        b"* BAD missing or invalid tag\r\n",
        b"a2 NO [TOOBIG] message too large\r\n",
    ]


def test_minus_literal_form_is_bounded_even_with_literal_plus() -> None:
    body = b"x" * 5000
    events = run([b"a1 LOGIN {5000-}\r\n" + body + b" y\r\na2 NOOP\r\n"])
    assert isinstance(events[0], Rejected) and events[1:] == [Noop("a2")]


def test_many_long_lines_after_a_refusal_do_not_recurse() -> None:
    """A refused command whose remainder is thousands of over-long lines, each announcing an
    empty non-synchronizing literal, is skipped in a loop (no RecursionError)."""
    rest = (b"x" * 300 + b" {0+}\r\n") * 5000
    data = b"a1 APPEND x {2000+}\r\n" + b"z" * 2000 + b" {0+}\r\n" + rest + b"\r\na2 NOOP\r\n"
    events = run([data], SMALL)
    assert [type(e) for e in events] == [Rejected, Noop]


# -- literal8 (RFC 3516 §4.4, RFC 4466 §2.3) -------------------------------------------------

def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


_LITERAL8_FORMS = st.sampled_from([b"~{%d}", b"~{%d+}"])


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), _LITERAL8_FORMS, st.lists(st.integers(0, 400), max_size=6))
def test_literal8_append_same_whole_split_or_byte_by_byte(
    data: bytes, form: bytes, cuts: list[int]
) -> None:
    """RFC 3516 §4.4: ``APPEND mailbox literal8`` carries any octets, NUL included; fed whole,
    split anywhere or one byte at a time, the reader gives the same command (the synchronizing
    form ``~{n}`` asks for a continuation first, RFC 9051 §7.5)."""
    wire = b"a1 APPEND INBOX " + form % len(data) + b"\r\n" + data + b"\r\na2 NOOP\r\n"
    expected = [Append("a1", "INBOX", (AppendMessage(data, binary=True),)), Noop("a2")]
    assert run([wire]) == expected
    assert run(_chunks(wire, cuts)) == expected
    assert run([wire[i:i + 1] for i in range(len(wire))]) == expected
    continuations = [e for e in run([wire], continuations=True)
                     if isinstance(e, ContinuationRequired)]
    assert continuations == ([] if form.endswith(b"+}") else [ContinuationRequired(len(data))])


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3000), _LITERAL8_FORMS, st.booleans())
def test_literal8_has_the_bounds_of_other_literals(size: int, form: bytes,
                                                    byte_by_byte: bool) -> None:
    """RFC 7889 / RFC 9051 §7.1 TOOBIG: a literal8 message over APPENDLIMIT is NO [TOOBIG]
    before anything is buffered, like ``{n}``; a refused ``~{n+}`` still sends its octets, which
    are skipped, never read as commands; the next command is read normally."""
    body = (b"a9 NOOP\r\n" * (size // 9 + 1))[:size]
    wire = b"a1 APPEND INBOX " + form % size + b"\r\n"
    nonsync = form.endswith(b"+}")
    wire += (body + b"\r\n") if (nonsync or size <= SMALL.max_upload) else b""
    wire += b"a2 NOOP\r\n"
    chunks = [wire[i:i + 1] for i in range(len(wire))] if byte_by_byte else [wire]
    events = run(chunks, SMALL)
    if size > SMALL.max_upload:
        assert events == [Rejected("a1", "message too large", "NO", "TOOBIG"), Noop("a2")]
    else:
        assert events == [Append("a1", "INBOX", (AppendMessage(body, binary=True),)),
                          Noop("a2")]


def test_literal8_minus_and_literal_minus_rules() -> None:
    """RFC 7888 §5 applies to literal8 too: under LITERAL- a ``~{n+}`` over 4096 octets is
    refused (and its octets skipped); ``~{n-}`` is bounded at 4096 even with LITERAL+."""
    body = b"x" * 5000
    wire = b"a1 APPEND INBOX ~{5000+}\r\n" + body + b"\r\na2 NOOP\r\n"
    events = run([wire], Limits(literal_plus=False))
    assert isinstance(events[0], Rejected) and "4096" in events[0].text
    assert events[1:] == [Noop("a2")]
    events = run([b"a1 APPEND INBOX ~{5000-}\r\n" + body + b"\r\na2 NOOP\r\n"])
    assert isinstance(events[0], Rejected) and events[1:] == [Noop("a2")]


def test_literal8_outside_append_is_bad() -> None:
    """RFC 3516 §7: literal8 is only in APPEND's grammar (and FETCH responses); elsewhere it is
    BAD and the stream stays in step."""
    events = run([b"a1 LOGIN ~{4}\r\nfred x\r\na2 NOOP\r\n"])
    assert isinstance(events[0], Rejected) and events[0].status == "BAD"
    assert events[1:] == [Noop("a2")]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60).map(lambda t: t.encode("utf-8")), _LITERAL8_FORMS,
       st.lists(st.integers(0, 200), max_size=5))
def test_utf8_append_data_same_whole_or_split(data: bytes, form: bytes, cuts: list[int]) -> None:
    """RFC 6855 §4: ``APPEND mailbox UTF8 (literal8)``; the reader gives the same command fed
    whole, split anywhere or byte by byte."""
    wire = (b"a1 APPEND INBOX UTF8 (" + form % len(data) + b"\r\n" + data + b")\r\n"
            b"a2 NOOP\r\n")
    expected = [Append("a1", "INBOX", (AppendMessage(data, utf8=True),)), Noop("a2")]
    assert run([wire]) == expected
    assert run(_chunks(wire, cuts)) == expected
    assert run([wire[i:i + 1] for i in range(len(wire))]) == expected
