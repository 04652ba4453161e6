"""Annotations of mailboxes and of the server (IMAP METADATA, RFC 5464).

An annotation is an entry name -- a ``/``-separated path that starts with ``/private``
or ``/shared`` (RFC 5464 section 3.2), given here already checked and lower-cased by
the protocol edge -- and a value of octets.  They are kept per account and per
mailbox *id* (``""`` is the server, section 3.1), so a RENAME keeps them without a
write (RENAME of INBOX copies INBOX's to the new mailbox, section 4.1) and
:func:`fdb_layers.mail.mailboxes.delete_mailbox` drops them with the mailbox (section
4.1).  Server annotations are per account too: one account never
reads another's.

Keys: ``annotation[mailbox_id, *components] -> value`` (the components of
``/private/comment`` are ``("private", "comment")``, so an entry's descendants are one
range) and ``annotation_count[mailbox_id] -> int64``, whose sum over the account is
held under :data:`MAX_ANNOTATIONS`; the account counter ``annot`` moves at every change,
for :func:`watch_annotations` (IMAP NOTIFY's metadata events).  Writes read what they
replace, so running one again after ``commit_unknown_result`` writes the same keys and
counts nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.base import Engine, Transaction, Watch
from ..keys import decode_int, encode_int
from .errors import AnnotationTooLarge, MailboxNotFound, TooManyAnnotations
from .layout import ANNOTATIONS, AccountKeys, MailboxRecord, account_keys

MAX_VALUE = 16 * 1024  # octets of one value (FoundationDB: values under 10 KB kept small)
MAX_ANNOTATIONS = 256  # entries of one account, server and mailboxes together (RFC 5464
# section 4.1: at least 1024 octets a value and 10 entries a mailbox or server)
SERVER = ""  # the mailbox id of server annotations


def _components(entry: str) -> tuple[str, ...]:
    parts = entry.split("/")
    if len(parts) < 2 or parts[0] or not all(parts[1:]):
        raise ValueError(f"not an entry name: {entry[:80]!r}")
    return tuple(parts[1:])


def _name(components: Sequence[object]) -> str:
    return "/" + "/".join(str(c) for c in components)


async def get_annotations(
    tr: Transaction, account_id: str, mailbox_id: str, entry: str, depth: int | None = 0
) -> list[tuple[str, bytes]]:
    """``entry``'s value if it has one, then its descendants down to ``depth`` levels
    below it (None: all of them, RFC 5464 section 4.2.2 ``infinity``), in key order."""
    keys = account_keys(account_id)
    parts = _components(entry)
    out: list[tuple[str, bytes]] = []
    value = await tr.get(keys.annotation.pack((mailbox_id, *parts)))
    if value is not None:
        out.append((entry, value))
    if depth == 0:
        return out
    for kv in await tr.get_range(*keys.annotation.range((mailbox_id, *parts))):
        below = keys.annotation.unpack(kv.key)[1:]
        if depth is None or len(below) - len(parts) <= depth:
            out.append((_name(below), kv.value))
    return out


async def count_annotations(tr: Transaction, account_id: str) -> int:
    """The account's entries, server and mailboxes together."""
    keys = account_keys(account_id)
    return sum(decode_int(kv.value)
               for kv in await tr.get_range(*keys.annotation_count.range()))


async def set_annotations(
    tr: Transaction,
    account_id: str,
    mailbox_id: str,
    entries: Sequence[tuple[str, bytes | None]],
) -> None:
    """Set (or, for None, remove) each entry of one mailbox (``SERVER``: the server's),
    all or none (RFC 5464 section 4.3): AnnotationTooLarge, TooManyAnnotations or
    MailboxNotFound before anything is written.  A later duplicate wins."""
    keys = account_keys(account_id)
    if mailbox_id != SERVER:
        raw = await tr.get(keys.mailbox.pack((mailbox_id,)))
        if raw is None or MailboxRecord.decode(raw).deleted:
            raise MailboxNotFound(mailbox_id)
    wanted = {_components(entry): value for entry, value in entries}
    if any(v is not None and len(v) > MAX_VALUE for v in wanted.values()):
        raise AnnotationTooLarge(MAX_VALUE)
    delta = 0
    changed = False
    for parts, value in wanted.items():
        old = await tr.get(keys.annotation.pack((mailbox_id, *parts)))
        delta += (value is not None) - (old is not None)
        changed = changed or old != value
    count_key = keys.annotation_count.pack((mailbox_id,))
    if delta > 0 and await count_annotations(tr, account_id) + delta > MAX_ANNOTATIONS:
        raise TooManyAnnotations(account_id)
    if changed:
        tr.add(keys.count_key(ANNOTATIONS), 1)
    for parts, value in wanted.items():
        key = keys.annotation.pack((mailbox_id, *parts))
        if value is None:
            tr.clear(key)
        else:
            tr.set(key, value)
    if delta:
        count = decode_int(await tr.get(count_key)) + delta
        if count:
            tr.set(count_key, encode_int(count))
        else:
            tr.clear(count_key)


async def copy_annotations(
    tr: Transaction, keys: AccountKeys, source_id: str, target_id: str
) -> None:
    """Give a new mailbox (``target_id``, which has none) the annotations of
    ``source_id``: RENAME of INBOX (RFC 5464 section 4.1: "copied from the original
    INBOX to the renamed mailbox").  TooManyAnnotations past the account's cap."""
    found = await tr.get_range(*keys.annotation.range((source_id,)))
    if not found:
        return
    if await count_annotations(tr, keys.account_id) + len(found) > MAX_ANNOTATIONS:
        raise TooManyAnnotations(keys.account_id)
    for kv in found:
        tr.set(keys.annotation.pack((target_id, *keys.annotation.unpack(kv.key)[1:])), kv.value)
    tr.set(keys.annotation_count.pack((target_id,)), encode_int(len(found)))
    tr.add(keys.count_key(ANNOTATIONS), 1)


def clear_annotations(tr: Transaction, keys: AccountKeys, mailbox_id: str) -> None:
    """Drop every annotation of a mailbox being deleted (RFC 5464 section 4.1)."""
    tr.clear_range(*keys.annotation.range((mailbox_id,)))
    tr.clear(keys.annotation_count.pack((mailbox_id,)))
    tr.add(keys.count_key(ANNOTATIONS), 1)


async def watch_annotations(engine: Engine, account_id: str) -> Watch:
    """A watch that fires at the account's next change of annotations (IMAP NOTIFY)."""
    return await engine.watch(account_keys(account_id).count_key(ANNOTATIONS))
