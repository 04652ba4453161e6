"""JMAP push subscriptions (RFC 8620 section 7.2): where a client asked to be told of
changes, whether it proved it owns that URL, until when, and of which types.

A subscription belongs to the principal that created it (its id is also the account
id).  Every write moves one counter (:data:`VERSION`), which the delivery worker
watches to learn of new, changed or destroyed subscriptions; the states last pushed
to a subscription are kept beside it (:data:`PUSHED`), so that a worker taking over
from another pushes only what changed since.  Every write takes ``tr`` first and
never commits; the caller picks the ids, so a retried write stores the same thing."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from .engine.base import Engine, Transaction, Watch
from .keys import Subspace, decode_int

# --- layout: every key of this layer -------------------------------------------------
LAYOUT = (1, 0)  # layout["push"] (see fdb_layers.layout)
ROOT = Subspace(("push",))
RECORD = ROOT["sub"]  # [owner, subscription id] -> JSON of the PushSubscription fields
PUSHED = ROOT["pushed"]  # [owner, subscription id] -> the states last pushed (opaque)
VERSION = ROOT.pack(("version",))  # int64 LE, added to on every write (watched)
LEASE = ROOT.pack(("lease",))  # the delivery worker's lease (fdb_layers.lease)
DONE = ROOT["done"]  # [op id] -> when a destroy with that op id deleted (retries find it)

MAX_PER_OWNER = 50
MAX_URL_LENGTH = 2000


class TooManySubscriptions(Exception):
    """The owner has :data:`MAX_PER_OWNER` subscriptions already."""


@dataclass(frozen=True, slots=True)
class PushSubscription:
    id: str
    owner: str  # principal id (= account id)
    owner_name: str  # login name, to read the principal again from the directory
    device_client_id: str
    url: str
    code: str  # the verification code the server sent; verified once the client echoes it
    verified: bool = False
    expires: float | None = None  # POSIX seconds
    types: tuple[str, ...] | None = None  # None: every type
    keys: tuple[str, str] | None = None  # RFC 8291 (p256dh, auth), base64url


def _encode(s: PushSubscription) -> bytes:
    return json.dumps([s.owner_name, s.device_client_id, s.url, s.code, s.verified,
                       s.expires, None if s.types is None else list(s.types),
                       None if s.keys is None else list(s.keys)]).encode()


def _decode(owner: str, subscription_id: str, raw: bytes) -> PushSubscription:
    name, device, url, code, verified, expires, types, keys = json.loads(raw)
    return PushSubscription(subscription_id, owner, str(name), str(device), str(url),
                            str(code), bool(verified),
                            None if expires is None else float(expires),
                            None if types is None else tuple(str(t) for t in types),
                            None if keys is None else (str(keys[0]), str(keys[1])))


def _bump(tr: Transaction) -> None:
    tr.add(VERSION, 1)


async def list_subscriptions(tr: Transaction, owner: str) -> list[PushSubscription]:
    rows = await tr.get_range(*RECORD.range((owner,)), limit=MAX_PER_OWNER + 1)
    return [_decode(owner, str(RECORD.unpack(r.key)[1]), r.value) for r in rows]


async def get_subscription(tr: Transaction, owner: str,
                           subscription_id: str) -> PushSubscription | None:
    raw = await tr.get(RECORD.pack((owner, subscription_id)))
    return None if raw is None else _decode(owner, subscription_id, raw)


async def create_subscription(tr: Transaction, subscription: PushSubscription) -> None:
    """Store a new subscription (a retry finds it stored and stores the same)."""
    key = RECORD.pack((subscription.owner, subscription.id))
    if await tr.get(key) is None:
        existing = await list_subscriptions(tr, subscription.owner)
        if len(existing) >= MAX_PER_OWNER:
            raise TooManySubscriptions(f"at most {MAX_PER_OWNER} push subscriptions")
    tr.set(key, _encode(subscription))
    _bump(tr)


async def update_subscription(tr: Transaction, subscription: PushSubscription) -> bool:
    """Replace a stored subscription; False if it does not exist (any more)."""
    key = RECORD.pack((subscription.owner, subscription.id))
    if await tr.get(key) is None:
        return False
    tr.set(key, _encode(subscription))
    _bump(tr)
    return True


async def delete_subscription(tr: Transaction, owner: str, subscription_id: str,
                              op_id: str, now: float) -> bool:
    """Forget a subscription; False if it did not exist.  ``op_id`` names this call:
    run again after ``commit_unknown_result``, it answers True again."""
    if await tr.get(DONE.pack((op_id,))) is not None:
        return True
    key = RECORD.pack((owner, subscription_id))
    if await tr.get(key) is None:
        return False
    tr.clear(key)
    tr.clear(PUSHED.pack((owner, subscription_id)))
    tr.set(DONE.pack((op_id,)), json.dumps(now).encode())
    _bump(tr)
    return True


async def expire_done(tr: Transaction, before: float, *, limit: int = 1000) -> None:
    """Forget the destroys' op ids recorded before ``before`` (retries come seconds
    after their first attempt)."""
    for row in await tr.get_range(*DONE.range(), limit=limit):
        if float(json.loads(row.value)) < before:
            tr.clear(row.key)


async def list_all_subscriptions(tr: Transaction, *, limit: int) -> list[PushSubscription]:
    """Every owner's subscriptions, at most ``limit`` (the delivery worker's scan)."""
    rows = await tr.get_range(*RECORD.range(), limit=limit)
    out = []
    for r in rows:
        owner, subscription_id = RECORD.unpack(r.key)
        out.append(_decode(str(owner), str(subscription_id), r.value))
    return out


async def get_pushed(tr: Transaction, owner: str, subscription_id: str) -> str | None:
    raw = await tr.get(PUSHED.pack((owner, subscription_id)))
    return None if raw is None else raw.decode()


async def set_pushed(tr: Transaction, owner: str, subscription_id: str, states: str) -> None:
    """Record what was pushed, if the subscription still exists."""
    if await tr.get(RECORD.pack((owner, subscription_id))) is not None:
        tr.set(PUSHED.pack((owner, subscription_id)), states.encode())


async def get_version(tr: Transaction) -> int:
    return decode_int(await tr.get(VERSION))


async def watch_subscriptions(engine: Engine) -> Watch:
    """A watch that fires at the next write of any subscription."""
    return await engine.watch(VERSION)


def verified(subscription: PushSubscription, code: str) -> PushSubscription:
    return replace(subscription, verified=True) if code == subscription.code else subscription
