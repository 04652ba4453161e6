"""The \\Seen writes of a process's IMAP sessions to one account, one at a time.

Every write to an account takes the account's next modseq (DESIGN.md), so two write
transactions on one account that overlap conflict, and the engine runs the loser again
after a backoff (the sqlite engine: 1 ms doubling up to 200 ms).  With K sessions setting
\\Seen on one account (FETCH BODY[], RFC 9051 section 6.4.5), most attempts ran in vain:
``ops/bench/imap.py`` counted 1,000-1,800 retried transactions in 10 s of K = 4 or 16 on a
fresh mailbox.  Queued on a lock per account instead, each such write of this process runs
once, in turn; the store admits one write per account per commit either way.  Only a FETCH
that found \\Seen to set takes the lock (reads never wait behind writes); STORE, other
processes and other protocols write unqueued and conflict as before: the lock saves work,
correctness stays with the engine's conflict checks.
"""

from __future__ import annotations

import asyncio
from weakref import WeakValueDictionary


class AccountWriters:
    """A lock per account, kept while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    def lock(self, account_id: str) -> asyncio.Lock:
        found = self._locks.get(account_id)
        if found is None:
            found = self._locks[account_id] = asyncio.Lock()
        return found
