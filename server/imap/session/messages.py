"""FETCH and STORE with their UID forms (RFC 9051 sections 6.4.5, 6.4.6, 6.4.9).

FETCH: FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE (from the
summary stored at delivery), BODY[] / BODY.PEEK[] of the whole message and its HEADER,
HEADER.FIELDS(.NOT) and TEXT, with <partial>; sections are range reads of the blob.
Part numbers are not served yet (NO [CANNOT]).  A BODY[] without PEEK sets \\Seen in a
read-write mailbox and reports the new FLAGS in the same response.

No EXPUNGE exists yet, so the UID map only grows: numbers never shift under a command.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from fdb_layers.mail import (
    SEEN,
    Email,
    Message,
    Transaction,
    get_email,
    get_summary,
    keyword_from_imap,
    keyword_to_imap,
    list_messages,
    store_keywords,
    transact,
)
from server.blobs import BlobStore
from server.imap.wire import commands as c
from server.imap.wire.fetch import FetchAttr, FetchBody, FetchItem
from server.imap.wire.fetch_data import (
    FetchData,
    FetchPair,
    item_body,
    item_bodystructure,
    item_envelope,
    item_flags,
    item_internaldate,
    item_section,
    item_size,
    item_uid,
)
from server.imap.wire.sequence import SequenceSet
from server.mime.model import MessageSummary

from .errors import bad, no
from .state import Selected, Session

_SUMMARY = {"ENVELOPE", "BODY", "BODYSTRUCTURE"}
_EMAIL = {"INTERNALDATE", "RFC822.SIZE"}


def resolve(sel: Selected, messages: SequenceSet, uid: bool) -> list[tuple[int, int]]:
    """(sequence number, UID) of the messages a set names, in order (RFC 9051 section 9:
    ``*`` is the largest number in use; a UID set may name UIDs that do not exist)."""
    if messages.saved:
        raise bad("$ (SEARCHRES) is not supported")
    uids = sel.uids
    if uid:
        largest = uids[-1] if uids else 0
        wanted = [(lo, hi) for lo, hi in messages.resolve(largest)]
        return [(n, u) for n, u in enumerate(uids, 1) if any(lo <= u <= hi for lo, hi in wanted)]
    numbers: set[int] = set()
    for lo, hi in messages.resolve(len(uids)):
        if lo < 1 or hi > len(uids):
            raise bad("Invalid message sequence number")   # RFC 9051 section 6.4.5
        numbers.update(range(lo, hi + 1))
    return [(n, uids[n - 1]) for n in sorted(numbers)]


def flags_of(keywords: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(keyword_to_imap(k) for k in keywords)


async def _records(tr: Transaction, account_id: str, mailbox_id: str, uids: list[int],
                   want_email: bool, want_summary: bool
                   ) -> list[tuple[Message, Email | None, bytes | None]]:
    if not uids:
        return []
    wanted = set(uids)
    out = []
    for m in await list_messages(tr, account_id, mailbox_id, first_uid=min(uids),
                                 last_uid=max(uids)):
        if m.uid not in wanted:
            continue
        email = await get_email(tr, account_id, m.email_id) if want_email else None
        summary = await get_summary(tr, account_id, m.email_id) if want_summary else None
        out.append((m, email, summary))
    return out


_FIELD = re.compile(rb"^([^:\s]+)\s*:", re.MULTILINE)


def _header_fields(header: bytes, names: tuple[str, ...], exclude: bool) -> bytes:
    """HEADER.FIELDS(.NOT): the header lines (with continuations) whose names are (not)
    listed, then the blank line (RFC 9051 section 6.4.5)."""
    wanted = {n.lower().encode() for n in names}
    out = []
    for block in re.split(rb"\r\n(?![ \t])", header.rstrip(b"\r\n")):
        m = _FIELD.match(block)
        if m is None:
            continue
        if (m.group(1).lower() in wanted) != exclude:
            out.append(block + b"\r\n")
    return b"".join(out) + b"\r\n"


async def _section(blobs: BlobStore, email: Email, summary: MessageSummary | None,
                   request: FetchBody) -> bytes:
    sec = request.section
    if sec.part:
        raise no("Fetching body parts by number is not supported yet", "CANNOT")
    body_start = summary.parts[0].body_start if summary is not None else 0
    if sec.text is None:
        start, end = 0, email.size
    elif sec.text == "TEXT":
        start, end = body_start, email.size
    else:
        start, end = 0, body_start
    if request.partial is not None and sec.text in (None, "TEXT", "HEADER"):
        first, count = request.partial
        start, end = min(start + first, end), min(start + first + count, end)
        return await blobs.read_range(email.blob_id, start, end) if start < end else b""
    data = await blobs.read_range(email.blob_id, start, end)
    if sec.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        data = _header_fields(data, sec.fields, exclude=sec.text == "HEADER.FIELDS.NOT")
        if request.partial is not None:
            first, count = request.partial
            data = data[first:first + count]
    return data


async def fetch(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Fetch) and s.selected is not None
    if cmd.changed_since is not None or cmd.vanished:
        raise bad("CONDSTORE is not supported")
    sel = s.selected
    targets = resolve(sel, cmd.messages, cmd.uid)
    items: list[FetchItem] = list(cmd.items)
    names = {i.name for i in items if isinstance(i, FetchAttr)}
    bodies = [i for i in items if isinstance(i, FetchBody)]
    if any(not isinstance(i, (FetchAttr, FetchBody)) for i in items) or any(
            b.binary for b in bodies):
        raise bad("FETCH item not supported")
    unknown = names - _SUMMARY - _EMAIL - {"FLAGS", "UID"}
    if unknown:
        raise bad(f"FETCH item {sorted(unknown)[0][:40]} not supported")
    want_email = bool(bodies or names & _EMAIL)
    want_summary = bool(bodies or names & _SUMMARY)
    records = await transact(s.ctx.engine, _records, s.account_id, sel.mailbox_id,
                             [u for _, u in targets], want_email, want_summary)
    number_of = {u: n for n, u in targets}
    set_seen = [m.uid for m, _, _ in records
                if not sel.readonly and SEEN not in m.keywords and any(not b.peek for b in bodies)]
    new_flags: dict[int, tuple[str, ...]] = {}
    if set_seen:
        result = await transact(s.ctx.engine, store_keywords, s.account_id, sel.mailbox_id,
                                set_seen, add=(SEEN,))
        new_flags = {uid: keywords for uid, _, keywords in result.messages}
    for m, email, raw_summary in records:
        summary = MessageSummary.from_bytes(raw_summary) if raw_summary else None
        pairs: list[FetchPair] = []
        if cmd.uid:
            pairs.append(item_uid(m.uid))
        for item in items:
            if isinstance(item, FetchBody):
                if email is None:
                    continue
                pairs.append(item_section(item, await _section(s.ctx.blobs, email, summary,
                                                               item)))
            elif item.name == "FLAGS":
                pairs.append(item_flags(flags_of(new_flags.get(m.uid, m.keywords))))
            elif item.name == "UID" and not cmd.uid:
                pairs.append(item_uid(m.uid))
            elif item.name == "INTERNALDATE" and email is not None:
                pairs.append(item_internaldate(
                    datetime.fromtimestamp(email.received_at, timezone.utc)))
            elif item.name == "RFC822.SIZE" and email is not None:
                pairs.append(item_size(email.size))
            elif summary is not None and item.name == "ENVELOPE":
                pairs.append(item_envelope(summary))
            elif summary is not None and item.name == "BODYSTRUCTURE":
                pairs.append(item_bodystructure(summary))
            elif summary is not None and item.name == "BODY":
                pairs.append(item_body(summary))
        if m.uid in new_flags and "FLAGS" not in names:
            pairs.append(item_flags(flags_of(new_flags[m.uid])))
        s.write(FetchData(number_of[m.uid], tuple(pairs)))
    s.ok(cmd.tag, ("UID " if cmd.uid else "") + "FETCH completed")


async def store(s: Session, cmd: c.Command) -> None:
    """RFC 9051 section 6.4.6: FLAGS, +FLAGS, -FLAGS (.SILENT); each changed message's
    new flags in an untagged FETCH unless silent (with its UID for UID STORE)."""
    assert isinstance(cmd, c.Store) and s.selected is not None
    sel = s.selected
    if cmd.unchanged_since is not None:
        raise bad("CONDSTORE is not supported")
    if sel.readonly:
        raise no("Mailbox is read-only", "CANNOT")
    targets = resolve(sel, cmd.messages, cmd.uid)
    keywords = [keyword_from_imap(f) for f in cmd.flags if f != "\\Recent"]
    kwargs: dict[str, list[str]] = {}
    if cmd.mode == "+":
        kwargs["add"] = keywords
    elif cmd.mode == "-":
        kwargs["remove"] = keywords
    else:
        kwargs["replace"] = keywords
    number_of = {u: n for n, u in targets}
    if targets:
        result = await transact(s.ctx.engine, store_keywords, s.account_id, sel.mailbox_id,
                                list(number_of), **kwargs)
        if not cmd.silent:
            for uid, _, kws in result.messages:
                pairs = [item_flags(flags_of(kws))]
                if cmd.uid:
                    pairs.append(item_uid(uid))
                s.write(FetchData(number_of[uid], tuple(pairs)))
    s.ok(cmd.tag, ("UID " if cmd.uid else "") + "STORE completed")
