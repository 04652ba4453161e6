"""PushSubscription/get and /set (RFC 8620 section 7.2).

Subscriptions belong to the principal that made them and take no accountId.  A new
one is sent a PushVerification at once; nothing else is pushed to it until the client
sets ``verificationCode`` to the code it received (section 7.2.2).  The states at
that moment are recorded with the verification, so the delivery worker
(:mod:`.worker`) pushes every change made after it.

With ``keys`` (a P-256 ``p256dh`` public key and an ``auth`` secret), every push to
the subscription is encrypted (RFC 8291, :mod:`.encryption`)."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import replace

from fdb_layers.mail import Transaction
from fdb_layers.push import (
    MAX_URL_LENGTH,
    PushSubscription,
    TooManySubscriptions,
    create_subscription,
    delete_subscription,
    get_subscription,
    list_subscriptions,
    set_pushed,
    update_subscription,
)

from ..args import (
    apply_updates,
    check_known,
    check_set_size,
    object_arg,
    properties_arg,
    resolve_creation_id,
    set_response,
    split_updates,
    string_list_arg,
)
from ..errors import MethodError, SetError
from ..json import JsonObject, JsonValue
from ..mail import MailStore, parse_exact_utc_date, utc_date
from ..methods import CORE, CallContext
from .delivery import Pusher, check_url
from .encryption import BadKeys, PushKeys
from .settings import PushSettings
from .state import encode_token, read_states_in

PROPERTIES = ("id", "deviceClientId", "url", "keys", "verificationCode", "expires", "types")
PRIVATE = ("url", "keys")  # never returned (section 7.2.1)
MAX_LIFETIME = 7 * 24 * 3600.0  # expires is cut to a week from now
MAX_TYPES = 64
_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")


def _to_json(s: PushSubscription) -> JsonObject:
    return {"id": s.id, "deviceClientId": s.device_client_id,
            "verificationCode": s.code if s.verified else None,
            "expires": None if s.expires is None else utc_date(s.expires),
            "types": None if s.types is None else list(s.types)}


def _invalid(prop: str, description: str) -> SetError:
    return SetError("invalidProperties", description, properties=(prop,))


def _expires(value: JsonValue, now: float) -> float:
    if value is None:
        return now + MAX_LIFETIME
    try:
        when = parse_exact_utc_date(value, "expires")
    except MethodError as e:
        raise _invalid("expires", str(e)) from None
    if when <= now:
        raise _invalid("expires", "expires is in the past")
    return min(when, now + MAX_LIFETIME)


def _types(value: JsonValue) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_TYPES or not all(
            isinstance(t, str) and _TYPE_NAME.fullmatch(t) for t in value):
        raise _invalid("types", f"types must be null or at most {MAX_TYPES} type names")
    return tuple(dict.fromkeys(t for t in value if isinstance(t, str)))


def _keys(value: JsonValue) -> PushKeys | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"p256dh", "auth"}:
        raise _invalid("keys", "keys must be null or an object with p256dh and auth")
    try:
        return PushKeys.from_json(value["p256dh"], value["auth"])
    except BadKeys as e:
        raise _invalid("keys", str(e)) from None


def keys_of(s: PushSubscription) -> PushKeys | None:
    """The subscription's encryption keys, as stored (checked when it was created)."""
    return None if s.keys is None else PushKeys.from_json(*s.keys)


class _Subscriptions:
    capability = CORE

    def __init__(self, store: MailStore, settings: PushSettings, pusher: Pusher) -> None:
        self.store, self.settings, self.pusher = store, settings, pusher
        self._tasks: set[asyncio.Task[bool]] = set()


class PushSubscriptionGet(_Subscriptions):
    name = "PushSubscription/get"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("ids", "properties"))
        wanted = string_list_arg(args, "properties")
        if wanted is not None and any(p in PRIVATE for p in wanted):
            raise MethodError("forbidden", "url and keys are never returned")
        properties = properties_arg(args, PROPERTIES,
                                    [p for p in PROPERTIES if p not in PRIVATE])
        ids = string_list_arg(args, "ids")
        if ids is not None and len(ids) > ctx.limits.max_objects_in_get:
            raise MethodError("requestTooLarge", f"at most {ctx.limits.max_objects_in_get} "
                              "ids")
        mine = await self.store.run(ctx.principal.id, _list)
        by_id = {s.id: s for s in mine}
        if ids is None:
            found = mine
            not_found: list[JsonValue] = []
        else:
            resolved = [resolve_creation_id(ctx, i) for i in ids]
            found = [by_id[i] for i in dict.fromkeys(resolved) if i in by_id]
            not_found = [i for i in dict.fromkeys(resolved) if i not in by_id]
        records = []
        for s in found:
            record = _to_json(s)
            records.append({p: record[p] for p in properties if p in record})
        return {"list": records, "notFound": not_found}  # type: ignore[dict-item]


async def _list(tr: Transaction, owner: str) -> list[PushSubscription]:
    return await list_subscriptions(tr, owner)


async def _create(tr: Transaction, owner: str, s: PushSubscription) -> None:
    await create_subscription(tr, s)


async def _get(tr: Transaction, owner: str, subscription_id: str) -> PushSubscription | None:
    return await get_subscription(tr, owner, subscription_id)


async def _update(tr: Transaction, owner: str, s: PushSubscription, newly_verified: bool,
                  quota: int) -> bool:
    if not await update_subscription(tr, s):
        return False
    if newly_verified:  # pushes cover what changes from now on
        await set_pushed(tr, owner, s.id, encode_token(await read_states_in(tr, owner, quota)))
    return True


async def _destroy(tr: Transaction, owner: str, subscription_id: str, op_id: str) -> bool:
    return await delete_subscription(tr, owner, subscription_id, op_id, time.time())


class PushSubscriptionSet(_Subscriptions):
    name = "PushSubscription/set"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("create", "update", "destroy"))
        check_set_size(ctx, args)
        create = object_arg(args, "create") or {}
        update = object_arg(args, "update") or {}
        destroy = string_list_arg(args, "destroy") or []
        owner = ctx.principal.id
        created: JsonObject = {}
        not_created: JsonObject = {}
        for creation_id, values in create.items():
            try:
                subscription = self._new(ctx, values)
                await self.store.run(owner, _create, subscription)
            except TooManySubscriptions as e:
                not_created[creation_id] = SetError("overQuota", str(e)).to_json()
                continue
            except SetError as e:
                not_created[creation_id] = e.to_json()
                continue
            ctx.record_created(creation_id, subscription.id)
            # RFC 8620 section 5.3: id, the expires chosen (section 7.2: it may differ
            # from the one asked for), and each property left to its default
            given = values if isinstance(values, dict) else {}  # _new checked it is
            created[creation_id] = {k: v for k, v in _to_json(subscription).items()
                                    if k not in given or k in ("id", "expires")}
            self._verify(subscription)

        async def update_one(subscription_id: str, patch: JsonObject) -> JsonObject | None:
            current = await self.store.run(owner, _get, subscription_id)
            if current is None:
                raise SetError("notFound", f"no push subscription {subscription_id!r}")
            changed = self._patched(current, patch)
            newly = changed.verified and not current.verified
            if not await self.store.run(owner, _update, changed, newly, ctx.principal.quota):
                raise SetError("notFound", f"no push subscription {subscription_id!r}")
            # section 7.2.2: the server may cut the expiry asked for; RFC 8620 section
            # 5.3: a property set otherwise than the client sent is in "updated"
            expires = _to_json(changed)["expires"]
            if "expires" in patch and patch["expires"] != expires:
                return {"expires": expires}
            return None
        update, doomed = split_updates(ctx, update, destroy)
        updated, not_updated = await apply_updates(ctx, update, update_one)
        destroyed: list[JsonValue] = []
        not_destroyed: JsonObject = {}
        for raw_id in destroy:
            subscription_id = resolve_creation_id(ctx, raw_id)
            if await self.store.run(owner, _destroy, subscription_id,
                                    "jmap/" + secrets.token_hex(12)):
                destroyed.append(subscription_id)
            else:
                not_destroyed[raw_id] = SetError(
                    "notFound", f"no push subscription {subscription_id!r}").to_json()
        # RFC 8620 section 5.3: an update of an object destroyed above is willDestroy
        settled = await apply_updates(ctx, doomed, update_one, destroyed=destroyed)
        updated.update(settled[0])
        not_updated.update(settled[1])
        return set_response({}, created, updated, destroyed, not_created, not_updated,
                            not_destroyed)

    def _new(self, ctx: CallContext, values: JsonValue) -> PushSubscription:
        if not isinstance(values, dict):
            raise SetError("invalidProperties", "a PushSubscription must be an object")
        unknown = [p for p in values if p not in PROPERTIES]
        if unknown:
            raise SetError("invalidProperties", "unknown properties",
                           properties=tuple(unknown))
        if "id" in values:
            raise _invalid("id", "id is set by the server")
        device, url = values.get("deviceClientId"), values.get("url")
        if not isinstance(device, str) or not device or len(device) > 255:
            raise _invalid("deviceClientId", "deviceClientId must be a non-empty string of "
                           "at most 255 characters")
        if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
            raise _invalid("url", f"url must be a string of at most {MAX_URL_LENGTH} "
                           "characters")
        why = check_url(url, self.settings)
        if why is not None:
            raise _invalid("url", why)
        keys = _keys(values.get("keys"))
        if values.get("verificationCode") is not None:
            raise _invalid("verificationCode", "verificationCode must be null on create")
        now = time.time()
        return PushSubscription("p" + secrets.token_hex(10), ctx.principal.id,
                                ctx.principal.name, device, url, secrets.token_urlsafe(24),
                                expires=_expires(values.get("expires"), now),
                                types=_types(values.get("types")),
                                keys=None if keys is None else keys.to_json())

    @staticmethod
    def _patched(current: PushSubscription, patch: JsonObject) -> PushSubscription:
        out = current
        for prop, value in patch.items():
            if prop == "verificationCode":
                if value != current.code:
                    raise _invalid("verificationCode", "not the code that was pushed")
                out = replace(out, verified=True)
            elif prop == "expires":
                out = replace(out, expires=_expires(value, time.time()))
            elif prop == "types":
                out = replace(out, types=_types(value))
            elif prop in PROPERTIES:
                # RFC 8620 section 5.3: only "immutable and different to the current
                # server value" is invalid
                same = {"id": current.id, "deviceClientId": current.device_client_id,
                        "url": current.url, "keys": None if current.keys is None else
                        {"p256dh": current.keys[0], "auth": current.keys[1]}}
                if value != same[prop]:
                    raise _invalid(prop, f"{prop} cannot be changed")
            else:
                raise _invalid(prop, f"unknown property {prop!r}")
        return out

    def _verify(self, s: PushSubscription) -> None:
        """Send the PushVerification (section 7.2.2) in the background."""
        body: JsonObject = {"@type": "PushVerification", "pushSubscriptionId": s.id,
                            "verificationCode": s.code}
        task = asyncio.create_task(self.pusher.post(s.url, body, "verification",
                                                    keys_of(s)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

