"""Per-account quota usage, kept with atomic adds (never by scanning).

The limit itself belongs to the directory; callers pass it in.  As in the
directory (``Principal.quota``), a limit of 0 -- or none -- means unlimited.  Usage counts
each email once, however many mailboxes it is in (its blob is stored once).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.base import Transaction
from ..keys import decode_int
from .errors import QuotaExceeded
from .layout import USAGE_BYTES, USAGE_MESSAGES, AccountKeys, account_keys


@dataclass(frozen=True, slots=True)
class Usage:
    bytes: int
    messages: int


async def get_usage(tr: Transaction, account_id: str) -> Usage:
    keys = account_keys(account_id)
    return Usage(
        bytes=decode_int(await tr.get(keys.count_key(USAGE_BYTES))),
        messages=decode_int(await tr.get(keys.count_key(USAGE_MESSAGES))),
    )


async def check_quota(tr: Transaction, keys: AccountKeys, size: int, quota: int | None) -> None:
    """Raise :class:`QuotaExceeded` if ``size`` more bytes would pass ``quota``
    (None or 0: unlimited)."""
    if quota is None or quota <= 0:
        return
    used = decode_int(await tr.get(keys.count_key(USAGE_BYTES)))
    if used + size > quota:
        raise QuotaExceeded(used, quota, size)


def add_usage(tr: Transaction, keys: AccountKeys, size: int, messages: int) -> None:
    tr.add(keys.count_key(USAGE_BYTES), size)
    tr.add(keys.count_key(USAGE_MESSAGES), messages)
