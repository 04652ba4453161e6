"""The mail capability (RFC 8621 section 1.3) and what its methods share: the mail
layer's store, the account created on first use, the state and the changes of one kind.

The JMAP account id is the directory principal's id, which is also the mail layer's
account id (so delivery, IMAP and JMAP see one account); an account that no mail has
reached yet is created on its first JMAP call, as delivery creates it on its first
message (``ensure_account``)."""

from __future__ import annotations

import datetime
import functools
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from fdb_layers.mail import (
    MAX_DEPTH,
    MAX_NAME_BYTES,
    CannotCalculateChanges,
    Changes,
    Engine,
    StoreUnavailable,
    Transaction,
    account_exists,
    count_deleted,
    ensure_account,
    get_changes,
    get_status,
    transact,
)

from .args import (
    account_arg,
    cannot_calculate,
    check_known,
    max_changes_arg,
    string_arg,
)
from .errors import MethodError, invalid_arguments
from .json import JsonObject
from .methods import CallContext, Capability

MAIL = "urn:ietf:params:jmap:mail"
# The Email/query sorts we run (RFC 8621 section 4.4.2: every one it names), advertised
# as emailQuerySortOptions; :mod:`.email_sort` runs them.
EMAIL_SORTS = ("receivedAt", "size", "from", "to", "subject", "sentAt", "hasKeyword",
               "allInThreadHaveKeyword", "someInThreadHaveKeyword")

P = ParamSpec("P")
T = TypeVar("T")


def mail_capability(max_size_attachments: int) -> Capability:
    """``urn:ietf:params:jmap:mail``: an empty object in the session, the account's limits
    in ``accountCapabilities`` (RFC 8621 section 1.3.1)."""
    account: JsonObject = {
        "maxMailboxesPerEmail": None,
        "maxMailboxDepth": MAX_DEPTH,
        "maxSizeMailboxName": MAX_NAME_BYTES,
        "maxSizeAttachmentsPerEmail": max_size_attachments,
        "emailQuerySortOptions": list(EMAIL_SORTS),
        "mayCreateTopLevelMailbox": True,
    }
    return Capability(MAIL, {}, account)


class MailStore:
    """The mail layer as the methods use it: one transaction per call, in the caller's
    account, created first if it does not exist yet."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def run(self, account_id: str,
                  fn: Callable[Concatenate[Transaction, str, P], Awaitable[T]],
                  *args: P.args, **kwargs: P.kwargs) -> T:
        async def body(tr: Transaction) -> T:
            if not await account_exists(tr, account_id):
                await ensure_account(tr, account_id, uidvalidity_seed=max(1, int(time.time())))
            return await fn(tr, account_id, *args, **kwargs)
        try:
            return await transact(self.engine, body)
        except StoreUnavailable as e:
            raise MethodError("serverUnavailable", f"the store is unavailable: {e}") from e


async def changes_call(store: MailStore, ctx: CallContext, args: JsonObject,
                       kind: str, fn: Callable[..., Awaitable[Changes]] = get_changes
                       ) -> tuple[JsonObject, bool]:
    """``Foo/changes`` (RFC 8620 section 5.2) of one kind of the change log: the response,
    and whether every update changed only a mailbox's counts.  ``fn``: the layer's
    ``get_changes`` or a function that takes its arguments and adjusts its answer."""
    check_known(args, ("accountId", "sinceState", "maxChanges"))
    account = account_arg(ctx, args)
    since = string_arg(args, "sinceState", required=True)
    assert since is not None
    max_changes = max_changes_arg(args)
    try:
        changes = await store.run(account.id, fn, kind, since, max_changes=max_changes)
    except CannotCalculateChanges:
        raise cannot_calculate(since) from None
    out: JsonObject = {
        "accountId": account.id, "oldState": since, "newState": changes.new_state,
        "hasMoreChanges": changes.has_more_changes, "created": list(changes.created),
        "updated": list(changes.updated), "destroyed": list(changes.destroyed)}
    return out, changes.counts_only


class CountedChanges(Protocol):
    """What a layer with its own change counter (identities, submissions) reports."""

    @property
    def created(self) -> tuple[str, ...]: ...
    @property
    def updated(self) -> tuple[str, ...]: ...
    @property
    def destroyed(self) -> tuple[str, ...]: ...
    @property
    def new_state(self) -> int: ...
    @property
    def has_more(self) -> bool: ...


async def counted_changes_call(store: MailStore, ctx: CallContext, args: JsonObject,
                               get: Callable[..., Awaitable[CountedChanges | None]]
                               ) -> JsonObject:
    """``Foo/changes`` (RFC 8620 section 5.2) over a layer's own change counter: ``get(tr,
    account_id, since, max_changes)`` answers None for a state it never gave."""
    check_known(args, ("accountId", "sinceState", "maxChanges"))
    account = account_arg(ctx, args)
    since = string_arg(args, "sinceState", required=True)
    assert since is not None
    max_changes = max_changes_arg(args)
    changes: Any = await store.run(account.id, get, int(since) if since.isdigit() else -1,
                                   max_changes)
    if changes is None:
        raise cannot_calculate(since)
    return {"accountId": account.id, "oldState": since,
            "newState": str(changes.new_state), "hasMoreChanges": changes.has_more,
            "created": list(changes.created), "updated": list(changes.updated),
            "destroyed": list(changes.destroyed)}


async def visible_counts(tr: Transaction, account_id: str, mailbox_id: str) -> tuple[int, int]:
    """(totalEmails, unreadEmails) of a mailbox: its counters less the messages with IMAP's
    \\Deleted, which JMAP does not show (RFC 8621 section 4.1.1)."""
    status = await get_status(tr, account_id, mailbox_id)
    deleted, deleted_unseen = await count_deleted(tr, account_id, mailbox_id)
    return status.messages - deleted, status.unseen - deleted_unseen


def utc_date(seconds: float) -> str:
    """A UTCDate (RFC 8620 section 1.4): ``2014-10-30T06:12:00Z``."""
    return _utc_date(int(seconds))


@functools.lru_cache(maxsize=1 << 16)
def _utc_date(seconds: int) -> str:
    # every Email/get formats receivedAt of each email (a list view: 50 per request,
    # the same ones again on each refresh): 1.2 us by strftime, 0.15 us from here
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# RFC 8620 section 1.4: a UTCDate is an RFC 3339 date-time whose time-offset is "Z",
# its time-secfrac omitted if zero and its letters uppercase
_UTC_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d*[1-9]\d*)?Z")


def parse_exact_utc_date(value: object, name: str) -> float:
    """A UTCDate (RFC 8620 section 1.4) in exactly its form, as POSIX seconds;
    ``invalidArguments`` otherwise (an offset other than ``Z`` included)."""
    if not isinstance(value, str) or not _UTC_DATE.fullmatch(value):
        raise invalid_arguments(f"{name!r} must be a UTCDate (RFC 8620 section 1.4), "
                                f"not {value!r}")
    return parse_utc_date(value, name)


def parse_utc_date(value: object, name: str) -> float:
    """A UTCDate filter value as POSIX seconds; ``invalidArguments`` otherwise."""
    if not isinstance(value, str):
        raise invalid_arguments(f"{name!r} must be a UTCDate")
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_arguments(f"{name!r} must be a UTCDate, not {value!r}") from None
    if parsed.tzinfo is None:
        raise invalid_arguments(f"{name!r} must be a UTCDate with a time zone")
    return parsed.timestamp()
