"""Properties of the parser as a whole (STYLE.md "Parse without I/O"): serialize then parse gives
the same command; the same events whole, byte by byte or in any split."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server.imap.wire.commands import Command
from server.imap.wire.parser import CommandError, parse_command
from server.imap.wire.render_command import render_command

from ._feed import run
from .strategies import commands


@settings(max_examples=400, deadline=None)
@given(commands, st.booleans())
def test_render_then_parse_is_identity(command: Command, utf8: bool) -> None:
    assert parse_command(render_command(command, utf8=utf8), utf8=utf8) == command


@settings(max_examples=200, deadline=None)
@given(commands, st.booleans())
def test_reader_gives_the_command_back(command: Command, literal_plus: bool) -> None:
    data = render_command(command, literal_plus=literal_plus)
    assert run([data]) == [command]


@settings(max_examples=150, deadline=None)
@given(st.lists(commands, min_size=1, max_size=4), st.data())
def test_any_split_gives_the_same_events(batch: list[Command], data: st.DataObject) -> None:
    stream = b"".join(render_command(c, literal_plus=i % 2 == 0) for i, c in enumerate(batch))
    whole = run([stream], continuations=True)
    assert [e for e in whole if not type(e).__name__ == "ContinuationRequired"] == batch
    bytewise = run([stream[i : i + 1] for i in range(len(stream))], continuations=True)
    assert bytewise == whole
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert run(pieces, continuations=True) == whole


@settings(max_examples=400, deadline=None)
@given(commands, st.data())
def test_mutated_commands_give_a_command_or_a_bad(command: Command, data: st.DataObject) -> None:
    """Garbage near the grammar: flip, drop or insert octets of a valid command; the parser
    answers with a command or a CommandError, never another exception."""
    raw = bytearray(render_command(command)[:-2])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        op = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        octet = data.draw(st.sampled_from(b' ()[]<>{}"\\*%$:,.+-~0129AZaz\x00\x80\xff\r'))
        if op == "insert" or not raw:
            raw.insert(pos, octet)
        elif op == "drop":
            del raw[pos]
        else:
            raw[pos] = octet
    try:
        parse_command(bytes(raw) + b"\r\n")
    except CommandError as exc:
        assert exc.status in ("BAD", "NO") and exc.text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.booleans())
def test_random_bytes_give_a_command_or_a_bad(raw: bytes, utf8: bool) -> None:
    try:
        parse_command(raw + b"\r\n", utf8)
    except CommandError:
        pass
