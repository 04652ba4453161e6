"""Email/query's sort (RFC 8621 section 4.4.2) and the thread-wide keyword facts that
the ``*InThreadHaveKeyword`` sorts and filter conditions (section 4.4.1) need.

String properties compare in the comparator's collation (RFC 8620 section 5.5, the
collations of :data:`.query.COLLATIONS`): i;ascii-casemap folds ASCII letters only
(RFC 4790 section 9.2), i;unicode-casemap is RFC 5051's titlecase and decomposition,
i;ascii-numeric compares the leading digits as a number, a string without them
after every number (RFC 4790 section 9.1)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from fdb_layers.mail import Email
from server.mime.charsets import surrogate_text
from server.mime.model import MessageSummary
from server.mime.subjects import casemap, extract_base_subject

from .headers import addresses
from .query import Comparator

KEYWORD_SORTS = ("hasKeyword", "allInThreadHaveKeyword", "someInThreadHaveKeyword")
THREAD_SORTS = ("allInThreadHaveKeyword", "someInThreadHaveKeyword")
SUMMARY_SORTS = ("from", "to", "subject", "sentAt")
# What an email's own updates cannot change (RFC 8620 section 5.6, upToId): an email's
# place in these sorts moves only when it is created or destroyed.
IMMUTABLE_SORTS = ("receivedAt", "size", "from", "to", "subject", "sentAt")
DEFAULT_SORT = (Comparator("receivedAt", False),)

SortKey = bytes | str | float | int | tuple[int, int] | tuple[int, float] | bool


@dataclass(frozen=True, slots=True)
class ThreadKeywords:
    """The keywords every email of a thread has, and those some email has."""

    all: frozenset[str]
    some: frozenset[str]


def thread_keywords(emails: Iterable[Email]) -> dict[str, ThreadKeywords]:
    """Thread id -> its keywords, over every email given (the whole account: a thread's
    emails may sit in other mailboxes than the query's)."""
    every: dict[str, frozenset[str]] = {}
    some: dict[str, set[str]] = {}
    for email in emails:
        own = frozenset(email.keywords)
        every[email.thread_id] = every[email.thread_id] & own \
            if email.thread_id in every else own
        some.setdefault(email.thread_id, set()).update(own)
    return {t: ThreadKeywords(every[t], frozenset(some[t])) for t in every}


def collation_key(text: str, collation: str) -> SortKey:
    """The comparison form of ``text`` in a collation of :data:`.query.COLLATIONS`."""
    if collation == "i;ascii-casemap":
        return text.encode("utf-8", "surrogateescape").upper()
    if collation == "i;ascii-numeric":
        digits = len(text) - len(text.lstrip("0123456789"))
        return (0, int(text[:digits])) if digits else (1, 0)  # no number: +infinity
    return casemap(text)


def _first_address(summary: MessageSummary | None, field: str) -> str:
    """Section 4.4.2 from / to: the name of the first address, else its email, else ""."""
    if summary is None:
        return ""
    env = summary.envelope
    for item in addresses(env.from_ if field == "from" else env.to):
        if isinstance(item, dict):
            name, email = item.get("name"), item.get("email")
            return name if isinstance(name, str) and name else \
                email if isinstance(email, str) else ""
    return ""


def sent_at(summary: MessageSummary | None) -> tuple[int, float]:
    """The sentAt (the Date header field) as a sortable value; an email without one
    (sentAt null) before every dated one."""
    if summary is not None and summary.envelope.date:
        try:
            when = parsedate_to_datetime(surrogate_text(summary.envelope.date))
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return (1, when.timestamp())
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return (0, 0.0)


class Sortable(Protocol):
    @property
    def email(self) -> Email: ...

    @property
    def summary(self) -> MessageSummary | None: ...


S = TypeVar("S", bound=Sortable)


def sort_key(comparator: Comparator, threads: dict[str, ThreadKeywords]
             ) -> Callable[[Sortable], SortKey]:
    """The key function of one comparator."""
    prop, keyword = comparator.property, (comparator.keyword or "").lower()
    collation = comparator.collation
    if prop == "receivedAt":
        return lambda c: c.email.received_at
    if prop == "size":
        return lambda c: c.email.size
    if prop in ("from", "to"):
        return lambda c: collation_key(_first_address(c.summary, prop), collation)
    if prop == "subject":  # RFC 5256 section 2.1's base subject
        return lambda c: collation_key(extract_base_subject(
            c.summary.envelope.decoded_subject or "" if c.summary else ""), collation)
    if prop == "sentAt":
        return lambda c: sent_at(c.summary)
    if prop == "hasKeyword":  # false before true when ascending
        return lambda c: keyword in c.email.keywords
    empty = ThreadKeywords(frozenset(), frozenset())
    if prop == "allInThreadHaveKeyword":
        return lambda c: keyword in threads.get(c.email.thread_id, empty).all
    assert prop == "someInThreadHaveKeyword", prop
    return lambda c: keyword in threads.get(c.email.thread_id, empty).some


def sort_emails(items: Sequence[S], sort: Sequence[Comparator],
                threads: dict[str, ThreadKeywords]) -> list[S]:
    """Stable sorts, last comparator first; with no sort, newest received first; the
    email id breaks the remaining ties, so the order is total and the same each call."""
    out = sorted(items, key=lambda c: c.email.id)
    for comparator in reversed(sort or DEFAULT_SORT):
        out.sort(key=sort_key(comparator, threads),
                 reverse=not comparator.is_ascending)
    return out
