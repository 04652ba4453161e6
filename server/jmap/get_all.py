"""``ids: null`` in Email/get and Thread/get (RFC 8620 section 5.1): "If null, then all
records of the data type are returned, if ... the number of records does not exceed the
maxObjectsInGet limit".  RFC 8621 lets neither method refuse it, so an account with few
emails gets them all; past the limit the call is ``requestTooLarge``."""

from __future__ import annotations

from fdb_layers.mail import Email, Transaction, get_state, iter_visible_emails

from .errors import MethodError
from .mail import MailStore
from .methods import CallContext


async def list_visible_emails(tr: Transaction, account_id: str, cap: int
                              ) -> tuple[str, list[Email] | None]:
    """The account's state, and every email of the account that JMAP shows (RFC 8621
    section 4.1.1), each once, or None as soon as there are more than ``cap``: the
    mailboxes are read ``cap + 1`` messages at a time, so a large account costs no more
    than the limit."""
    state = await get_state(tr, account_id)
    found: list[Email] = []
    async for email in iter_visible_emails(tr, account_id, page=cap + 1):
        found.append(email)
        if len(found) > cap:
            return state, None
    return state, found


async def all_email_ids(store: MailStore, ctx: CallContext, account_id: str
                        ) -> tuple[str, list[str]]:
    """Email/get's state and ids for ``ids: null``.  The state is the listing's: the
    records read after it may be newer, and an older state only makes /changes repeat
    a change, where a newer one would hide an email created in between."""
    cap = ctx.limits.max_objects_in_get
    state, emails = await store.run(account_id, list_visible_emails, cap)
    if emails is None:
        raise _too_many("emails", cap)
    return state, [e.id for e in emails]


async def all_thread_ids(store: MailStore, ctx: CallContext, account_id: str
                         ) -> tuple[str, list[str]]:
    """Thread/get's state and ids for ``ids: null`` (the threads of at most
    maxObjectsInGet emails), the state the listing's as for :func:`all_email_ids`."""
    cap = ctx.limits.max_objects_in_get
    state, emails = await store.run(account_id, list_visible_emails, cap)
    if emails is None:
        raise _too_many("emails", cap)
    return state, list(dict.fromkeys(e.thread_id for e in emails))


def _too_many(kind: str, cap: int) -> MethodError:
    return MethodError("requestTooLarge", f"the account has more than {cap} {kind}: give "
                       "the ids to get")
