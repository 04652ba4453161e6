"""LMTP command lines (RFC 2033 section 4, RFC 5321 section 4.1), without I/O.

:class:`CommandReader` is fed octets as they arrive and hands out whole command lines;
the I/O loop asks it for the next line, and, after a ``354``, gives the octets to a
:class:`~server.smtp.wire.data.DataDecoder` instead (through :meth:`CommandReader.take`),
so that what follows the data's terminator stays for the next command (PIPELINING).
:func:`parse_command` splits one line into a verb and its argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_VERB = re.compile(r"[A-Za-z]{1,16}")


@dataclass(frozen=True, slots=True)
class Command:
    verb: str   # upper case
    arg: str    # the rest of the line, outer spaces removed


@dataclass(frozen=True, slots=True)
class Malformed:
    reply: str


def parse_command(line: bytes) -> Command | Malformed:
    """``verb [SP argument]`` (RFC 5321 section 4.1.1); the line without its CRLF.
    UTF-8 is allowed in the argument (SMTPUTF8 addresses, RFC 6531 section 3.3)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return Malformed("500 5.5.2 Command line is not UTF-8")
    if any(c < " " and c != "\t" or c == "\x7f" for c in text):
        return Malformed("500 5.5.2 Control character in command line")
    verb, _, arg = text.strip(" ").partition(" ")
    if not _VERB.fullmatch(verb):
        return Malformed("500 5.5.2 Syntax error, command unrecognized")
    return Command(verb.upper(), arg.strip(" "))


TOO_LONG: Final = "too long"


class CommandReader:
    """Buffers octets and cuts them into lines of at most ``max_length`` octets with
    their line ending.  A longer line is reported once, as :data:`TOO_LONG`, and its
    octets up to its end are dropped (none of it is taken for a command)."""

    __slots__ = ("_buffer", "_discarding", "max_length")

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def __len__(self) -> int:
        return len(self._buffer)

    def has_line(self) -> bool:
        """A whole line (or an over-long one) is waiting: the client pipelines."""
        return b"\n" in self._buffer or len(self._buffer) > self.max_length

    def next_line(self) -> bytes | str | None:
        """The next line without CRLF (a bare LF also ends it), :data:`TOO_LONG`, or None
        if more octets are needed."""
        while True:
            end = self._buffer.find(b"\n")
            if self._discarding:
                if end < 0:
                    self._buffer.clear()
                    return None
                del self._buffer[:end + 1]
                self._discarding = False
                continue
            if end < 0:
                if len(self._buffer) > self.max_length:
                    self._discarding = True
                    self._buffer.clear()
                    return TOO_LONG
                return None
            if end + 1 > self.max_length:
                del self._buffer[:end + 1]
                return TOO_LONG
            line = bytes(self._buffer[:end])
            del self._buffer[:end + 1]
            return line[:-1] if line.endswith(b"\r") else line

    def take(self) -> bytes:
        """Everything buffered (for the data decoder; it gives back what it did not use
        through :meth:`give_back`)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def give_back(self, data: bytes) -> None:
        self._buffer[:0] = data


__all__ = ["TOO_LONG", "Command", "CommandReader", "Malformed", "parse_command"]
