"""Drive a CommandReader the way the I/O loop does."""

from __future__ import annotations

from collections.abc import Iterable

from server.imap.wire.parser import CommandError, parse_command
from server.imap.wire.framing import (
    NEED_DATA, CommandReader, ContinuationRequired, Event, Limits,
)


def drain(reader: CommandReader) -> list[Event]:
    out: list[Event] = []
    while True:
        event = reader.next_event()
        if event is NEED_DATA:
            return out
        out.append(event)


def run(
    chunks: Iterable[bytes], limits: Limits | None = None, utf8: bool = False,
    continuations: bool = False,
) -> list[Event]:
    """Every event for the chunks fed in order; continuation requests only if asked."""
    reader = CommandReader(limits, utf8)
    events: list[Event] = []
    for chunk in chunks:
        reader.feed(chunk)
        events += drain(reader)
    if not continuations:
        events = [e for e in events if not isinstance(e, ContinuationRequired)]
    return events


def one(data: bytes, utf8: bool = False) -> Event:
    events = run([data], utf8=utf8)
    assert len(events) == 1, events
    return events[0]


def expect_bad(wire: bytes, tag: str | None = "a") -> None:
    """The parser refuses ``wire`` with a BAD that carries ``tag`` and says why."""
    try:
        parse_command(wire)
    except CommandError as exc:
        assert exc.tag == tag and exc.status == "BAD" and exc.text
    else:
        raise AssertionError(f"{wire!r} was accepted")
