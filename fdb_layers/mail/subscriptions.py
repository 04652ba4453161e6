"""Subscribed names that have no mailbox (RFC 3501 section 6.3.6, RFC 9051 section 6.3.7).

An existing mailbox's subscription is the ``subscribed`` flag of its record (what JMAP
calls ``isSubscribed``).  The subscription list is a list of *names*, though: the server
must not drop a name from it because its mailbox went (DELETE, or RENAME away from it),
and a client may subscribe to a name before it exists.  Such names are kept here, one
key each (``[path] -> b""``); creating a mailbox at a kept name moves the subscription
back onto the new mailbox's flag.  Names a client subscribes to without a mailbox are
bounded by :data:`MAX_NAMES`; names kept by DELETE or RENAME are not refused (that would
fail the DELETE), so they can go past it.
"""

from __future__ import annotations

from ..engine.base import Transaction
from .errors import TooManySubscriptions
from .layout import AccountKeys

MAX_NAMES = 1000


async def list_names(tr: Transaction, keys: AccountKeys) -> list[str]:
    """The kept names, in path order."""
    rows = await tr.get_range(*keys.subscription.range())
    return [str(keys.subscription.unpack(row.key)[0]) for row in rows]


async def take_name(tr: Transaction, keys: AccountKeys, path: str) -> bool:
    """Forget ``path``; whether it was kept (a mailbox now carries its subscription)."""
    key = keys.subscription.pack((path,))
    if await tr.get(key) is None:
        return False
    tr.clear(key)
    return True


def keep_name(tr: Transaction, keys: AccountKeys, path: str) -> None:
    """Keep ``path`` subscribed: its mailbox was deleted or renamed."""
    tr.set(keys.subscription.pack((path,)), b"")


async def add_name(tr: Transaction, keys: AccountKeys, path: str) -> bool:
    """SUBSCRIBE to a name without a mailbox, within :data:`MAX_NAMES`; whether it was
    not subscribed yet."""
    key = keys.subscription.pack((path,))
    if await tr.get(key) is not None:
        return False
    rows = await tr.get_range(*keys.subscription.range(), limit=MAX_NAMES)
    if len(rows) >= MAX_NAMES:
        raise TooManySubscriptions(f"at most {MAX_NAMES} subscribed names without a mailbox")
    tr.set(key, b"")
    return True
