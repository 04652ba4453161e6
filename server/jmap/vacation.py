"""VacationResponse (RFC 8621 section 8): /get and /set of the account's one vacation
response (id ``singleton``), kept by ``fdb_layers.vacation``.  The reply itself is sent
on delivery by ``server.outbound.vacation``."""

from __future__ import annotations

from fdb_layers.mail import Transaction
from fdb_layers.vacation import Vacation, get_vacation, get_vacation_state, set_vacation

from .args import account_arg, check_known, check_state, ids_arg, object_arg, \
    properties_arg, resolve_creation_id, set_response, string_list_arg
from .errors import SetError
from .json import JsonObject, JsonValue
from .mail import MailStore, parse_exact_utc_date, utc_date
from .methods import CallContext, Capability
from .patch import apply_patch

VACATION = "urn:ietf:params:jmap:vacationresponse"
SINGLETON = "singleton"
PROPERTIES = ("id", "isEnabled", "fromDate", "toDate", "subject", "textBody", "htmlBody")


def vacation_capability() -> Capability:
    """``urn:ietf:params:jmap:vacationresponse`` (RFC 8621 section 1.3.3): empty objects."""
    return Capability(VACATION, {}, {})


def _to_json(v: Vacation) -> JsonObject:
    return {"id": SINGLETON, "isEnabled": v.is_enabled,
            "fromDate": None if v.from_date is None else utc_date(v.from_date),
            "toDate": None if v.to_date is None else utc_date(v.to_date),
            "subject": v.subject, "textBody": v.text_body, "htmlBody": v.html_body}


def _from_json(values: JsonObject) -> Vacation:
    bad = sorted(set(values) - set(PROPERTIES))
    if bad or values.get("id") != SINGLETON:
        raise SetError("invalidProperties", "unknown properties or id changed",
                       properties=tuple(bad) or ("id",))
    if not isinstance(values.get("isEnabled"), bool):
        raise SetError("invalidProperties", "isEnabled is a boolean",
                       properties=("isEnabled",))
    dates: dict[str, float | None] = {}
    for name in ("fromDate", "toDate"):
        value = values.get(name)
        try:
            dates[name] = None if value is None else parse_exact_utc_date(value, name)
        except Exception:
            raise SetError("invalidProperties", f"{name} is a UTCDate or null",
                           properties=(name,)) from None
    texts: dict[str, str | None] = {}
    for name in ("subject", "textBody", "htmlBody"):
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            raise SetError("invalidProperties", f"{name} is a string or null",
                           properties=(name,))
        texts[name] = value
    return Vacation(bool(values["isEnabled"]), dates["fromDate"], dates["toDate"],
                    texts["subject"], texts["textBody"], texts["htmlBody"])


async def _read(tr: Transaction, account_id: str) -> tuple[Vacation, int]:
    return await get_vacation(tr, account_id), await get_vacation_state(tr, account_id)


async def _update(tr: Transaction, account_id: str, patch: JsonObject) -> None:
    current = _to_json(await get_vacation(tr, account_id))
    try:
        await set_vacation(tr, account_id, _from_json(apply_patch(current, patch)))
    except ValueError as e:
        raise SetError("tooLarge", str(e)) from None


class _Vacation:
    capability = VACATION

    def __init__(self, store: MailStore) -> None:
        self.store = store


class VacationResponseGet(_Vacation):
    name = "VacationResponse/get"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ids", "properties"))
        account = account_arg(ctx, args)
        ids = ids_arg(ctx, args)
        properties = properties_arg(args, PROPERTIES, PROPERTIES)
        vacation, state = await self.store.run(account.id, _read)
        wanted = [SINGLETON] if ids is None else ids
        record = _to_json(vacation)
        return {"accountId": account.id, "state": str(state),
                "list": [{p: record[p] for p in properties}
                         for i in wanted if i == SINGLETON],
                "notFound": [i for i in wanted if i != SINGLETON]}


class VacationResponseSet(_Vacation):
    name = "VacationResponse/set"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ifInState", "create", "update", "destroy"))
        account = account_arg(ctx, args, write=True)
        create = object_arg(args, "create") or {}
        update = object_arg(args, "update") or {}
        destroy = string_list_arg(args, "destroy") or []
        _, state = await self.store.run(account.id, _read)
        old_state = str(state)
        check_state(args, old_state)
        # section 8.2: the singleton can be neither created nor destroyed
        not_created: JsonObject = {k: SetError("singleton").to_json() for k in create}
        not_destroyed: JsonObject = {k: SetError("singleton").to_json() for k in destroy}
        updated: JsonObject = {}
        not_updated: JsonObject = {}
        # an update of the singleton named in destroy too is applied: its destroy is
        # refused, so there is nothing to be willDestroy about (RFC 8620 section 5.3)
        for raw_id, patch in update.items():
            if resolve_creation_id(ctx, raw_id) != SINGLETON:
                not_updated[raw_id] = SetError("notFound").to_json()
                continue
            if not isinstance(patch, dict):
                not_updated[raw_id] = SetError("invalidPatch").to_json()
                continue
            try:
                await self.store.run(account.id, _update, patch)
            except SetError as e:
                not_updated[raw_id] = e.to_json()
                continue
            updated[raw_id] = None
        _, state = await self.store.run(account.id, _read)
        out: JsonObject = {"accountId": account.id, "oldState": old_state,
                           "newState": str(state)}
        destroyed: list[JsonValue] = []
        return set_response(out, {}, updated, destroyed, not_created, not_updated,
                            not_destroyed)
