"""Framing of the DATA phase (RFC 5321 sections 4.1.1.4 and 4.5.2), without I/O.

The data ends with the five octets CRLF "." CRLF, and only with them: a "." line after a
bare LF (``\\n.\\r\\n``, ``\\n.\\n``) or a bare CR does not end it.  Servers that accepted such
endings let a sender smuggle a second message past the first MTA's checks ("SMTP
smuggling", 2023).  Any bare CR or LF is also either a reason to refuse the message
(``reject``) or turned into CRLF (``normalize``).

A *line* starts at the beginning of the data or after CRLF, and only there is a leading
"." removed (dot-unstuffing, section 4.5.2) or the terminator recognised.

:class:`DataDecoder` is fed the octets as they come, in pieces of any size, and reports how
many it used: everything after the terminator belongs to the next command (PIPELINING).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DataProblem(enum.Enum):
    """Why the data cannot be accepted, in the order they are reported."""

    TOO_BIG = "too_big"
    LINE_TOO_LONG = "line_too_long"
    BARE_LINE_ENDING = "bare_line_ending"


@dataclass(frozen=True, slots=True)
class DataResult:
    content: bytes              # the message (dot-unstuffed, CRLF line endings)
    size: int                   # octets received (before unstuffing), counted even when too big
    problem: DataProblem | None


class DataDecoder:
    """Collects one message from the DATA stream.

    ``max_size`` bounds the stored message (0: none); ``max_line`` bounds a text line
    including its CRLF and without the transparency dot (0: none); ``normalize`` turns bare
    CR and LF into CRLF instead of reporting them.
    """

    __slots__ = (
        "_bare",
        "_line_start",
        "_max_line",
        "_max_size",
        "_normalize",
        "_out",
        "_partial",
        "_size",
        "_stored",
        "_too_big",
        "_too_long",
        "done",
    )

    def __init__(self, *, max_size: int = 0, max_line: int = 0, normalize: bool = False) -> None:
        self._max_size = max_size
        self._max_line = max_line
        self._normalize = normalize
        self._partial = bytearray()     # an unfinished line
        self._line_start = True         # the next octet starts a line (after CRLF)
        self._out: list[bytes] = []
        self._stored = 0
        self._size = 0
        self._too_big = False
        self._too_long = False
        self._bare = False
        self.done = False

    def feed(self, chunk: bytes) -> int:
        """Take octets; returns how many were used (fewer than given once the end is seen)."""
        if self.done:
            return 0
        pos = 0
        end = len(chunk)
        line_by_line_until = 0  # lines the fast path looked at and left to the slow one
        while pos < end:
            if pos >= line_by_line_until and self._line_start and not self._partial:
                taken, looked_at = self._plain_lines(chunk, pos)
                pos += taken
                if not taken:
                    line_by_line_until = looked_at
                if pos >= end:
                    break
            nl = chunk.find(b"\n", pos)
            if nl < 0:
                self._keep_partial(chunk[pos:])
                return end
            piece = chunk[pos: nl + 1]
            pos = nl + 1
            if self._partial:
                self._partial += piece
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = piece
            if self._line(line):
                self.done = True
                return pos
        return end

    def _plain_lines(self, chunk: bytes, pos: int) -> tuple[int, int]:
        """The fast path, at a line start: take the run of whole lines from ``pos`` on
        that are plain CRLF text (no bare CR or LF, no line starting with ".", none too
        long) in one piece, as the line-by-line path would.  Returns the octets taken,
        and where the run it looked at ends (when it took none, the lines up to there
        go one by one: each octet is looked at a bounded number of times)."""
        if chunk[pos:pos + 1] == b".":
            return 0, pos
        cut = chunk.find(b"\n.", pos) + 1
        if cut <= 0:
            cut = chunk.rfind(b"\n", pos) + 1
            if cut <= pos:
                return 0, pos
        lines = chunk.count(b"\n", pos, cut)
        if chunk.count(b"\r\n", pos, cut) != lines or chunk.count(b"\r", pos, cut) != lines:
            return 0, cut
        run = chunk[pos:cut] if pos or cut < len(chunk) else chunk
        n = cut - pos
        limit = self._max_line
        if limit and n > limit and max(map(len, run.split(b"\n"))) + 1 > limit:
            return 0, cut
        self._size += n
        if self._too_big or self._too_long or (self._bare and not self._normalize):
            return n, cut
        self._out.append(run)
        self._stored += n
        if self._max_size and self._stored > self._max_size:
            self._too_big = True
            self._drop_output()
        return n, cut

    def result(self) -> DataResult:
        problem = None
        if self._too_big:
            problem = DataProblem.TOO_BIG
        elif self._too_long:
            problem = DataProblem.LINE_TOO_LONG
        elif self._bare and not self._normalize:
            problem = DataProblem.BARE_LINE_ENDING
        content = b"" if problem else b"".join(self._out)
        return DataResult(content, self._size, problem)

    def _keep_partial(self, piece: bytes) -> None:
        self._partial += piece
        limit = self._max_line or self._max_size
        if limit and len(self._partial) > limit + 2:
            # An endless line: keep counting, keep only its last octet (a CR that may
            # start the line's CRLF); what matters now is where the line ends.
            self._count(len(self._partial) - 1)
            self._too_long = self._too_long or bool(self._max_line)
            self._too_big = self._too_big or not self._max_line
            self._drop_output()
            del self._partial[:-1]
            self._line_start = False    # the rest is no line start: no "." terminator

    def _line(self, line: bytes) -> bool:
        """Handle one line ending in LF; True at the terminator."""
        n = len(line)
        if (self._line_start and line[:1] != b"." and line.count(b"\r") == 1
                and line[-2:] == b"\r\n" and (not self._max_line or n <= self._max_line)):
            # The common case: a plain CRLF line, kept as it is.
            self._size += n
            if self._too_big or self._too_long or (self._bare and not self._normalize):
                return False
            self._out.append(line)
            self._stored += n
            if self._max_size and self._stored > self._max_size:
                self._too_big = True
                self._drop_output()
            return False
        crlf = line.endswith(b"\r\n")
        if self._line_start and line == b".\r\n":
            return True
        self._count(len(line))
        text = line[:-2] if crlf else line[:-1]
        if self._line_start and text.startswith(b"."):
            text = text[1:]
        bare = not crlf or b"\r" in text
        if bare:
            self._bare = True
        if self._max_line and len(text) + 2 > self._max_line:
            self._too_long = True
            self._drop_output()
        self._line_start = crlf
        if self._too_big or self._too_long or (bare and not self._normalize):
            return False
        if bare:
            text = text.replace(b"\r", b"\r\n")
        self._out.append(text)
        self._out.append(b"\r\n")
        self._stored += len(text) + 2
        if self._max_size and self._stored > self._max_size:
            self._too_big = True
            self._drop_output()
        return False

    def _count(self, n: int) -> None:
        self._size += n

    def _drop_output(self) -> None:
        self._out.clear()
        self._stored = 0


def dot_stuff(content: bytes) -> bytes:
    """The inverse of the decoder for CRLF text: what a client sends for ``content``,
    terminator included (tests and the benchmark use it)."""
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"
