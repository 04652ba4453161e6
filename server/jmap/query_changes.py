"""Email/queryChanges and Mailbox/queryChanges (RFC 8620 section 5.6, RFC 8621 sections
2.4 and 4.5) calculated from the change log.

The query runs again now; the change log names every object created, updated or
destroyed since ``sinceQueryState``.  An object that was not changed kept its place
relative to every other unchanged one (its filter and sort values are what they were),
so the client's old list, without the changed objects, with the changed ones that are in
the results now inserted at their new indexes, is the new list.  So:

* ``removed``: every updated or destroyed object (section 5.6 allows ids that were not
  in the old results; an object created since was not);
* ``added``: every created or updated object in the new results, with its index.

When the query depends on other objects than the one itself -- collapseThreads, the
``*InThreadHaveKeyword`` sorts and conditions, a Mailbox tree -- each change widens to
the objects it can move (the emails of a changed thread, a mailbox's descendants).  When
the filter and sort are only on immutable properties, updates move nothing, only
creations and destructions count, and ``upToId`` cuts the additions after it.

The state is the account's modseq (the change log's): ``cannotCalculateChanges`` only
for a state the log cannot answer (unknown, or older than its compaction floor)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from fdb_layers.mail import (
    EMAIL,
    MAILBOX,
    THREAD,
    CannotCalculateChanges,
    Changes,
    Transaction,
    get_visible_changes,
)

from .args import (
    account_arg,
    bool_arg,
    cannot_calculate,
    check_known,
    check_too_many,
    max_changes_arg,
    string_arg,
)
from .email import EmailQuery, query_args
from .json import JsonObject, JsonValue
from .mail import MAIL, MailStore
from .mailbox import MailboxQuery
from .methods import CallContext

QUERY_CHANGES_ARGS = ("accountId", "filter", "sort", "sinceQueryState", "maxChanges",
                      "upToId", "calculateTotal")


async def _changes(tr: Transaction, account_id: str, since: str, kinds: Sequence[str]
                   ) -> list[Changes]:
    return [await get_visible_changes(tr, account_id, kind, since) for kind in kinds]


async def changes_since(store: MailStore, account_id: str, since: str,
                        kinds: Sequence[str]) -> list[Changes]:
    try:
        return await store.run(account_id, _changes, since, kinds)
    except CannotCalculateChanges:
        raise cannot_calculate(since) from None


def diff(ids: Sequence[str], removed: Collection[str], added: Collection[str], *,
         up_to_id: str | None, max_changes: int | None) -> tuple[list[str], list[JsonValue]]:
    """``removed`` (sorted, for a stable answer) and ``added`` (AddedItem[], by index)
    of a /queryChanges response; ``up_to_id`` (when the query is immutable and the id
    is in the results) drops the additions after it."""
    last = len(ids) - 1
    if up_to_id is not None and up_to_id in ids:
        last = ids.index(up_to_id)
    items: list[JsonValue] = [{"id": i, "index": n} for n, i in enumerate(ids)
                              if n <= last and i in added]
    gone = sorted(removed)
    check_too_many(len(gone) + len(items), max_changes)
    return gone, items


def _response(account_id: str, since: str, state: str, ids: Sequence[str],
              removed: list[str], added: list[JsonValue], total: bool) -> JsonObject:
    out: JsonObject = {"accountId": account_id, "oldQueryState": since,
                       "newQueryState": state, "removed": list[JsonValue](removed),
                       "added": added}
    if total:
        out["total"] = len(ids)
    return out


class EmailQueryChanges:
    name = "Email/queryChanges"
    capability = MAIL

    def __init__(self, store: MailStore, query: EmailQuery) -> None:
        self.store, self.query = store, query

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, (*QUERY_CHANGES_ARGS, "collapseThreads"))
        account = account_arg(ctx, args)
        query = query_args(args)
        since = string_arg(args, "sinceQueryState", required=True)
        assert since is not None
        max_changes = max_changes_arg(args)
        up_to_id = string_arg(args, "upToId")
        total = bool_arg(args, "calculateTotal")
        state, ids, emails = await self.query.results(account.id, query)
        threaded = query.collapse or query.needs_threads
        changes = await changes_since(self.store, account.id, since,
                                      (EMAIL, THREAD) if threaded else (EMAIL,))
        emails_changed = changes[0]
        if query.immutable:
            removed = set(emails_changed.destroyed)
            added = set(emails_changed.created)
        else:
            moved = {*emails_changed.updated, *emails_changed.destroyed}
            added = {*emails_changed.created, *emails_changed.updated}
            if threaded:  # a thread's change can move each of its emails
                threads = {*changes[1].created, *changes[1].updated, *changes[1].destroyed}
                threads.update(emails[i].thread_id for i in added if i in emails)
                siblings = {e.id for e in emails.values() if e.thread_id in threads}
                moved |= siblings
                added |= siblings
            removed = moved - set(emails_changed.created)
            up_to_id = None  # section 5.6: ignored unless the query is immutable
        gone, items = diff(ids, removed, added, up_to_id=up_to_id, max_changes=max_changes)
        return _response(account.id, since, state, ids, gone, items, total)


class MailboxQueryChanges:
    name = "Mailbox/queryChanges"
    capability = MAIL

    def __init__(self, store: MailStore, query: MailboxQuery) -> None:
        self.store, self.query = store, query

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, (*QUERY_CHANGES_ARGS, "sortAsTree", "filterAsTree"))
        account = account_arg(ctx, args)
        query = self.query.query_args(args)
        since = string_arg(args, "sinceQueryState", required=True)
        assert since is not None
        max_changes = max_changes_arg(args)
        string_arg(args, "upToId")  # every Mailbox condition and sort is mutable
        total = bool_arg(args, "calculateTotal")
        state, ids, boxes = await self.query.results(account.id, query)
        [changed] = await changes_since(self.store, account.id, since, (MAILBOX,))
        moved = {*changed.updated, *changed.destroyed}
        added = {*changed.created, *changed.updated}
        if query.filter_as_tree or query.sort_as_tree:
            # a mailbox's place and match follow its ancestors': widen to descendants
            children: dict[str, list[str]] = {}
            for box in boxes:
                children.setdefault(box.parent_id or "", []).append(box.id)
            todo = list(added)
            while todo:
                for child in children.get(todo.pop(), ()):
                    if child not in added:
                        added.add(child)
                        moved.add(child)
                        todo.append(child)
        removed = moved - set(changed.created)
        gone, items = diff(ids, removed, added, up_to_id=None, max_changes=max_changes)
        return _response(account.id, since, state, ids, gone, items, total)
