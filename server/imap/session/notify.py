"""NOTIFY (RFC 5465): events pushed while no command is in progress.

``NOTIFY SET`` keeps the client's event groups (:class:`Notifying`); from then on the
connection waits, between commands as during IDLE (section 4), on the store's watches
of the account -- its modseq, moved by every change of mail, mailboxes and
subscriptions, and its annotation counter (:func:`fdb_layers.mail.watch_annotations`)
-- and :func:`notify_changes` turns what changed into responses:

* the selected mailbox (SELECTED / SELECTED-DELAYED, section 6.1): EXISTS, EXPUNGE (not
  while delayed), FETCH of flags (with FlagChange; else they wait for the next command),
  as after a command (:mod:`.selected`), then a FETCH of MessageNew's attributes for the
  new messages (section 5.2);
* other mailboxes: a look at the account (mailboxes, their status and annotations where
  asked) compared with the last one gives STATUS (MessageNew / MessageExpunge, section
  5.2-5.3; FlagChange, 5.1), LIST (MailboxName with \\NonExistent and OLDNAME, 5.4;
  SubscriptionChange, 5.5) and METADATA without values (5.6, 5.7).

A mailbox matches the first event group whose specifier names it (so a group with NONE
listed first leaves mailboxes out); INBOXES is PERSONAL (section 6.3: we cannot tell
which mailboxes receive mail, Sieve files anywhere).  AnnotationChange (message
annotations, RFC 5257) is not served: NO [BADEVENT].  More than ``MAX_WATCHED``
mailboxes to watch is NO [NOTIFICATIONOVERFLOW], or, when the account grows past it
later, ``* OK [NOTIFICATIONOVERFLOW]`` and notifications stop (section 5.8).  Changes
this session made are reported too (section 5 makes leaving them out a SHOULD)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field

from prometheus_client import Counter

from fdb_layers.mail import (
    DELIMITER,
    SERVER,
    Transaction,
    get_annotations,
    get_status,
    list_mailboxes,
    list_orphan_subscriptions,
    transact,
    watch_account,
    watch_annotations,
)
from server.imap.wire import commands as c
from server.imap.wire.fetch import FetchItem
from server.imap.wire.metadata import MetadataChanged
from server.imap.wire.responses import Code, ListData, StatusData, Untagged
from server.imap.wire.sequence import compress_numbers

from .errors import bad, no
from .mailboxes import canonical
from .selected import announce_changes
from .state import Session

log = logging.getLogger(__name__)

PUSHED = Counter("fdbmail_imap_notify_responses_total",
                 "Responses IMAP NOTIFY pushed between commands.")
OVERFLOWS = Counter("fdbmail_imap_notify_overflows_total",
                    "IMAP NOTIFY sessions stopped with NOTIFICATIONOVERFLOW.")

NEW, EXPUNGE, FLAGS = "MESSAGENEW", "MESSAGEEXPUNGE", "FLAGCHANGE"
NAMES, SUBSCRIPTIONS = "MAILBOXNAME", "SUBSCRIPTIONCHANGE"
MAILBOX_METADATA, SERVER_METADATA = "MAILBOXMETADATACHANGE", "SERVERMETADATACHANGE"
MESSAGE_EVENTS = frozenset({NEW, EXPUNGE, FLAGS, "ANNOTATIONCHANGE"})
SUPPORTED = {NEW: "MessageNew", EXPUNGE: "MessageExpunge", FLAGS: "FlagChange",
             NAMES: "MailboxName", SUBSCRIPTIONS: "SubscriptionChange",
             MAILBOX_METADATA: "MailboxMetadataChange",
             SERVER_METADATA: "ServerMetadataChange"}
SELECTED_FILTERS = ("SELECTED", "SELECTED-DELAYED")
MAX_WATCHED = 1000  # mailboxes whose status is watched; more is NOTIFICATIONOVERFLOW
_RETRY_AFTER_FAILURE = 1.0

Status = tuple[int, int, int, int, int]   # UIDVALIDITY, MESSAGES, UIDNEXT, UNSEEN, modseq


@dataclass(frozen=True, slots=True)
class _Box:
    """A mailbox as the last look saw it."""

    path: str
    subscribed: bool
    attributes: tuple[str, ...]
    events: frozenset[str]
    status: Status | None            # when message events are asked for it
    notes: dict[str, bytes] | None   # entry -> digest, when its metadata events are


@dataclass
class Notifying:
    """The event groups of the last NOTIFY SET, and what the last look saw."""

    selected: frozenset[str]         # events of the selected mailbox
    delayed: bool                    # SELECTED-DELAYED: no expunges between commands
    fetch: tuple[FetchItem, ...]     # MessageNew's attributes for the selected mailbox
    groups: tuple[c.NotifyEventGroup, ...]   # the other specifiers, in order
    server_metadata: bool
    seen: dict[str, _Box] = field(default_factory=dict)
    names: dict[str, frozenset[str]] = field(default_factory=dict)  # subscribed, no mailbox
    server: dict[str, bytes] | None = None


def _check(groups: tuple[c.NotifyEventGroup, ...]) -> None:
    """RFC 5465 sections 5 and 6.1: BAD for what the client must not ask; NO [BADEVENT]
    for events not served (section 3.1)."""
    if sum(g.filter in SELECTED_FILTERS for g in groups) > 1:
        raise bad("Only one of SELECTED and SELECTED-DELAYED (RFC 5465 section 6.1)")
    for g in groups:
        events = set(g.events) - {"NONE"}
        if g.filter in SELECTED_FILTERS and events - MESSAGE_EVENTS:
            raise bad("SELECTED takes message events only (RFC 5465 section 6.1)")
        if (NEW in events) != (EXPUNGE in events):
            raise bad("MessageNew and MessageExpunge go together (RFC 5465 section 5)")
        if events & {FLAGS, "ANNOTATIONCHANGE"} and NEW not in events:
            raise bad("FlagChange needs MessageNew and MessageExpunge (RFC 5465 section 5)")
    unknown = {e for g in groups for e in g.events} - set(SUPPORTED) - {"NONE"}
    if unknown:
        # section 3.1: NO, not BAD, with every event served in BADEVENT
        raise no(f"Event not supported: {sorted(unknown)[0]}",
                 "BADEVENT (" + " ".join(SUPPORTED.values()) + ")")


def _matches(group: c.NotifyEventGroup, path: str, subscribed: bool) -> bool:
    """RFC 5465 section 6: does the specifier name the mailbox (or name) ``path``?"""
    if group.filter in ("PERSONAL", "INBOXES"):   # section 6.3: INBOXES is PERSONAL here
        return True
    if group.filter == "SUBSCRIBED":
        return subscribed
    names = {canonical(n).rstrip(DELIMITER) for n in group.mailboxes}
    if group.filter == "MAILBOXES":                # section 6.6: no wildcards
        return path in names
    return any(path == n or path.startswith(n + DELIMITER) for n in names)


def _events(n: Notifying, path: str, subscribed: bool) -> frozenset[str]:
    for group in n.groups:
        if _matches(group, path, subscribed):
            return frozenset(group.events) - {"NONE"}
    return frozenset()


async def _digests(tr: Transaction, account_id: str, mailbox_id: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for root in ("/private", "/shared"):
        for name, value in await get_annotations(tr, account_id, mailbox_id, root, None):
            out[name] = hashlib.sha256(value).digest()
    return out


async def _look(tr: Transaction, account_id: str, n: Notifying
                ) -> tuple[dict[str, _Box], dict[str, frozenset[str]], dict[str, bytes] | None]:
    """The account as the events asked see it: its mailboxes by id, the subscribed names
    without a mailbox (each with its events), the server annotations' digests."""
    boxes = await list_mailboxes(tr, account_id)
    parents = {b.path.rpartition(DELIMITER)[0] for b in boxes if DELIMITER in b.path}
    names = {name: _events(n, name, True)
             for name in await list_orphan_subscriptions(tr, account_id)}
    seen: dict[str, _Box] = {}
    for box in boxes:
        events = _events(n, box.path, box.subscribed)
        status: Status | None = None
        if events & {NEW, FLAGS} and box.selectable:
            st = await get_status(tr, account_id, box.id)
            status = (st.uidvalidity, st.messages, st.uidnext, st.unseen, st.highestmodseq)
        notes = (await _digests(tr, account_id, box.id)
                 if MAILBOX_METADATA in events else None)
        attrs = ([] if box.selectable else ["\\Noselect"]) + \
            ["\\HasChildren" if box.path in parents else "\\HasNoChildren"]
        seen[box.id] = _Box(box.path, box.subscribed, tuple(attrs), events, status, notes)
    server = await _digests(tr, account_id, SERVER) if n.server_metadata else None
    return seen, names, server


def _watched(seen: dict[str, _Box]) -> int:
    return sum(b.status is not None for b in seen.values())


def _status_items(s: Session, old: Status, new: Status, events: frozenset[str]
                  ) -> list[tuple[str, int | str]]:
    """RFC 5465 sections 5.1-5.3: what a STATUS tells of another mailbox's change."""
    items: dict[str, int] = {}
    if NEW in events and old[:3] != new[:3]:
        items.update(MESSAGES=new[1], UIDNEXT=new[2])
        if old[0] != new[0]:
            items["UIDVALIDITY"] = new[0]
        if s.condstore:
            items["HIGHESTMODSEQ"] = new[4]
    if FLAGS in events and old[3:] != new[3:]:
        items.update(UIDVALIDITY=new[0], HIGHESTMODSEQ=new[4])
        if old[3] != new[3]:
            items["UNSEEN"] = new[3]
    return list(items.items())


def _changed_notes(old: dict[str, bytes], new: dict[str, bytes]) -> tuple[str, ...]:
    return tuple(sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k)))


def _report_names(s: Session, n: Notifying, seen: dict[str, _Box],
                  names: dict[str, frozenset[str]]) -> None:
    """RFC 5465 section 5.5: SubscriptionChange of a name that has no mailbox (the list
    of subscriptions is one of names, RFC 9051 section 6.3.7): LIST (\\NonExistent
    \\Subscribed) when it is subscribed, LIST (\\NonExistent) when unsubscribed.  A name
    that only passed between a mailbox and the list of names (its mailbox deleted or
    created) kept its subscription: MailboxName tells of that."""
    before = set(n.names) | {b.path for b in n.seen.values() if b.subscribed}
    now = set(names) | {b.path for b in seen.values() if b.subscribed}
    for name, events in names.items():
        if name not in before and SUBSCRIPTIONS in events:
            s.write(ListData(("\\NonExistent", "\\Subscribed"), DELIMITER, name))
    paths = {b.path for b in seen.values()}
    for name, events in n.names.items():
        if name not in now and name not in paths and SUBSCRIPTIONS in events:
            s.write(ListData(("\\NonExistent",), DELIMITER, name))


def _report(s: Session, n: Notifying, seen: dict[str, _Box],
            names: dict[str, frozenset[str]], server: dict[str, bytes] | None) -> None:
    """What changed since the last look, as responses (RFC 5465 section 5)."""
    _report_names(s, n, seen, names)
    selected = s.selected.mailbox_id if s.selected is not None else None
    for mid, gone in n.seen.items():
        if mid not in seen and NAMES in gone.events:     # section 5.4: deleted
            s.write(ListData(("\\NonExistent",), DELIMITER, gone.path))
    for mid, box in seen.items():
        old = n.seen.get(mid)
        if old is None or old.path != box.path:
            if NAMES in box.events or (old is not None and NAMES in old.events):
                s.write(ListData(box.attributes, DELIMITER, box.path,
                                 oldname=old.path if old is not None else None))
        elif old.subscribed != box.subscribed and SUBSCRIPTIONS in box.events:
            attrs = box.attributes + (("\\Subscribed",) if box.subscribed else ())
            s.write(ListData(attrs, DELIMITER, box.path))    # section 5.5
        if old is None or mid == selected:
            continue
        if old.status is not None and box.status is not None:
            items = _status_items(s, old.status, box.status, box.events)
            if items:
                s.write(StatusData(box.path, tuple(items)))
        if old.notes is not None and box.notes is not None:
            entries = _changed_notes(old.notes, box.notes)
            if entries:
                s.write(MetadataChanged(box.path, entries))  # section 5.6
    if n.server is not None and server is not None:
        entries = _changed_notes(n.server, server)
        if entries:
            s.write(MetadataChanged("", entries))            # section 5.7


async def _fetch_new(s: Session, n: Notifying, before: int) -> None:
    """RFC 5465 section 5.2: after EXISTS, a FETCH of what MessageNew asked for."""
    from .messages import fetch

    sel = s.selected
    if sel is None or not n.fetch:
        return
    uids = [u for u in sel.uids if u > before]
    if not uids:
        return
    tag = "*notify"
    await fetch(s, c.Fetch(tag, compress_numbers(uids), n.fetch, uid=True))
    if s.out and s.out[-1].startswith(tag.encode() + b" "):
        s.out.pop()   # the FETCH's own completion is not the client's business


async def notify_changes(s: Session) -> None:
    """Push what changed since the last look (between commands)."""
    n = s.notifying
    if n is None:
        return
    written = len(s.out)
    sel = s.selected
    if sel is not None and n.selected & {NEW, EXPUNGE, FLAGS}:
        before = sel.last_uid
        await announce_changes(s, expunges=not n.delayed, flags=FLAGS in n.selected)
        if NEW in n.selected and s.selected is sel and sel.last_uid > before:
            await _fetch_new(s, n, before)
    seen, names, server = await transact(s.ctx.engine, _look, s.account_id, n)
    if _watched(seen) > MAX_WATCHED:
        s.notifying = None
        s.write(Untagged("OK", "Too many mailboxes to watch; NOTIFY NONE",
                         Code("NOTIFICATIONOVERFLOW")))
        OVERFLOWS.inc()
        return
    _report(s, n, seen, names, server)
    n.seen, n.names, n.server = seen, names, server
    PUSHED.inc(max(0, len(s.out) - written))   # (a long FETCH may have sent some)


async def wait_for_event(s: Session) -> None:
    """Return once something was pushed (left in ``s.out``); cancelled by the connection
    when the client sends something."""
    while not s.out:
        if s.notifying is None:
            await asyncio.Event().wait()
        mail = await watch_account(s.ctx.engine, s.account_id)
        notes = await watch_annotations(s.ctx.engine, s.account_id)
        waits = [asyncio.ensure_future(mail.wait()), asyncio.ensure_future(notes.wait())]
        try:
            await s.guarded("*", notify_changes(s))   # what changed before the watches
            if s.out:
                return
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except Exception:
            log.exception("NOTIFY watch failed (%s)", s.conn_id)
            await asyncio.sleep(_RETRY_AFTER_FAILURE)
        finally:
            for w in waits:
                w.cancel()
            mail.cancel()
            notes.cancel()
        await s.guarded("*", notify_changes(s))


async def notify(s: Session, cmd: c.Command) -> None:
    """NOTIFY NONE / SET [STATUS] (RFC 5465 section 3.1)."""
    assert isinstance(cmd, c.Notify)
    if cmd.groups is None:
        s.notifying = None
        s.ok(cmd.tag, "NOTIFY completed")
        return
    _check(cmd.groups)
    chosen = next((g for g in cmd.groups if g.filter in SELECTED_FILTERS), None)
    events = frozenset(chosen.events) - {"NONE"} if chosen is not None else frozenset()
    n = Notifying(
        selected=events, delayed=chosen is not None and chosen.filter == "SELECTED-DELAYED",
        fetch=chosen.fetch if chosen is not None else (),
        groups=tuple(g for g in cmd.groups if g.filter not in SELECTED_FILTERS),
        server_metadata=any(SERVER_METADATA in g.events for g in cmd.groups))
    n.seen, n.names, n.server = await transact(s.ctx.engine, _look, s.account_id, n)
    if _watched(n.seen) > MAX_WATCHED:
        # section 3.1: the server MAY refuse what would be prohibitively expensive
        raise no(f"At most {MAX_WATCHED} mailboxes with message events",
                 "NOTIFICATIONOVERFLOW")
    s.notifying = n
    if cmd.status:
        # section 3.1: the status of every other mailbox with message events, first
        selected = s.selected.mailbox_id if s.selected is not None else None
        for mid, box in n.seen.items():
            if box.status is not None and mid != selected:
                items: list[tuple[str, int | str]] = [
                    ("MESSAGES", box.status[1]), ("UIDNEXT", box.status[2]),
                    ("UIDVALIDITY", box.status[0])]
                if s.condstore:
                    items.append(("HIGHESTMODSEQ", box.status[4]))
                s.write(StatusData(box.path, tuple(items)))
    s.ok(cmd.tag, "NOTIFY completed")
