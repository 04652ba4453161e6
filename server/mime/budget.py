"""Keeping a summary compact: a budget on the text stored across all parts.

Each header value is already capped (MAX_VALUE); this bounds the sum, so that 1,000 parts with
8 KB descriptions or 1,000 forwarded messages with long address lists cannot make a summary of
megabytes. Once the budget is spent, further parts keep only what reads need most (charset,
name, boundary, filename, a short Content-ID; for messages a short subject, date, first senders,
Message-ID) and the summary is marked truncated. Offsets and types are never dropped.
"""

from __future__ import annotations

from dataclasses import replace

from server.mime.addresses import Address, AddressList, Group
from server.mime.model import Envelope, Part
from server.mime.params import Params

__all__ = ["SUMMARY_BUDGET", "part_cost", "slim_part"]

SUMMARY_BUDGET = 96_000
_SHORT = 256
_ESSENTIAL = frozenset({"charset", "name", "boundary", "format", "delsp", "filename", "type"})
_MAX_KEPT_PARAMS = 8
_MAX_KEPT_ADDRESSES = 3


def _len(text: str | None) -> int:
    return len(text) if text is not None else 0


def _addresses_cost(items: AddressList) -> int:
    total = 0
    for a in items:
        if isinstance(a, Group):
            total += len(a.raw_name) + _addresses_cost(a.members)
        else:
            total += _len(a.raw_name) + _len(a.mailbox) + _len(a.host) + 4
    return total


def _envelope_cost(e: Envelope | None) -> int:
    if e is None:
        return 0
    total = sum(_len(v) for v in (e.date, e.subject, e.in_reply_to, e.message_id, e.references))
    for items in (e.from_, e.sender, e.reply_to, e.to, e.cc, e.bcc):
        total += _addresses_cost(items)
    return total


def part_cost(p: Part) -> int:
    """Roughly the characters p adds to the serialized summary."""
    total = 48 + len(p.path) + len(p.type) + len(p.subtype) + len(p.encoding)
    for name, value in p.params + p.disposition_params:
        total += len(name) + len(value) + 6
    for text in (p.id, p.description, p.md5, p.disposition, p.location):
        total += _len(text)
    total += sum(len(t) for t in p.language)
    return total + _envelope_cost(p.envelope)


def _short(text: str | None) -> str | None:
    return text[:_SHORT] if text is not None else None


def _slim_params(params: Params) -> Params:
    kept = [(name, value[:_SHORT]) for name, value in params if name.split("*", 1)[0] in _ESSENTIAL]
    return tuple(kept[:_MAX_KEPT_PARAMS])


def _slim_addresses(items: AddressList) -> AddressList:
    out: list[Address | Group] = []
    for a in items[:_MAX_KEPT_ADDRESSES]:
        if isinstance(a, Group):
            out.append(Group(a.raw_name[:_SHORT], ()))
        else:
            out.append(Address(_short(a.raw_name), _short(a.mailbox), _short(a.host)))
    return tuple(out)


def _slim_envelope(e: Envelope | None) -> Envelope | None:
    if e is None:
        return None
    return Envelope(
        date=_short(e.date),
        timestamp=e.timestamp,
        subject=_short(e.subject),
        from_=_slim_addresses(e.from_),
        message_id=_short(e.message_id),
        truncated=True,
    )


def slim_part(p: Part) -> Part:
    """p with only the fields reads need most, each short."""
    return replace(
        p,
        params=_slim_params(p.params),
        id=_short(p.id),
        description=None,
        md5=None,
        disposition_params=_slim_params(p.disposition_params),
        language=(),
        location=None,
        envelope=_slim_envelope(p.envelope),
    )
