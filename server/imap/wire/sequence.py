"""Sequence sets (RFC 9051 §9 ``sequence-set``, RFC 5182 ``$``), kept symbolic: ``*`` is the
string ``"*"`` until the session resolves it against the mailbox, ``$`` is :attr:`saved`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = ["SeqNumber", "SequenceSet", "STAR", "compress_numbers"]

STAR: Literal["*"] = "*"
SeqNumber = int | Literal["*"]


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """Ranges as sent (``5:3`` stays ``(5, 3)``), or the saved search result ``$``."""

    ranges: tuple[tuple[SeqNumber, SeqNumber], ...] = ()
    saved: bool = False

    def resolve(self, largest: int) -> Iterator[tuple[int, int]]:
        """Each range as (low, high) with ``*`` standing for ``largest`` (RFC 9051 §9: the
        range ``n:m`` includes both ends in either order). ``$`` is the session's to resolve."""
        if self.saved:
            raise ValueError("the saved result $ is resolved by the session")
        for a, b in self.ranges:
            x = largest if a == STAR else a
            y = largest if b == STAR else b
            yield (min(x, y), max(x, y))

    def render(self) -> bytes:
        if self.saved:
            return b"$"
        return b",".join(
            _num(a) if a == b else _num(a) + b":" + _num(b) for a, b in self.ranges
        )


def _num(n: SeqNumber) -> bytes:
    return b"*" if n == STAR else str(n).encode("ascii")


def compress_numbers(numbers: Iterable[int]) -> SequenceSet:
    """The shortest set of ranges holding ``numbers`` (for APPENDUID, COPYUID, VANISHED,
    ESEARCH ALL; RFC 4315 §3, RFC 4731 §3.1)."""
    ranges: list[tuple[SeqNumber, SeqNumber]] = []
    start = prev = -2
    for n in sorted(set(numbers)):
        if n == prev + 1:
            prev = n
            continue
        if start > 0:
            ranges.append((start, prev))
        start = prev = n
    if start > 0:
        ranges.append((start, prev))
    return SequenceSet(tuple(ranges))
