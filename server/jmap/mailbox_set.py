"""Mailbox/set (RFC 8621 section 2.5): create, update and destroy, each object in its own
transaction of the mail layer (so one failure leaves the others done), the layer's
refusals reported as the SetErrors the RFC names.

A role can be set or cleared by update as long as each role stays with one mailbox (RFC 8621
section 2); the inbox role stays with INBOX, which cannot be renamed, moved or
destroyed either (``forbidden``, as its myRights say)."""

from __future__ import annotations

import secrets

from fdb_layers.mail import (
    OPTIONAL_ROLES,
    ROLES,
    InvalidMailboxName,
    Mailbox,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotDeletable,
    MailboxNotEmpty,
    MailboxNotFound,
    RoleExists,
    Transaction,
    create_mailbox,
    delete_mailbox,
    find_role,
    get_mailbox,
    get_state,
    rename_mailbox,
    set_role,
    set_sort_order,
    set_subscribed,
)

from .args import (
    account_arg,
    apply_updates,
    bool_arg,
    check_known,
    check_set_size,
    check_state,
    object_arg,
    resolve_creation_id,
    set_response,
    split_updates,
    string_list_arg,
)
from .errors import SetError
from .json import JsonObject, JsonValue
from .mail import MAIL, MailStore
from .mailbox import PROPERTIES, mailbox_records, rights
from .methods import CallContext
from .patch import apply_patch

SETTABLE = ("name", "parentId", "role", "sortOrder", "isSubscribed")
SERVER_SET = ("id", "totalEmails", "unreadEmails", "totalThreads", "unreadThreads",
              "myRights")


def _invalid(prop: str, description: str) -> SetError:
    return SetError("invalidProperties", description, properties=(prop,))


def _check(ctx: CallContext, values: JsonObject
           ) -> tuple[str, str | None, str | None, bool, int]:
    """(name, parentId, role, isSubscribed, sortOrder) of a create or a patched
    mailbox."""
    unknown = sorted(set(values) - set(SETTABLE) - set(SERVER_SET))
    if unknown:
        raise SetError("invalidProperties", "unknown properties",
                       properties=tuple(unknown))
    name, parent, role = values.get("name"), values.get("parentId"), values.get("role")
    if not isinstance(name, str) or not name:
        raise _invalid("name", "name must be a non-empty string")
    if parent is not None and not isinstance(parent, str):
        raise _invalid("parentId", "parentId must be an id or null")
    # section 2: a role "MUST be one of the Mailbox attribute names listed in the IANA
    # 'IMAP Mailbox Name Attributes' registry ..., converted to lowercase"; of those,
    # the special uses this server keeps: not all and flagged (views of other
    # mailboxes, which a mailbox of ours cannot be) nor the attributes that say how a
    # mailbox stands (haschildren, noselect, subscribed, ...), which are no purpose
    if role is not None and role not in ROLES + OPTIONAL_ROLES:
        raise _invalid("role", "role must be one of "
                       f"{', '.join(ROLES + OPTIONAL_ROLES)} or null")
    # section 2: "The number MUST be an integer in the range 0 <= sortOrder < 2^31"
    sort_order = values.get("sortOrder", 0)
    if not isinstance(sort_order, int) or isinstance(sort_order, bool) \
            or not 0 <= sort_order < 2**31:
        raise _invalid("sortOrder", "sortOrder must be an integer in [0, 2^31)")
    # RFC 8621 section 2: isSubscribed "SHOULD default ... true for any new Mailboxes
    # created by the user themself" (an update always has the current value here)
    subscribed = values.get("isSubscribed", True)
    if not isinstance(subscribed, bool):
        raise _invalid("isSubscribed", "isSubscribed must be true or false")
    parent_id = resolve_creation_id(ctx, parent) if parent is not None else None
    return name, parent_id, role if isinstance(role, str) else None, subscribed, sort_order


def _check_server_set(values: JsonObject, role: str | None) -> None:
    """RFC 8620 section 5.3: "The client MUST omit any properties that may only be set
    by the server"; as for an update, those given with the value the server gives a new
    mailbox (no emails, the rights of its role) are let through, and the others (the id
    always: it is not chosen yet) are invalidProperties naming them."""
    new: JsonObject = {"totalEmails": 0, "unreadEmails": 0, "totalThreads": 0,
                       "unreadThreads": 0, "myRights": rights(role)}
    different = sorted(p for p in SERVER_SET
                       if p in values and (p not in new or values[p] != new[p]))
    if different:
        raise SetError("invalidProperties", "server-set properties",
                       properties=tuple(different))


def _parents_first(create: JsonObject) -> list[str]:
    """The creation ids of ``create`` in the order to create them: a parent given as
    ``#creationId`` of the same call before its children (RFC 8620 section 5.3: "the
    server MUST order the creates ... so that creates happen before their creation ids
    are referenced"), otherwise as given.  Creates whose parents form a cycle keep
    their order; they fail, as their parent does not exist yet."""
    order: dict[str, None] = {}
    for creation_id in create:
        chain: list[str] = []
        current: str | None = creation_id
        while current is not None and current not in order and current not in chain:
            chain.append(current)
            values = create[current]
            parent = values.get("parentId") if isinstance(values, dict) else None
            current = parent[1:] if isinstance(parent, str) and parent.startswith("#") \
                and parent[1:] in create else None
        order.update(dict.fromkeys(reversed(chain)))
    return list(order)


def _record(box: Mailbox) -> JsonObject:
    return {"name": box.name, "parentId": box.parent_id or None, "role": box.role or None,
            "sortOrder": box.sort_order, "isSubscribed": box.subscribed}


async def _create(tr: Transaction, account_id: str, mailbox_id: str, name: str,
                  parent_id: str | None, role: str | None, subscribed: bool,
                  sort_order: int) -> Mailbox:
    try:
        return await create_mailbox(tr, account_id, name, mailbox_id=mailbox_id,
                                    parent_id=parent_id, role=role, subscribed=subscribed,
                                    sort_order=sort_order)
    except MailboxNotFound:
        raise _invalid("parentId", "no such parent mailbox") from None
    except RoleExists:
        raise _invalid("role", "another mailbox has this role") from None
    except MailboxExists:
        raise _invalid("name", "a sibling mailbox has this name") from None
    except InvalidMailboxName as e:
        raise _invalid("name", str(e)) from None


async def _set_role(tr: Transaction, account_id: str, mailbox_id: str,
                    old: JsonValue, new: str | None) -> None:
    """RFC 8621 section 2: "there MUST NOT be two Mailboxes in the same account with the
    same role" (invalidProperties naming role), and "An account is not required to have
    Mailboxes with any particular roles", which allows clearing a role but does not
    oblige the server to: the inbox role stays with INBOX, where delivery and IMAP put
    new mail, so taking it away is this server's policy refusal, ``forbidden`` (RFC 8620
    section 5.3), unless the new role is taken anyway."""
    holder = None if new is None else await find_role(tr, account_id, new)
    if holder is not None and holder != mailbox_id:
        raise _invalid("role", "another mailbox has this role")
    if old == "inbox":
        raise SetError("forbidden", "the inbox role stays with the inbox (INBOX)")
    try:
        await set_role(tr, account_id, mailbox_id, new)
    except RoleExists:
        raise _invalid("role", "another mailbox has this role") from None
    except ValueError as e:  # the inbox role given, with no mailbox holding it
        raise _invalid("role", str(e)) from None


async def _without_unchanged(tr: Transaction, account_id: str, mailbox_id: str,
                             patch: JsonObject) -> JsonObject:
    """``patch`` without its server-set properties, which it may name only with their
    current values: RFC 8620 section 5.3 refuses an update's properties that are
    "immutable and different to the current server value" (invalidProperties), so a
    client may send back the whole object it got."""
    touched = {key.partition("/")[0] for key in patch} & set(SERVER_SET)
    if not touched:
        return patch
    _, records = await mailbox_records(tr, account_id, PROPERTIES, frozenset([mailbox_id]))
    full = records[mailbox_id]
    patched = apply_patch(full, patch)
    changed = sorted(p for p in touched if patched.get(p) != full.get(p))
    if changed:
        raise SetError("invalidProperties", "server-set properties cannot be changed",
                       properties=tuple(changed))
    return {k: v for k, v in patch.items() if k.partition("/")[0] not in touched}


async def _update(tr: Transaction, account_id: str, ctx: CallContext, mailbox_id: str,
                  patch: JsonObject) -> None:
    try:
        box = await get_mailbox(tr, account_id, mailbox_id)
    except MailboxNotFound:
        raise SetError("notFound") from None
    current = _record(box)
    patch = await _without_unchanged(tr, account_id, mailbox_id, patch)
    patched = apply_patch(current, patch)
    name, parent_id, role, subscribed, sort_order = _check(ctx, patched)
    if role != current["role"]:
        await _set_role(tr, account_id, mailbox_id, current["role"], role)
    if (name, parent_id) != (current["name"], current["parentId"]):
        if box.role == "inbox":  # myRights.mayRename is false (see mailbox.INBOX_RIGHTS)
            raise SetError("forbidden", "the inbox cannot be renamed or moved")
        try:
            await rename_mailbox(tr, account_id, mailbox_id, name=name, parent_id=parent_id)
        except MailboxNotFound:
            raise _invalid("parentId", "no such parent mailbox") from None
        except MailboxExists:
            raise _invalid("name", "a sibling mailbox has this name") from None
        except InvalidMailboxName as e:  # a bad name, INBOX moved, or a parent cycle
            moved = parent_id != current["parentId"] and name == current["name"]
            raise _invalid("parentId" if moved else "name", str(e)) from None
    if subscribed != current["isSubscribed"]:
        await set_subscribed(tr, account_id, mailbox_id, subscribed)
    if sort_order != current["sortOrder"]:
        await set_sort_order(tr, account_id, mailbox_id, sort_order)


async def _destroy(tr: Transaction, account_id: str, mailbox_id: str,
                   remove_emails: bool) -> None:
    try:
        await get_mailbox(tr, account_id, mailbox_id)
        await delete_mailbox(tr, account_id, mailbox_id, allow_nonempty=remove_emails)
    except MailboxNotFound:
        raise SetError("notFound") from None
    except MailboxHasChildren:
        raise SetError("mailboxHasChild") from None
    except MailboxNotEmpty:
        raise SetError("mailboxHasEmail", "the mailbox has emails; destroy with "
                       "onDestroyRemoveEmails") from None
    except MailboxNotDeletable:
        raise SetError("forbidden", "the inbox cannot be destroyed") from None


async def _state(tr: Transaction, account_id: str) -> str:
    return await get_state(tr, account_id)


class MailboxSet:
    name = "Mailbox/set"
    capability = MAIL

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ifInState", "create", "update", "destroy",
                           "onDestroyRemoveEmails"))
        account = account_arg(ctx, args, write=True)
        check_set_size(ctx, args)
        create = object_arg(args, "create") or {}
        update = object_arg(args, "update") or {}
        destroy = string_list_arg(args, "destroy") or []
        remove_emails = bool_arg(args, "onDestroyRemoveEmails")
        old_state = await self.store.run(account.id, _state)
        check_state(args, old_state)
        out: JsonObject = {"accountId": account.id, "oldState": old_state}
        created: JsonObject = {}
        not_created: JsonObject = {}
        for creation_id in _parents_first(create):
            values = create[creation_id]
            try:
                if not isinstance(values, dict):
                    raise SetError("invalidProperties", "a mailbox must be an object")
                name, parent_id, role, subscribed, sort_order = _check(ctx, values)
                _check_server_set(values, role)
                # chosen before the transaction: a retry after an unknown commit result
                # finds the mailbox it made (create_mailbox is idempotent per id)
                new_id = "j" + secrets.token_hex(8)
                box = await self.store.run(account.id, _create, new_id, name, parent_id,
                                           role, subscribed, sort_order)
            except SetError as e:
                not_created[creation_id] = e.to_json()
                continue
            ctx.record_created(creation_id, box.id)
            # RFC 8620 section 5.3: the id, and every property the server set or
            # defaulted (parentId and role null, sortOrder 0 when not given)
            created[creation_id] = {
                "id": box.id, "parentId": box.parent_id or None, "role": box.role or None,
                "sortOrder": box.sort_order,
                "isSubscribed": box.subscribed, "totalEmails": 0, "unreadEmails": 0,
                "totalThreads": 0, "unreadThreads": 0, "myRights": rights(box.role)}

        async def update_one(mailbox_id: str, patch: JsonObject) -> None:
            await self.store.run(account.id, _update, ctx, mailbox_id, patch)
        update, doomed = split_updates(ctx, update, destroy)
        updated, not_updated = await apply_updates(ctx, update, update_one)
        destroyed: list[JsonValue] = []
        not_destroyed: JsonObject = {}
        for raw_id in destroy:
            mailbox_id = resolve_creation_id(ctx, raw_id)
            try:
                await self.store.run(account.id, _destroy, mailbox_id, remove_emails)
            except SetError as e:
                not_destroyed[raw_id] = e.to_json()
                continue
            destroyed.append(mailbox_id)
        # RFC 8620 section 5.3: an update of an object destroyed above is willDestroy
        settled = await apply_updates(ctx, doomed, update_one, destroyed=destroyed)
        updated.update(settled[0])
        not_updated.update(settled[1])
        out["newState"] = await self.store.run(account.id, _state)
        return set_response(out, created, updated, destroyed, not_created, not_updated,
                            not_destroyed)
