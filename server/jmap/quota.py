"""Quotas (RFC 9425): Quota/get, /changes, /query, /queryChanges.

The account's one limit is the directory's (``Principal.quota``, bytes; 0 unlimited);
its usage is the mail layer's (``get_usage``, kept by atomic adds).  An account with a
limit has one Quota, ``octets`` over all its emails; an unlimited account has none (a
Quota always has a hardLimit, RFC 9425 section 4).

The state is the quota's values themselves (``o<used>.<limit>``), so /changes is exact
from any state we ever gave: the quota changed or it did not."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fdb_layers.mail import Transaction, get_usage

from .args import (
    account_arg,
    check_known,
    ids_arg,
    max_changes_arg,
    properties_arg,
    string_arg,
)
from .errors import MethodError
from .json import JsonObject
from .mail import MailStore
from .methods import CallContext, Capability
from .query import Comparator, apply_window, evaluate, filter_arg, sort_arg, window_arg

QUOTA = "urn:ietf:params:jmap:quota"
OCTETS_ID = "octets"
PROPERTIES = ("id", "resourceType", "used", "hardLimit", "scope", "name", "types",
              "warnLimit", "softLimit", "description")
SORTS = ("name", "used")


def quota_capability() -> Capability:
    """``urn:ietf:params:jmap:quota`` (RFC 9425 section 3): empty objects."""
    return Capability(QUOTA, {}, {})


def quota_state(used: int, limit: int) -> str:
    """The Quota state of an account: its values themselves (see above)."""
    return f"o{used}.{limit}"


async def _used(tr: Transaction, account_id: str) -> int:
    return (await get_usage(tr, account_id)).bytes


class _Quotas:
    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def quotas(self, ctx: CallContext, account_id: str) -> tuple[list[JsonObject], str]:
        limit = ctx.principal.quota
        used = await self.store.run(account_id, _used)
        state = quota_state(used, limit)
        if limit <= 0:
            return [], state
        return [{"id": OCTETS_ID, "resourceType": "octets", "used": used, "hardLimit": limit,
                 "scope": "account", "name": f"{ctx.principal.name} mail storage",
                 "types": ["Email"], "warnLimit": None, "softLimit": None,
                 "description": None}], state


class QuotaGet(_Quotas):
    name = "Quota/get"
    capability = QUOTA

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ids", "properties"))
        account = account_arg(ctx, args)
        ids = ids_arg(ctx, args)
        properties = properties_arg(args, PROPERTIES, PROPERTIES)
        quotas, state = await self.quotas(ctx, account.id)
        by_id = {str(q["id"]): q for q in quotas}
        wanted = list(by_id) if ids is None else ids
        return {"accountId": account.id, "state": state,
                "list": [{p: by_id[i][p] for p in properties} for i in wanted if i in by_id],
                "notFound": [i for i in wanted if i not in by_id]}


class QuotaChanges(_Quotas):
    name = "Quota/changes"
    capability = QUOTA

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "sinceState", "maxChanges"))
        account = account_arg(ctx, args)
        since = string_arg(args, "sinceState", required=True)
        assert since is not None
        max_changes_arg(args)
        quotas, state = await self.quotas(ctx, account.id)
        old = _parse_state(since)
        limit = ctx.principal.quota
        # RFC 9425 section 4.2: updatedProperties is ["used"] when only used changed,
        # null when something else may have
        out: JsonObject = {"accountId": account.id, "oldState": since, "newState": state,
                           "hasMoreChanges": False, "created": [], "updated": [],
                           "destroyed": [], "updatedProperties": None}
        if since == state:
            return out
        had, has = old[1] > 0, limit > 0
        key = "updated" if had and has else "created" if has else "destroyed" \
            if had else None
        if key is not None:
            out[key] = [OCTETS_ID]
        if key == "updated" and old[1] == limit:
            out["updatedProperties"] = ["used"]
        return out


def _parse_state(state: str) -> tuple[int, int]:
    used, dot, limit = state[1:].partition(".")
    if not state.startswith("o") or not dot or not used.isdigit() or \
            not limit.lstrip("-").isdigit():
        raise MethodError("cannotCalculateChanges", f"unknown state {state!r}")
    return int(used), int(limit)


def _check_condition(condition: JsonObject) -> None:
    for key, value in condition.items():
        if key in ("name", "scope", "resourceType") and isinstance(value, str):
            continue
        if key == "type" and isinstance(value, str):
            continue
        raise MethodError("unsupportedFilter", f"unsupported condition {key!r}")


def _matches(quota: JsonObject) -> Callable[[JsonObject], bool]:
    def test(condition: JsonObject) -> bool:
        for key, value in condition.items():
            if key == "name" and str(value).lower() not in str(quota["name"]).lower():
                return False
            if key in ("scope", "resourceType") and quota[key] != value:
                return False
            types = quota["types"]
            if key == "type" and (not isinstance(types, list) or value not in types):
                return False
        return True
    return test


class QuotaQuery(_Quotas):
    name = "Quota/query"
    capability = QUOTA

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "filter", "sort", "position", "anchor",
                           "anchorOffset", "limit", "calculateTotal"))
        account = account_arg(ctx, args)
        tree = filter_arg(args, _check_condition)
        sort: Sequence[Comparator] = sort_arg(args, SORTS)
        window = window_arg(args)
        quotas, state = await self.quotas(ctx, account.id)
        found = [q for q in quotas if evaluate(tree, _matches(q))]
        for comparator in reversed(sort):
            prop = comparator.property
            found.sort(key=lambda q: _sort_key(q, prop), reverse=not comparator.is_ascending)
        position, ids, capped = apply_window([str(q["id"]) for q in found], window,
                                             ctx.limits.max_objects_in_get)
        out: JsonObject = {"accountId": account.id, "queryState": state,
                           "canCalculateChanges": False, "position": position,
                           "ids": list(ids)}
        if window.calculate_total:
            out["total"] = len(found)
        if capped is not None:
            out["limit"] = capped
        return out


def _sort_key(quota: JsonObject, prop: str) -> tuple[int, str]:
    value = quota[prop]
    return (value, "") if isinstance(value, int) else (0, str(value).lower())


class QuotaQueryChanges:
    """Quota/queryChanges: ``cannotCalculateChanges`` (the client queries again), as
    Quota/query says ``canCalculateChanges: false``."""

    name = "Quota/queryChanges"
    capability = QUOTA

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "filter", "sort", "sinceQueryState", "maxChanges",
                           "upToId", "calculateTotal"))
        account_arg(ctx, args)
        raise MethodError("cannotCalculateChanges", "run Quota/query again")
