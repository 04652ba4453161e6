"""Mailbox/get, Mailbox/changes and Mailbox/query (RFC 8621 section 2) over the mail
layer's mailboxes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fdb_layers.mail import (
    DELETED,
    MAILBOX,
    SEEN,
    Mailbox,
    Transaction,
    get_email,
    get_state,
    list_mailboxes,
    list_messages,
)

from .args import (
    account_arg,
    bool_arg,
    check_get_all,
    check_known,
    ids_arg,
    pick,
    properties_arg,
)
from .errors import invalid_arguments
from .json import JsonObject, JsonValue
from .mail import MAIL, MailStore, changes_call, visible_counts
from .methods import CallContext
from .query import (
    evaluate,
    Comparator,
    Filter,
    filter_arg,
    sort_arg,
    unsupported_filter,
    window_arg,
    apply_window,
)

MAILBOX_COUNT_PROPERTIES = ("totalEmails", "unreadEmails", "totalThreads", "unreadThreads")
PROPERTIES = ("id", "name", "parentId", "role", "sortOrder", "totalEmails", "unreadEmails",
              "totalThreads", "unreadThreads", "myRights", "isSubscribed")
THREAD_COUNTS = ("totalThreads", "unreadThreads")
# The caller owns the account: every right (RFC 8621 section 2, MailboxRights).
ALL_RIGHTS: JsonObject = {r: True for r in (
    "mayReadItems", "mayAddItems", "mayRemoveItems", "maySetSeen", "maySetKeywords",
    "mayCreateChild", "mayRename", "mayDelete", "maySubmit")}
# The inbox stays where IMAP names it INBOX (RFC 9051 section 5.1): Mailbox/set refuses
# to rename, move or destroy it (forbidden), and its rights say so (RFC 8621 section 2:
# mayRename "rename the Mailbox or make it a child of another", mayDelete).
INBOX_RIGHTS: JsonObject = {**ALL_RIGHTS, "mayRename": False, "mayDelete": False}
CONDITIONS = {"parentId", "name", "role", "hasAnyRole", "isSubscribed"}
SORTS = ("name", "sortOrder")
MAX_QUERY = 10_000


def rights(role: str | None) -> JsonObject:
    """The caller's MailboxRights on a mailbox of the given role (section 2)."""
    return dict(INBOX_RIGHTS if role == "inbox" else ALL_RIGHTS)


async def _thread_counts(tr: Transaction, account_id: str, mailbox_id: str
                         ) -> tuple[int, int]:
    """(totalThreads, unreadThreads): threads with an email in the mailbox, and those
    with an unread one (section 2), without the messages with $deleted (section 4.1.1).
    The layer keeps no thread counters: a scan."""
    threads: set[str] = set()
    unread: set[str] = set()
    for message in await list_messages(tr, account_id, mailbox_id):
        if DELETED in message.keywords:
            continue
        email = await get_email(tr, account_id, message.email_id)
        if email is None:
            continue
        threads.add(email.thread_id)
        if SEEN not in email.keywords:
            unread.add(email.thread_id)
    return len(threads), len(unread)


async def mailbox_records(tr: Transaction, account_id: str, properties: Sequence[str],
                   wanted: frozenset[str] | None = None) -> tuple[str, dict[str, JsonObject]]:
    """Every mailbox's record; the counts (the thread counts scan the mailbox) only of
    those ``wanted`` (None: all)."""
    state = await get_state(tr, account_id)
    out: dict[str, JsonObject] = {}
    for box in await list_mailboxes(tr, account_id):
        record: JsonObject = {
            "id": box.id, "name": box.name, "parentId": box.parent_id or None,
            "role": box.role or None, "sortOrder": box.sort_order,
            "myRights": rights(box.role),
            "isSubscribed": box.subscribed}
        if wanted is not None and box.id not in wanted:
            pass  # not asked for: its id is enough
        elif box.uidvalidity:  # a \Noselect placeholder holds no email
            record["totalEmails"], record["unreadEmails"] = await visible_counts(
                tr, account_id, box.id)
            if any(p in properties for p in THREAD_COUNTS):
                total, unread = await _thread_counts(tr, account_id, box.id)
                record["totalThreads"], record["unreadThreads"] = total, unread
        else:
            record.update(totalEmails=0, unreadEmails=0, totalThreads=0, unreadThreads=0)
        out[box.id] = record
    return state, out


class MailboxGet:
    name = "Mailbox/get"
    capability = MAIL

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ids", "properties"))
        account = account_arg(ctx, args)
        ids = ids_arg(ctx, args)
        properties = properties_arg(args, PROPERTIES, PROPERTIES)
        state, records = await self.store.run(
            account.id, mailbox_records, properties, None if ids is None else frozenset(ids))
        if ids is None:
            check_get_all(ctx, len(records))
            ids = list(records)
        found: list[JsonValue] = [pick(records[i], properties) for i in ids if i in records]
        return {"accountId": account.id, "state": state, "list": found,
                "notFound": [i for i in ids if i not in records]}


class MailboxChanges:
    name = "Mailbox/changes"
    capability = MAIL

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        out, counts_only = await changes_call(self.store, ctx, args, MAILBOX)
        # Section 2.2: updatedProperties names the counts when only they changed.
        out["updatedProperties"] = list(MAILBOX_COUNT_PROPERTIES) if counts_only else None
        return out


def check_condition(condition: JsonObject) -> None:
    unknown = set(condition) - CONDITIONS
    if unknown:
        raise unsupported_filter(f"unknown Mailbox filter condition(s): {sorted(unknown)}")
    for name in ("parentId", "role"):
        if name in condition and not isinstance(condition[name], str | None):
            raise invalid_arguments(f"{name!r} must be a string or null")
    if "name" in condition and not isinstance(condition["name"], str):
        raise invalid_arguments("'name' must be a string")
    for name in ("hasAnyRole", "isSubscribed"):
        if name in condition and not isinstance(condition[name], bool):
            raise invalid_arguments(f"{name!r} must be true or false")


def _matches(box: Mailbox, condition: JsonObject) -> bool:
    """One FilterCondition (section 2.3): every property it gives must match."""
    for name, value in condition.items():
        if name == "parentId" and (box.parent_id or None) != value:
            return False
        if name == "name" and not (isinstance(value, str)
                                   and value.casefold() in box.name.casefold()):
            return False
        if name == "role" and (box.role or None) != value:
            return False
        if name == "hasAnyRole" and bool(box.role) != value:
            return False
        if name == "isSubscribed" and box.subscribed != value:
            return False
    return True


def _filter(box: Mailbox, tree: Filter | None) -> bool:
    return evaluate(tree, lambda condition: _matches(box, condition))


def _sorted(boxes: list[Mailbox], sort: Sequence[Comparator]) -> list[Mailbox]:
    """Stable sorts applied last comparator first; ids break ties (a total order)."""
    out = sorted(boxes, key=lambda b: b.id)
    for comparator in reversed(sort):
        if comparator.property == "name":
            out.sort(key=lambda b: b.name.casefold(), reverse=not comparator.is_ascending)
        elif comparator.property == "sortOrder":
            out.sort(key=lambda b: b.sort_order, reverse=not comparator.is_ascending)
    return out


def _as_tree(boxes: list[Mailbox], matching: list[Mailbox], sort: Sequence[Comparator],
             filter_as_tree: bool, sort_as_tree: bool) -> list[Mailbox]:
    """Section 2.3: with filterAsTree a mailbox matches only if its ancestors do too; with
    sortAsTree each mailbox follows its parent, siblings in the sort's order."""
    by_id = {b.id: b for b in boxes}
    keep = {b.id for b in matching}
    if filter_as_tree:
        def ancestors_match(box: Mailbox) -> bool:
            parent = by_id.get(box.parent_id or "")
            return parent is None or (parent.id in keep and ancestors_match(parent))
        keep = {i for i in keep if ancestors_match(by_id[i])}
    ordered = _sorted(boxes, sort)
    if not sort_as_tree:
        return [b for b in ordered if b.id in keep]
    children: dict[str, list[Mailbox]] = {}
    for box in ordered:  # siblings keep the sort's order
        parent = box.parent_id if (box.parent_id or "") in by_id else ""
        children.setdefault(parent or "", []).append(box)
    out: list[Mailbox] = []

    def walk(parent_id: str) -> None:
        for box in children.get(parent_id, ()):
            if box.id in keep:
                out.append(box)
            walk(box.id)
    walk("")
    return out


async def _query(tr: Transaction, account_id: str) -> tuple[str, list[Mailbox]]:
    return await get_state(tr, account_id), await list_mailboxes(tr, account_id)


@dataclass(frozen=True, slots=True)
class Query:
    """The arguments that decide a Mailbox/query's results (and a queryChanges')."""

    tree: Filter | None
    sort: tuple[Comparator, ...]
    sort_as_tree: bool
    filter_as_tree: bool


class MailboxQuery:
    name = "Mailbox/query"
    capability = MAIL

    def __init__(self, store: MailStore) -> None:
        self.store = store

    @staticmethod
    def query_args(args: JsonObject) -> Query:
        return Query(filter_arg(args, check_condition), sort_arg(args, SORTS),
                     bool_arg(args, "sortAsTree"), bool_arg(args, "filterAsTree"))

    async def results(self, account_id: str, query: Query
                      ) -> tuple[str, list[str], list[Mailbox]]:
        """The query state, every id of the results in order, and every mailbox."""
        state, boxes = await self.store.run(account_id, _query)
        matching = [b for b in boxes if _filter(b, query.tree)]
        ordered = _as_tree(boxes, matching, query.sort, query.filter_as_tree,
                           query.sort_as_tree)
        return state, [b.id for b in ordered], boxes

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "filter", "sort", "position", "anchor",
                           "anchorOffset", "limit", "calculateTotal", "sortAsTree",
                           "filterAsTree"))
        account = account_arg(ctx, args)
        query = self.query_args(args)
        window = window_arg(args)
        state, ids, _ = await self.results(account.id, query)
        position, page, capped = apply_window(ids, window, MAX_QUERY)
        out: JsonObject = {"accountId": account.id, "queryState": state,
                           "canCalculateChanges": True, "position": position,
                           "ids": list[JsonValue](page)}
        if window.calculate_total:
            out["total"] = len(ids)
        if capped is not None:
            out["limit"] = capped
        return out
