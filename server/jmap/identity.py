"""Identities (RFC 8621 section 6): Identity/get, /changes, /set, under the submission
capability.

Every address the directory gives the account (``Principal.emails``) is an identity
(its id derived from the address, ``mayDelete: false``); Identity/set may change its
name, reply-to, bcc and signatures (stored by ``fdb_layers.identities``) and create
more identities, for addresses the account owns only (``forbiddenFrom`` otherwise,
section 6.3).  An identity whose address the directory no longer gives the account is
not shown.  The state is the identity layer's change counter."""

from __future__ import annotations

import hashlib
import secrets

from fdb_layers.identities import (
    Identity,
    TooManyIdentities,
    destroy_identity,
    get_identity,
    get_identity_changes,
    get_identity_state,
    list_identities,
    set_identity,
)
from fdb_layers.mail import Transaction

from .args import (
    account_arg,
    apply_updates,
    check_known,
    check_set_size,
    check_state,
    ids_arg,
    object_arg,
    properties_arg,
    resolve_creation_id,
    set_response,
    split_updates,
    string_list_arg,
)
from .errors import SetError
from .json import JsonObject, JsonValue
from .mail import MailStore, counted_changes_call
from .methods import CallContext, Capability
from .patch import apply_patch

SUBMISSION = "urn:ietf:params:jmap:submission"
PROPERTIES = ("id", "name", "email", "replyTo", "bcc", "textSignature", "htmlSignature",
              "mayDelete")
SETTABLE = ("name", "email", "replyTo", "bcc", "textSignature", "htmlSignature")


def submission_capability(extensions: JsonObject | None = None) -> Capability:
    """``urn:ietf:params:jmap:submission`` (RFC 8621 section 1.3.2): no delayed send;
    ``extensions`` the EHLO keywords submission supports (``server.jmap.submission``)."""
    return Capability(SUBMISSION, {}, {"maxDelayedSend": 0,
                                       "submissionExtensions": extensions or {}})


def default_id(address: str) -> str:
    return "d" + hashlib.sha256(address.lower().encode()).hexdigest()[:15]


def _owned(ctx: CallContext) -> dict[str, str]:
    """The account's addresses, lowercase -> as the directory spells them."""
    return {a.lower(): a for a in ctx.principal.emails}


def _addresses_json(value: tuple[tuple[str | None, str], ...] | None) -> JsonValue:
    return None if value is None else [{"name": n, "email": e} for n, e in value]


def _to_json(identity: Identity, *, may_delete: bool) -> JsonObject:
    return {"id": identity.id, "name": identity.name, "email": identity.email,
            "replyTo": _addresses_json(identity.reply_to),
            "bcc": _addresses_json(identity.bcc),
            "textSignature": identity.text_signature,
            "htmlSignature": identity.html_signature, "mayDelete": may_delete}


async def _all(tr: Transaction, account_id: str, owned: dict[str, str],
               name: str) -> tuple[dict[str, JsonObject], str]:
    stored = {i.id: i for i in await list_identities(tr, account_id)}
    out: dict[str, JsonObject] = {}
    for address in owned.values():
        identity = stored.pop(default_id(address), None) or Identity(default_id(address),
                                                                      address, name)
        out[identity.id] = _to_json(identity, may_delete=False)
    for identity in stored.values():
        if identity.email.lower() in owned:
            out[identity.id] = _to_json(identity, may_delete=True)
    return out, str(await get_identity_state(tr, account_id))


class _Identities:
    capability = SUBMISSION

    def __init__(self, store: MailStore) -> None:
        self.store = store


class IdentityGet(_Identities):
    name = "Identity/get"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ids", "properties"))
        account = account_arg(ctx, args)
        ids = ids_arg(ctx, args)
        properties = properties_arg(args, PROPERTIES, PROPERTIES)
        found, state = await self.store.run(account.id, _all, _owned(ctx), _display(ctx))
        wanted = list(found) if ids is None else ids
        return {"accountId": account.id, "state": state,
                "list": [{p: found[i][p] for p in properties} for i in wanted if i in found],
                "notFound": [i for i in wanted if i not in found]}


def _display(ctx: CallContext) -> str:
    return ctx.principal.description or ""


async def identity_email(store: MailStore, ctx: CallContext, account_id: str,
                         identity_id: str) -> str | None:
    """The address of the caller's identity ``identity_id``; None if it has none."""
    found, _ = await store.run(account_id, _all, _owned(ctx), _display(ctx))
    identity = found.get(identity_id)
    return None if identity is None else str(identity["email"])


class IdentityChanges(_Identities):
    name = "Identity/changes"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        return await counted_changes_call(self.store, ctx, args, get_identity_changes)


def _invalid(prop: str, description: str) -> SetError:
    return SetError("invalidProperties", description, properties=(prop,))


def _addresses(value: JsonValue, prop: str) -> tuple[tuple[str | None, str], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _invalid(prop, f"{prop} must be a list of EmailAddress or null")
    out: list[tuple[str | None, str]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("email"), str) or \
                "@" not in str(item["email"]) or \
                not (item.get("name") is None or isinstance(item.get("name"), str)):
            raise _invalid(prop, f"{prop}: each address is {{name, email}}")
        name = item.get("name")
        out.append((str(name) if isinstance(name, str) else None, str(item["email"])))
    return tuple(out)


def _identity(identity_id: str, values: JsonObject, owned: dict[str, str]) -> Identity:
    unknown = sorted(set(values) - set(PROPERTIES))
    if unknown:
        raise SetError("invalidProperties", "unknown properties", properties=tuple(unknown))
    email = values.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise _invalid("email", "email must be an address")
    if email.lower() not in owned:
        raise SetError("forbiddenFrom", f"this account may not send from {email}")
    strings = {}
    for prop in ("name", "textSignature", "htmlSignature"):
        value = values.get(prop, "")
        if not isinstance(value, str):
            raise _invalid(prop, f"{prop} must be a string")
        strings[prop] = value
    return Identity(identity_id, owned[email.lower()], strings["name"],
                    _addresses(values.get("replyTo"), "replyTo"),
                    _addresses(values.get("bcc"), "bcc"),
                    strings["textSignature"], strings["htmlSignature"])


async def _create(tr: Transaction, account_id: str, identity: Identity) -> None:
    await set_identity(tr, account_id, identity)


async def _update(tr: Transaction, account_id: str, identity_id: str, patch: JsonObject,
                  owned: dict[str, str], name: str) -> None:
    found, _ = await _all(tr, account_id, owned, name)
    current = found.get(identity_id)
    if current is None:
        raise SetError("notFound")
    patched = apply_patch(current, patch)
    for prop in ("id", "email", "mayDelete"):
        if patched.get(prop) != current[prop]:
            raise _invalid(prop, f"{prop} cannot be changed")
    await set_identity(tr, account_id, _identity(identity_id, patched, owned),
                       existed=not current["mayDelete"])


async def _destroy(tr: Transaction, account_id: str, identity_id: str,
                   owned: dict[str, str], op_id: str) -> None:
    if identity_id in {default_id(a) for a in owned.values()}:
        raise SetError("forbidden", "the identity of a directory address cannot be "
                       "destroyed (mayDelete: false)")
    existing = await get_identity(tr, account_id, identity_id)
    if existing is None or existing.email.lower() not in owned or \
            not await destroy_identity(tr, account_id, identity_id, op_id=op_id):
        raise SetError("notFound")


class IdentitySet(_Identities):
    name = "Identity/set"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ifInState", "create", "update", "destroy"))
        account = account_arg(ctx, args, write=True)
        check_set_size(ctx, args)
        create = object_arg(args, "create") or {}
        update = object_arg(args, "update") or {}
        destroy = string_list_arg(args, "destroy") or []
        owned = _owned(ctx)
        old_state = str(await self.store.run(account.id, get_identity_state))
        check_state(args, old_state)
        created: JsonObject = {}
        not_created: JsonObject = {}
        for creation_id, values in create.items():
            try:
                if not isinstance(values, dict):
                    raise SetError("invalidProperties", "an Identity must be an object")
                given = [p for p in ("id", "mayDelete") if p in values]
                if given:
                    raise SetError("invalidProperties", "server-set properties",
                                   properties=tuple(given))
                identity = _identity("i" + secrets.token_hex(8), values, owned)
                await self.store.run(account.id, _create, identity)
            except TooManyIdentities as e:
                not_created[creation_id] = SetError("overQuota", str(e)).to_json()
                continue
            except SetError as e:
                not_created[creation_id] = e.to_json()
                continue
            ctx.record_created(creation_id, identity.id)
            # RFC 8620 section 5.3: the server-set properties and every one the client
            # left to its default
            created[creation_id] = {k: v for k, v in _to_json(identity, may_delete=True)
                                    .items() if k not in values or k == "id"}

        async def update_one(identity_id: str, patch: JsonObject) -> None:
            await self.store.run(account.id, _update, identity_id, patch, owned, _display(ctx))
        update, doomed = split_updates(ctx, update, destroy)
        updated, not_updated = await apply_updates(ctx, update, update_one)
        destroyed: list[JsonValue] = []
        not_destroyed: JsonObject = {}
        for raw_id in destroy:
            identity_id = resolve_creation_id(ctx, raw_id)
            try:
                await self.store.run(account.id, _destroy, identity_id, owned,
                                     "jmap/" + secrets.token_hex(12))
            except SetError as e:
                not_destroyed[raw_id] = e.to_json()
                continue
            destroyed.append(identity_id)
        # RFC 8620 section 5.3: an update of an object destroyed above is willDestroy
        settled = await apply_updates(ctx, doomed, update_one, destroyed=destroyed)
        updated.update(settled[0])
        not_updated.update(settled[1])
        out: JsonObject = {"accountId": account.id, "oldState": old_state,
                           "newState": str(await self.store.run(account.id, get_identity_state))}
        return set_response(out, created, updated, destroyed, not_created, not_updated,
                            not_destroyed)
