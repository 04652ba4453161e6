"""What a push says (RFC 8620 section 7.1): the account's state string per data type,
and waiting until one of them changes.

The states are the ones the /get methods answer with, read the same way: Mailbox,
Email and Thread share the mail layer's account state (``get_state``), Identity,
EmailSubmission and VacationResponse are their layers' counters, Quota the quota's
values (:func:`server.jmap.quota.quota_state`).

Wake-ups come from the store, as for IMAP IDLE: the account's modseq key and the
other layers' counters are watched, so a commit in any process of any node -- an SMTP
delivery, an IMAP APPEND, another JMAP client -- fires them.  Nothing is queued per
listener: after each wake-up the states are read again and compared with what the
listener saw last, so a slow consumer gets one coalesced change, never a backlog.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Mapping

from fdb_layers.identities import get_identity_state, watch_identities
from fdb_layers.submissions import get_submission_state, watch_submissions
from fdb_layers.vacation import get_vacation_state, watch_vacation
from fdb_layers.mail import Engine, Transaction, get_state, get_usage, watch_account
from server.directory.base import Principal

from ..json import JsonObject
from ..mail import MailStore
from ..quota import quota_state

log = logging.getLogger(__name__)

# The data types whose changes are pushed, in the order they are listed.
TYPES = ("Mailbox", "Email", "Thread", "Identity", "Quota", "EmailSubmission",
         "VacationResponse")
_WATCHES = (watch_account, watch_identities, watch_submissions, watch_vacation)
MAX_TOKEN_LENGTH = 4096
_RETRY_AFTER_FAILURE = 1.0

States = Mapping[str, str]  # type name -> state string


async def read_states_in(tr: Transaction, account_id: str, quota_limit: int) -> dict[str, str]:
    mail = await get_state(tr, account_id)
    return {"Mailbox": mail, "Email": mail, "Thread": mail,
            "Identity": str(await get_identity_state(tr, account_id)),
            "Quota": quota_state((await get_usage(tr, account_id)).bytes, quota_limit),
            "EmailSubmission": str(await get_submission_state(tr, account_id)),
            "VacationResponse": str(await get_vacation_state(tr, account_id))}


async def read_states(store: MailStore, principal: Principal) -> dict[str, str]:
    """The principal's account's states now, one transaction."""
    return await store.run(principal.id, read_states_in, principal.quota)


def changed_types(old: States | None, new: States,
                  types: frozenset[str] | None) -> dict[str, str]:
    """The states of ``new`` that differ from ``old``, among ``types`` (None: all)."""
    return {t: s for t, s in new.items()
            if (types is None or t in types) and (old is None or old.get(t) != s)}


def state_change(account_id: str, changed: States) -> JsonObject:
    """A StateChange object (RFC 8620 section 7.1)."""
    return {"@type": "StateChange", "changed": {account_id: dict(changed)}}


def encode_token(states: States) -> str:
    """The states as an opaque token (an EventSource event id, a WebSocket pushState),
    from which :func:`decode_token` gets them back when the client reconnects."""
    raw = json.dumps(dict(states), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None) -> dict[str, str] | None:
    """The states of a token, or None if it is not one of ours."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return None
    return value


class StateWatcher:
    """One listener's view of one account: :meth:`next_change` returns once a watched
    type's state differs from the states it is given."""

    def __init__(self, store: MailStore, principal: Principal) -> None:
        self.store, self.principal = store, principal

    @property
    def engine(self) -> Engine:
        return self.store.engine

    async def current(self) -> dict[str, str]:
        return await read_states(self.store, self.principal)

    async def next_change(self, known: States | None, types: frozenset[str] | None,
                          within: float | None = None) -> dict[str, str] | None:
        """The account's states once they differ from ``known`` in one of ``types``
        (None: all); None if ``within`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        account_id = self.principal.id
        while True:
            watches = []
            try:
                for watch_key in _WATCHES:
                    watches.append(await watch_key(self.engine, account_id))
                # Read after the watches are set: a commit after the read fires them.
                now = await self.current()
                if changed_types(known, now, types):
                    return now
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return None
                waits = [asyncio.ensure_future(w.wait()) for w in watches]
                try:
                    done, _ = await asyncio.wait(waits, timeout=remaining,
                                                 return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
                for d in done:
                    d.result()  # a failed watch raises here
                if not done:
                    return None
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("push watch failed for an account; retrying")
                await asyncio.sleep(_RETRY_AFTER_FAILURE)
            finally:
                for watch in watches:
                    watch.cancel()
