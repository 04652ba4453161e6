"""A bounded per-process cache of the list-view properties of stored emails.

The header convenience properties, ``preview`` and ``hasAttachment`` (RFC 8621 sections
4.1.3 and 4.1.4) of an email come from the summary computed once at delivery, which never
changes while the email exists: a mail list view asks for them again on every refresh,
and decoding 50 summaries is most of an Email/get.  Entries are keyed by (account id,
email id, blob id, received-at): an email id that came back with another message would
miss.  The cache is consulted only for an email whose record the request has just read
from the store in the caller's account, so it never answers for an email that is gone or
that the account cannot see; ``keywords`` and ``mailboxIds`` always come from that record.
Nothing but memory is lost when a process drops it (DESIGN.md: droppable caches)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from prometheus_client import Counter

from fdb_layers.mail import Email

from .json import JsonObject, JsonValue

ENTRIES = 20_000
"""Emails whose properties one process keeps (a few KB each): the pages that its
clients' list views show, many times over."""

HEAD_CACHE = Counter(
    "fdbmail_jmap_email_head_cache_total",
    "Emails whose list-view properties Email/get found in the process's cache ('hit') or "
    "decoded from the stored summary ('miss').",
    ["result"])


@dataclass(frozen=True, slots=True)
class Head:
    """One email's summary-derived properties, and the convenience properties whose
    header field occurs more than once (their last instance is read from the message)."""

    properties: JsonObject
    repeated: frozenset[str]

    def usable(self, wanted: tuple[str, ...]) -> bool:
        return not self.repeated or not any(p in self.repeated for p in wanted)


def copy_value(value: JsonValue) -> JsonValue:
    """A held value as the caller's own: the values a :class:`Head` holds are JSON
    scalars, arrays of strings (message ids) or arrays of EmailAddress objects (flat
    objects of strings and nulls), so a copy one level deep is a whole copy."""
    if type(value) is list:
        return [dict(v) if type(v) is dict else v for v in value]
    return value


class HeadCache:
    """Least recently used :class:`Head` entries, at most ``entries``."""

    def __init__(self, entries: int = ENTRIES) -> None:
        self.entries = entries
        self._heads: OrderedDict[tuple[str, str, str, float], Head] = OrderedDict()

    @staticmethod
    def _key(account_id: str, email: Email) -> tuple[str, str, str, float]:
        return account_id, email.id, email.blob_id, email.received_at

    def get(self, account_id: str, email: Email) -> Head | None:
        key = self._key(account_id, email)
        head = self._heads.get(key)
        if head is not None:
            self._heads.move_to_end(key)
        return head

    def put(self, account_id: str, email: Email, head: Head) -> None:
        key = self._key(account_id, email)
        self._heads[key] = head
        self._heads.move_to_end(key)
        while len(self._heads) > self.entries:
            self._heads.popitem(last=False)

    def __len__(self) -> int:
        return len(self._heads)

    @staticmethod
    def count(hits: int, misses: int) -> None:
        if hits:
            HEAD_CACHE.labels("hit").inc(hits)
        if misses:
            HEAD_CACHE.labels("miss").inc(misses)
