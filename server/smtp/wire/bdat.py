"""CHUNKING (RFC 3030): the BDAT command's argument and the checks of a message sent
in chunks, without I/O.

A chunk is octets counted by the client: no dot-stuffing, no terminator (section 2),
so what follows a chunk is the next command whatever the chunk holds.  A message
declared ``BODY=BINARYMIME`` (section 3) may hold any octets; any other one is text
and gets DATA's rules: lines end with CRLF (RFC 5321 section 2.3.8) and are bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data import DataProblem

# RFC 3030 section 2: chunk-size ::= 1*DIGIT.  20 digits hold any size a client
# could send; more is a malformed command.
MAX_SIZE_DIGITS = 20


class BdatSyntaxError(ValueError):
    """The BDAT argument is malformed: the chunk's length is unknown."""


@dataclass(frozen=True, slots=True)
class BdatCommand:
    size: int
    last: bool


def parse_bdat(arg: str) -> BdatCommand:
    """``chunk-size [SP "LAST"]`` (RFC 3030 section 2; LAST in any case)."""
    parts = arg.split(" ")
    if not 1 <= len(parts) <= 2:
        raise BdatSyntaxError(arg)
    size = parts[0]
    # ASCII digits only: str.isdigit() accepts "²" and full-width digits
    if not (size.isascii() and size.isdigit()) or len(size) > MAX_SIZE_DIGITS:
        raise BdatSyntaxError(arg)
    if len(parts) == 2 and parts[1].upper() != "LAST":
        raise BdatSyntaxError(arg)
    return BdatCommand(int(size), len(parts) == 2)


def check_text(content: bytes, *, max_line: int = 0,
               normalize: bool = False) -> tuple[bytes, DataProblem | None]:
    """A text (non-BINARYMIME) message received by BDAT: the content (bare CR and LF
    made CRLF when ``normalize``) and the problem that refuses it, as DATA reports
    them (:class:`~.data.DataDecoder`).  ``max_line`` counts the CRLF (0: no limit)."""
    crlf = content.count(b"\r\n")
    bare = content.count(b"\r") != crlf or content.count(b"\n") != crlf
    if bare and normalize:
        content = content.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(
            b"\n", b"\r\n")
        bare = False
    if max_line and any(len(line) + 2 > max_line for line in content.split(b"\r\n")):
        return content, DataProblem.LINE_TOO_LONG
    if bare:
        return content, DataProblem.BARE_LINE_ENDING
    return content, None


