"""SORT and UID SORT (RFC 5256 §3) with ESORT (RFC 5267 §3) and SORT=DISPLAY (RFC 5957).

Sort keys compare with i;ascii-casemap (RFC 4790 §9.2: ASCII letters folded to upper case,
then octets), except DISPLAYFROM / DISPLAYTO which compare decoded display names with
i;unicode-casemap (RFC 5957 §2, RFC 5051).  Every tie is broken by sequence number
(RFC 5256 §3); REVERSE reverses its own criterion only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import cmp_to_key

from server.imap.wire import commands as c
from server.mime import Address, AddressList, Group, MessageSummary
from server.mime.subjects import casemap, extract_base_subject

from .search import (
    SUMMARY, Candidate, check_charset, run_search, save_result, uses_modseq, write_result,
)
from .state import Session

__all__ = ["ascii_casemap", "sent_time", "sort", "sort_candidates"]

SortValue = bytes | int | float | str


def ascii_casemap(text: str) -> bytes:
    """i;ascii-casemap's comparison form (RFC 4790 §9.2)."""
    return text.encode("utf-8", "surrogateescape").upper()


def _first(items: AddressList) -> Address | None:
    for item in items:
        if isinstance(item, Group):
            if item.members:
                return item.members[0]
        else:
            return item
    return None


def _mailbox(items: AddressList) -> bytes:
    """The addr-mailbox (local part) of the first address (RFC 5256 §3, FROM / TO / CC)."""
    first = _first(items)
    return ascii_casemap(first.mailbox or "") if first is not None else b""


def _display(items: AddressList) -> str:
    """The decoded display name of the first address, else its addr-spec (RFC 5957 §2)."""
    first = _first(items)
    if first is None:
        return ""
    return casemap(first.name or first.email)


def sent_time(cand: Candidate) -> float:
    """The sent date (RFC 5256 §2.2): the Date header as a UTC time, else the internal date."""
    summary = cand.summary
    if summary is not None and summary.envelope.date:
        try:
            when = parsedate_to_datetime(summary.envelope.date)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return when.timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return cand.email.received_at if cand.email is not None else 0.0


def _subject(summary: MessageSummary | None) -> bytes:
    """The base subject (RFC 5256 §2.1) of the decoded subject."""
    if summary is None:
        return b""
    return ascii_casemap(extract_base_subject(summary.envelope.decoded_subject or ""))


_KEYS: dict[str, Callable[[Candidate], SortValue]] = {
    "ARRIVAL": lambda x: x.email.received_at if x.email is not None else 0.0,
    "DATE": sent_time,
    "SIZE": lambda x: x.email.size if x.email is not None else 0,
    "SUBJECT": lambda x: _subject(x.summary),
    "FROM": lambda x: _mailbox(x.summary.envelope.from_) if x.summary else b"",
    "TO": lambda x: _mailbox(x.summary.envelope.to) if x.summary else b"",
    "CC": lambda x: _mailbox(x.summary.envelope.cc) if x.summary else b"",
    "DISPLAYFROM": lambda x: _display(x.summary.envelope.from_) if x.summary else "",
    "DISPLAYTO": lambda x: _display(x.summary.envelope.to) if x.summary else "",
}


def sort_candidates(found: list[Candidate], criteria: tuple[tuple[bool, str], ...]
                    ) -> list[Candidate]:
    """The messages in the criteria's order, ties by sequence number."""
    values = {x.seq: [_KEYS[name](x) for _, name in criteria] for x in found}
    reverse = [r for r, _ in criteria]

    def compare(a: Candidate, b: Candidate) -> int:
        for rev, va, vb in zip(reverse, values[a.seq], values[b.seq], strict=False):
            if va != vb:
                less = va < vb  # type: ignore[operator]
                return (1 if less else -1) if rev else (-1 if less else 1)
        return a.seq - b.seq

    return sorted(found, key=cmp_to_key(compare))


async def sort(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Sort)
    check_charset(cmd.charset, utf8_accept=s.utf8_accept, required=True)
    found = await run_search(s, cmd.key, need=SUMMARY)
    ordered = sort_candidates(found, cmd.criteria)
    numbers = [x.uid if cmd.uid else x.seq for x in ordered]
    modseq = max((x.message.modseq for x in found), default=None) if uses_modseq(cmd.key) \
        else None
    if cmd.returns is not None and "SAVE" in cmd.returns:
        assert s.selected is not None
        save_result(s.selected, cmd.returns, [x.uid for x in found])  # RFC 5182 §2.4
    write_result(s, cmd.tag, cmd.uid, cmd.returns, numbers, modseq, sorted_=True, name="SORT")
    s.ok(cmd.tag, ("UID SORT" if cmd.uid else "SORT") + " completed")

