"""The push delivery worker: StateChanges to verified PushSubscriptions (RFC 8620
section 7.2), from any node, exactly one worker at a time.

Every node process runs one; the one holding the lease (``fdb_layers.push.LEASE``)
delivers.  It lists the subscriptions, and for each owner with verified ones that have
not expired it watches the account (:class:`.state.StateWatcher`) and, on a change,
POSTs each subscription the states that differ from those last pushed to it (kept in
the store, so a worker taking over goes on where the other stopped).  A write to any
subscription (the layer's version key, watched) makes it list them again.  Expired
subscriptions are deleted.  A push that fails after its retries is not recorded, so
the next change pushes everything since the last push that succeeded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Sequence

from fdb_layers.lease import release_lease, take_lease
from fdb_layers.mail import Engine, StoreUnavailable, Transaction, transact
from fdb_layers.push import (
    LEASE,
    PushSubscription,
    delete_subscription,
    expire_done,
    get_pushed,
    list_all_subscriptions,
    set_pushed,
    watch_subscriptions,
)
from server.directory.base import Directory

from ..mail import MailStore
from .delivery import Pusher
from .eventsource import EVENTS
from .subscriptions import keys_of
from .state import StateWatcher, changed_types, decode_token, encode_token, state_change

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
RENEW_EVERY = 10.0
MAX_SUBSCRIPTIONS = 100_000  # listed per scan
DONE_KEPT = 3600.0  # seconds a destroy's op id is kept for its retries


class PushWorker:
    def __init__(self, engine: Engine, directory: Directory, pusher: Pusher, *,
                 holder: str | None = None) -> None:
        self.engine, self.directory, self.pusher = engine, directory, pusher
        self.store = MailStore(engine)
        self.holder = holder or f"{socket.gethostname()}/{os.getpid()}/{id(self):x}"
        self._stop = asyncio.Event()
        self._owners: dict[str, asyncio.Task[None]] = {}
        self._subscriptions: dict[str, list[PushSubscription]] = {}

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    held = await transact(self.engine, take_lease, LEASE, self.holder,
                                          time.time(), LEASE_SECONDS)
                except StoreUnavailable as e:
                    log.warning("push worker: store unavailable (%s)", e)
                    held = False
                if held:
                    await self._deliver_while_held()
                else:
                    self._cancel_owners()
                    await self._sleep(RENEW_EVERY)
        finally:
            self._cancel_owners()
            with contextlib.suppress(Exception):
                await transact(self.engine, release_lease, LEASE, self.holder)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _deliver_while_held(self) -> None:
        """Reconcile the owners' tasks with the subscriptions until the lease is due for
        renewal (or a subscription changes, or the worker stops)."""
        deadline = time.monotonic() + RENEW_EVERY
        while not self._stop.is_set() and time.monotonic() < deadline:
            watch = await watch_subscriptions(self.engine)
            try:
                subscriptions = await transact(self.engine, _scan)
                await self._reconcile(subscriptions)
                waits = [asyncio.ensure_future(watch.wait()),
                         asyncio.ensure_future(self._stop.wait())]
                try:
                    await asyncio.wait(waits, timeout=max(0.0, deadline - time.monotonic()),
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
            except StoreUnavailable as e:
                log.warning("push worker: store unavailable (%s)", e)
                await self._sleep(1.0)
            finally:
                watch.cancel()

    async def _reconcile(self, subscriptions: Sequence[PushSubscription]) -> None:
        now = time.time()
        await transact(self.engine, expire_done, now - DONE_KEPT)
        active: dict[str, list[PushSubscription]] = {}
        for s in subscriptions:
            if s.expires is not None and s.expires <= now:
                await transact(self.engine, _delete, s.owner, s.id, f"expired/{s.id}", now)
            elif s.verified:
                active.setdefault(s.owner, []).append(s)
        self._subscriptions = active
        for owner, task in list(self._owners.items()):
            if owner not in active or task.done():
                task.cancel()
                del self._owners[owner]
        for owner, subs in active.items():
            if owner not in self._owners:
                self._owners[owner] = asyncio.create_task(self._owner(owner, subs[0].owner_name))

    def _cancel_owners(self) -> None:
        for task in self._owners.values():
            task.cancel()
        self._owners.clear()

    async def _owner(self, owner: str, name: str) -> None:
        """Push the changes of one account to its owner's subscriptions, until cancelled."""
        try:
            principal = await self.directory.get_principal(name)
            if principal is None or principal.id != owner:
                return
            watcher = StateWatcher(self.store, principal)
            known: dict[str, str] | None = None
            while True:
                now = await watcher.current() if known is None \
                    else await watcher.next_change(known, None)
                assert now is not None
                for s in list(self._subscriptions.get(owner, ())):
                    await self._push(s, now)
                known = now
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("push worker: an account's pushes failed; retried at the next scan")

    async def _push(self, s: PushSubscription, now: dict[str, str]) -> None:
        pushed = decode_token(await transact(self.engine, _pushed, s.owner, s.id))
        token = encode_token(now)
        if pushed is None:  # verified by another path: start from now
            await transact(self.engine, _set_pushed, s.owner, s.id, token)
            return
        changed = changed_types(pushed, now, None if s.types is None else frozenset(s.types))
        if not changed:
            return
        EVENTS.labels("subscription", "state").inc()
        if await self.pusher.post(s.url, state_change(s.owner, changed), "state",
                                  keys_of(s)):
            await transact(self.engine, _set_pushed, s.owner, s.id, token)


async def _scan(tr: Transaction) -> list[PushSubscription]:
    return await list_all_subscriptions(tr, limit=MAX_SUBSCRIPTIONS)


async def _delete(tr: Transaction, owner: str, subscription_id: str, op_id: str,
                  now: float) -> bool:
    return await delete_subscription(tr, owner, subscription_id, op_id, now)


async def _pushed(tr: Transaction, owner: str, subscription_id: str) -> str | None:
    return await get_pushed(tr, owner, subscription_id)


async def _set_pushed(tr: Transaction, owner: str, subscription_id: str, token: str) -> None:
    await set_pushed(tr, owner, subscription_id, token)
