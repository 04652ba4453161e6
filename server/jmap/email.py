"""Email/changes, Email/query, Thread/get and Thread/changes (RFC 8621 sections 3 and 4)
over the mail layer's emails and the summary stored at delivery; Email/get is in
:mod:`.email_get` (imported from here for the registration).

A mail list view ({inMailbox} by receivedAt, with or without collapseThreads) reads the
layer's received-at index page by page (its cost follows the page, not the mailbox);
any other Email/query runs as a scan of the account's emails (every mailbox's messages),
filtered and sorted in memory (:mod:`.email_sort`); the text, body and header
conditions read the message blobs of the emails the other conditions leave
(:mod:`.email_text`).  Email/queryChanges is in :mod:`.query_changes`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from fdb_layers.mail import (
    EMAIL,
    THREAD,
    Email,
    MailboxNotFound,
    Transaction,
    get_state,
    get_summary,
    get_visible_changes,
    get_visible_email,
    iter_visible_emails,
    list_thread,
    normalise_keyword,
    query_mailbox,
    query_mailbox_threads,
)
from server.blobs import BlobStore
from server.blobs.base import BlobError
from server.mime.addresses import AddressList
from server.mime.model import MessageSummary

from .args import (
    account_arg,
    bool_arg,
    check_known,
    ids_arg,
    pick,
    properties_arg,
)
from .email_get import READS_AT_ONCE, BlobReader, load_summary
from .email_get import EmailGet as EmailGet
from .email_text import MessageText, contains, read_message_text
from .errors import invalid_arguments
from .get_all import all_thread_ids
from .headers import addresses
from .json import JsonObject, JsonValue
from .email_sort import (
    IMMUTABLE_SORTS,
    KEYWORD_SORTS,
    SUMMARY_SORTS,
    THREAD_SORTS,
    ThreadKeywords,
    sort_emails,
    thread_keywords,
)
from .mail import EMAIL_SORTS, MAIL, MailStore, changes_call, parse_utc_date, visible_counts
from .methods import CallContext
from .state_cache import StateCache
from .query import (
    evaluate,
    Comparator,
    Filter,
    FilterCondition,
    FilterOperator,
    apply_window,
    filter_arg,
    sort_arg,
    unsupported_filter,
    Window,
    window_arg,
)

MAX_QUERY = 10_000

# RFC 8621 section 4.4.1: the conditions we run, by the type of their value.
DATE_CONDITIONS = ("before", "after")
SIZE_CONDITIONS = ("minSize", "maxSize")
KEYWORD_CONDITIONS = ("hasKeyword", "notKeyword")
THREAD_CONDITIONS = ("allInThreadHaveKeyword", "someInThreadHaveKeyword",
                     "noneInThreadHaveKeyword")
TEXT_CONDITIONS = ("from", "to", "cc", "bcc", "subject", "text")
# ...and those that read the message's blob (its header fields, its body text).
CONTENT_CONDITIONS = ("text", "body", "header")
CONDITIONS = frozenset(("inMailbox", "inMailboxOtherThan", *DATE_CONDITIONS,
                        *SIZE_CONDITIONS, *KEYWORD_CONDITIONS, *TEXT_CONDITIONS,
                        *CONTENT_CONDITIONS, *THREAD_CONDITIONS, "hasAttachment"))
# RFC 8620 section 5.6 upToId: conditions whose result an email's updates cannot change
# (what it is, not where it is filed or how it is flagged).
IMMUTABLE_CONDITIONS = frozenset((*DATE_CONDITIONS, *SIZE_CONDITIONS, *TEXT_CONDITIONS,
                                  *CONTENT_CONDITIONS, "hasAttachment"))


async def _summary(tr: Transaction, account_id: str, email_id: str) -> MessageSummary | None:
    return load_summary(await get_summary(tr, account_id, email_id))


class EmailChanges:
    name = "Email/changes"
    capability = MAIL

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        return (await changes_call(self.store, ctx, args, EMAIL, get_visible_changes))[0]




# -- Email/query ----------------------------------------------------------------------


def check_condition(condition: JsonObject) -> None:
    unknown = set(condition) - CONDITIONS
    if unknown:
        raise unsupported_filter(f"unsupported Email filter condition(s): {sorted(unknown)}")
    for name, value in condition.items():
        if name == "inMailboxOtherThan":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise invalid_arguments("'inMailboxOtherThan' must be an array of ids")
        elif name == "hasAttachment":
            if not isinstance(value, bool):
                raise invalid_arguments("'hasAttachment' must be true or false")
        elif name == "header":
            if not isinstance(value, list) or len(value) not in (1, 2) \
                    or not all(isinstance(v, str) for v in value):
                raise invalid_arguments("'header' must be [name] or [name, value]")
        elif name in DATE_CONDITIONS:
            parse_utc_date(value, name)
        elif name in SIZE_CONDITIONS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise invalid_arguments(f"{name!r} must be an unsigned integer")
        elif not isinstance(value, str):
            raise invalid_arguments(f"{name!r} must be a string")
        elif name in KEYWORD_CONDITIONS or name in THREAD_CONDITIONS:
            try:
                normalise_keyword(value)
            except ValueError:
                raise invalid_arguments(f"{name!r}: invalid keyword {value!r}") from None


@dataclass(frozen=True, slots=True)
class _Candidate:
    email: Email
    summary: MessageSummary | None
    text: MessageText | None = None
    thread: ThreadKeywords | None = None  # when a condition or a sort needs it


def _text_of(summary: MessageSummary | None, name: str) -> str:
    if summary is None:
        return ""
    env = summary.envelope

    def text(items: AddressList) -> str:
        return " ".join(f"{a.get('name') or ''} {a.get('email')}"
                        for a in addresses(items) if isinstance(a, dict))
    fields = {"from": text(env.from_), "to": text(env.to),
              "cc": text(env.cc), "bcc": text(env.bcc),
              "subject": env.decoded_subject or ""}
    if name == "text":
        return " ".join([*fields.values(), summary.preview])
    return fields[name]


def _matches(c: _Candidate, condition: JsonObject) -> bool:
    email = c.email
    for name, value in condition.items():
        if name == "inMailbox" and value not in email.mailboxes:
            return False
        if name == "inMailboxOtherThan" and isinstance(value, list) \
                and not set(email.mailboxes) - set(v for v in value if isinstance(v, str)):
            return False
        if name == "before" and not email.received_at < parse_utc_date(value, name):
            return False
        if name == "after" and not email.received_at >= parse_utc_date(value, name):
            return False
        if name == "minSize" and isinstance(value, int) and email.size < value:
            return False
        if name == "maxSize" and isinstance(value, int) and email.size >= value:
            return False
        if name in KEYWORD_CONDITIONS and isinstance(value, str) \
                and (value.lower() in email.keywords) != (name == "hasKeyword"):
            return False
        if name in TEXT_CONDITIONS and isinstance(value, str) \
                and not contains(_text_of(c.summary, name), value) \
                and not (name == "text" and c.text is not None
                         and (contains(c.text.body, value) or contains(c.text.attached, value))):
            return False
        if name in THREAD_CONDITIONS and isinstance(value, str) \
                and not _thread_matches(c.thread, name, value.lower()):
            return False
        if name == "hasAttachment" and \
                (c.summary is not None and c.summary.has_attachment) != value:
            return False
        if name == "body" and isinstance(value, str) \
                and not (c.text is not None and contains(c.text.body, value)):
            return False
        if name == "header" and isinstance(value, list) and not _has_header(c.text, value):
            return False
    return True


def _thread_matches(thread: ThreadKeywords | None, name: str, keyword: str) -> bool:
    """Section 4.4.1 all/some/noneInThreadHaveKeyword."""
    if thread is None:
        return name == "noneInThreadHaveKeyword"
    if name == "allInThreadHaveKeyword":
        return keyword in thread.all
    return (keyword in thread.some) == (name == "someInThreadHaveKeyword")


def _has_header(text: MessageText | None, value: list[JsonValue]) -> bool:
    """Section 4.4.1 ``header``: a field of that name, whose Text form contains the
    value when one is given."""
    if text is None or not isinstance(value[0], str):
        return False
    found = text.header_values(value[0])
    if len(value) == 1:
        return bool(found)
    want = value[1]
    return isinstance(want, str) and any(contains(v, want) for v in found)


def _filter(c: _Candidate, tree: Filter | None) -> bool:
    return evaluate(tree, lambda condition: _matches(c, condition))


def _needs(tree: Filter | None, names: Sequence[str]) -> bool:
    """Whether a condition of the tree uses one of ``names``."""
    if tree is None:
        return False
    if isinstance(tree, FilterCondition):
        return any(name in names for name in tree.condition)
    assert isinstance(tree, FilterOperator)
    return any(_needs(sub, names) for sub in tree.conditions)


def _needs_summary(tree: Filter | None) -> bool:
    return _needs(tree, (*TEXT_CONDITIONS, *CONTENT_CONDITIONS, "hasAttachment"))


def cheap_filter(tree: Filter | None) -> Filter | None:
    """A filter that every email passing ``tree`` passes, without the conditions that
    read blobs: run first, so that only the emails it leaves are read (None: no
    restriction)."""
    if tree is None or not _needs(tree, CONTENT_CONDITIONS):
        return tree
    if isinstance(tree, FilterCondition):
        rest = {k: v for k, v in tree.condition.items() if k not in CONTENT_CONDITIONS}
        return FilterCondition(rest) if rest else None
    assert isinstance(tree, FilterOperator)
    if tree.operator == "NOT":
        return None
    subs = [cheap_filter(sub) for sub in tree.conditions]
    kept = tuple(sub for sub in subs if sub is not None)
    if tree.operator == "OR" and len(kept) < len(subs):
        return None
    return FilterOperator(tree.operator, kept) if kept else None


async def _scan(tr: Transaction, account_id: str, with_summary: bool
                ) -> tuple[str, list[_Candidate]]:
    """Every email of the account (each once, whatever its mailboxes)."""
    out: list[_Candidate] = []
    async for email in iter_visible_emails(tr, account_id):
        summary = await _summary(tr, account_id, email.id) if with_summary else None
        out.append(_Candidate(email, summary))
    return await get_state(tr, account_id), out


def _inbox_listing(tree: Filter | None, sort: Sequence[Comparator], collapse: bool,
                   window: Window) -> tuple[str, bool] | None:
    """(mailbox id, newest first) when the query is one mailbox by received date -- a
    mail list view -- which the layer's received-at index answers without a scan (with
    collapseThreads too, unless the total is asked: that counts every thread)."""
    if window.anchor is not None or window.position < 0 \
            or not isinstance(tree, FilterCondition) or (collapse and window.calculate_total):
        return None
    mailbox_id = tree.condition.get("inMailbox")
    if set(tree.condition) != {"inMailbox"} or not isinstance(mailbox_id, str):
        return None
    if len(sort) > 1 or (sort and sort[0].property != "receivedAt"):
        return None
    return mailbox_id, not (sort and sort[0].is_ascending)


ListingKey = tuple[str, str, bool, bool, int, int, bool]
Listing = tuple[tuple[str, ...], int]
LISTINGS = 4_096
"""Mailbox listings (a page of ids each) one process keeps: .state_cache."""


async def _listing(tr: Transaction, account_id: str, mailbox_id: str, newest_first: bool,
                   collapse: bool, position: int, limit: int, count: bool,
                   cache: StateCache[ListingKey, Listing]) -> tuple[str, Listing]:
    """The page of one mailbox's emails by received date, and the mailbox's total if
    ``count`` (else 0: calculateTotal is false, and reading it costs two reads); from
    ``cache`` if it has them at the account's state read here (then the received-at index
    is not read: .state_cache)."""
    state = await get_state(tr, account_id)
    key = (account_id, mailbox_id, newest_first, collapse, position, limit, count)
    _, kept = cache.get(key, state)
    if kept is not None:
        return state, kept
    try:
        if not limit:
            rows: list[str] = []
        elif collapse:
            rows = await query_mailbox_threads(tr, account_id, mailbox_id,
                                               newest_first=newest_first,
                                               position=position, limit=limit)
        else:
            rows = [email_id for email_id, _ in await query_mailbox(
                tr, account_id, mailbox_id, newest_first=newest_first, position=position,
                limit=limit)]
        total = (await visible_counts(tr, account_id, mailbox_id))[0] if count else 0
    except MailboxNotFound:  # section 4.4.1: no such mailbox matches nothing
        rows, total = [], 0
    found = (tuple(rows), total)
    cache.put(key, state, found)
    return state, found


@dataclass(frozen=True, slots=True)
class _Query:
    """The parsed arguments that decide an Email/query's results (and a queryChanges')."""

    tree: Filter | None
    sort: tuple[Comparator, ...]
    collapse: bool

    @property
    def needs_threads(self) -> bool:
        return _needs(self.tree, THREAD_CONDITIONS) \
            or any(c.property in THREAD_SORTS for c in self.sort)

    @property
    def immutable(self) -> bool:
        """Section 5.6: whether the filter and the sort are only on immutable properties
        (then an email moves in the results only when created or destroyed)."""
        return not self.collapse and _only(self.tree, IMMUTABLE_CONDITIONS) \
            and all(c.property in IMMUTABLE_SORTS for c in self.sort)


def _only(tree: Filter | None, names: frozenset[str]) -> bool:
    if tree is None:
        return True
    if isinstance(tree, FilterCondition):
        return set(tree.condition) <= names
    assert isinstance(tree, FilterOperator)
    return all(_only(sub, names) for sub in tree.conditions)


def query_args(args: JsonObject) -> _Query:
    tree = filter_arg(args, check_condition)
    sort = sort_arg(args, EMAIL_SORTS, keyword_properties=KEYWORD_SORTS)
    for comparator in sort:
        if comparator.keyword is not None:
            try:
                normalise_keyword(comparator.keyword)
            except ValueError:
                raise invalid_arguments(
                    f"invalid keyword {comparator.keyword!r} in the sort") from None
    return _Query(tree, sort, bool_arg(args, "collapseThreads"))


class EmailQuery:
    name = "Email/query"
    capability = MAIL

    def __init__(self, store: MailStore, blobs: BlobStore) -> None:
        self.store, self.blobs = store, blobs
        self.listings: StateCache[ListingKey, Listing] = StateCache("query", LISTINGS)

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "filter", "sort", "position", "anchor",
                           "anchorOffset", "limit", "calculateTotal", "collapseThreads"))
        account = account_arg(ctx, args)
        query = query_args(args)
        window = window_arg(args)
        listing = _inbox_listing(query.tree, query.sort, query.collapse, window)
        if listing is not None:
            return await self._listing(account.id, window, query.collapse, *listing)
        state, ids, _ = await self.results(account.id, query)
        position, page, capped = apply_window(ids, window, MAX_QUERY)
        out: JsonObject = {"accountId": account.id, "queryState": state,
                           "canCalculateChanges": True, "position": position,
                           "collapseThreads": query.collapse, "ids": list[JsonValue](page)}
        if window.calculate_total:
            out["total"] = len(ids)
        if capped is not None:
            out["limit"] = capped
        return out

    async def results(self, account_id: str, query: _Query
                      ) -> tuple[str, list[str], dict[str, Email]]:
        """The query state, every id of the results in order, and every email of the
        account by id."""
        tree = query.tree
        summaries = _needs_summary(tree) or any(c.property in SUMMARY_SORTS
                                                for c in query.sort)
        state, candidates = await self.store.run(account_id, _scan, summaries)
        emails = {c.email.id: c.email for c in candidates}
        threads: dict[str, ThreadKeywords] = {}
        if query.needs_threads:
            threads = thread_keywords(emails.values())
            candidates = [replace(c, thread=threads.get(c.email.thread_id))
                          for c in candidates]
        if _needs(tree, CONTENT_CONDITIONS):
            candidates = await self._read_texts(candidates, tree)
        ids: list[str] = []
        seen: set[str] = set()
        for c in sort_emails([c for c in candidates if _filter(c, tree)], query.sort,
                             threads):
            if query.collapse:  # section 4.4.3: only the first email of each thread
                if c.email.thread_id in seen:
                    continue
                seen.add(c.email.thread_id)
            ids.append(c.email.id)
        return state, ids, emails

    async def _read_texts(self, candidates: list[_Candidate], tree: Filter | None
                          ) -> list[_Candidate]:
        """The candidates the cheap conditions leave, each with its message text (the
        blobs of several read at the same time)."""
        cheap = cheap_filter(tree)
        body, attached = _needs(tree, ("text", "body")), _needs(tree, ("text",))
        gate = asyncio.Semaphore(READS_AT_ONCE)

        async def read(c: _Candidate) -> _Candidate:
            text = MessageText((), "")
            if c.summary is not None:
                async with gate:
                    try:
                        text = await read_message_text(
                            c.summary, BlobReader(self.blobs, c.email.blob_id), body=body,
                            attached=attached)
                    except BlobError:
                        pass  # an unreadable message has no text to match
            return replace(c, text=text)
        return list(await asyncio.gather(*(read(c) for c in candidates
                                           if _filter(c, cheap))))

    async def _listing(self, account_id: str, window: Window, collapse: bool,
                       mailbox_id: str, newest_first: bool) -> JsonObject:
        limit = MAX_QUERY if window.limit is None else min(window.limit, MAX_QUERY)
        state, (page, total) = await self.store.run(
            account_id, _listing, mailbox_id, newest_first, collapse, window.position,
            limit, window.calculate_total, self.listings)
        out: JsonObject = {"accountId": account_id, "queryState": state,
                           "canCalculateChanges": True, "position": window.position,
                           "collapseThreads": collapse, "ids": list[JsonValue](page)}
        if window.calculate_total:
            out["total"] = total
        if window.limit is not None and window.limit > MAX_QUERY:
            out["limit"] = MAX_QUERY
        return out


# -- Thread ---------------------------------------------------------------------------


async def _threads(tr: Transaction, account_id: str, ids: Sequence[str]
                   ) -> tuple[str, dict[str, list[str]]]:
    found: dict[str, list[str]] = {}
    deleted: dict[int, frozenset[int] | None] = {}
    for thread_id in ids:
        # section 4.1.1: an email with $deleted in every mailbox is in no thread
        emails = [e for e in await list_thread(tr, account_id, thread_id)
                  if await get_visible_email(tr, account_id, e, deleted=deleted) is not None]
        if emails:
            found[thread_id] = emails
    return await get_state(tr, account_id), found


class ThreadGet:
    name = "Thread/get"
    capability = MAIL

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ids", "properties"))
        account = account_arg(ctx, args)
        ids = ids_arg(ctx, args)
        listed: str | None = None  # the state of the listing for ids null
        if ids is None:
            listed, ids = await all_thread_ids(self.store, ctx, account.id)
        properties = properties_arg(args, ("id", "emailIds"), ("id", "emailIds"))
        state, found = await self.store.run(account.id, _threads, ids)
        records: list[JsonValue] = [pick({"id": i, "emailIds": list(found[i])}, properties)
                   for i in ids if i in found]
        return {"accountId": account.id, "state": listed or state, "list": records,
                "notFound": [i for i in ids if i not in found]}


class ThreadChanges:
    name = "Thread/changes"
    capability = MAIL

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        return (await changes_call(self.store, ctx, args, THREAD, get_visible_changes))[0]
