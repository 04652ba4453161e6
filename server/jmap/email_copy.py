"""Email/copy (RFC 8621 section 4.7, RFC 8620 section 5.4): emails of one account copied
into another, through the delivery pipeline, with onSuccessDestroyOriginal's implicit
Email/set.

A copy needs two accounts the caller may use; without shared accounts (none yet) the
caller has only its own, so a call is either ``fromAccountNotFound`` (another's account)
or ``invalidArguments`` (the same account twice: section 5.4 says they MUST differ;
within an account, Email/set's mailboxIds does what a copy would).  The copying itself
is written for the day sharing exists."""

from __future__ import annotations

import secrets

from fdb_layers.mail import Transaction, destroy_email, get_visible_email
from server.blobs.base import BlobRef
from server.delivery import Delivery

from .args import (
    account_arg,
    bool_arg,
    check_known,
    check_state,
    from_account_arg,
    object_arg,
    resolve_creation_id,
)
from .email_import import current_state, deliver, keywords_value, mailbox_ids_value
from .errors import MethodError, SetError, invalid_arguments
from .json import JsonObject, JsonValue
from .mail import MAIL, MailStore, parse_utc_date
from .methods import CallContext, Replies

COPY_PROPERTIES = ("id", "mailboxIds", "keywords", "receivedAt")


async def _destroy(tr: Transaction, account_id: str, email_ids: list[str]) -> list[str]:
    done = []
    for email_id in email_ids:
        if await destroy_email(tr, account_id, email_id,
                               op_id="jmap-copy/" + secrets.token_hex(12)):
            done.append(email_id)
    return done


class EmailCopy:
    name = "Email/copy"
    capability = MAIL

    def __init__(self, store: MailStore, delivery: Delivery) -> None:
        self.store, self.delivery = store, delivery

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject | Replies:
        check_known(args, ("fromAccountId", "ifFromInState", "accountId", "ifInState",
                           "create", "onSuccessDestroyOriginal", "destroyFromIfInState"))
        source = from_account_arg(ctx, args)
        target = account_arg(ctx, args, write=True)
        if source.id == target.id:
            raise invalid_arguments("fromAccountId and accountId must differ "
                                    "(RFC 8620 5.4); use Email/set mailboxIds instead")
        create = object_arg(args, "create") or {}
        if len(create) > ctx.limits.max_objects_in_set:
            raise MethodError("requestTooLarge", "too many emails in one call")
        destroy_original = bool_arg(args, "onSuccessDestroyOriginal")
        from_state = await self.store.run(source.id, current_state)
        check_state(args, from_state, name="ifFromInState")
        old_state = await self.store.run(target.id, current_state)
        check_state(args, old_state)
        created: JsonObject = {}
        not_created: JsonObject = {}
        originals: list[str] = []
        for creation_id, spec in create.items():
            try:
                record, original = await self._one(ctx, source.id, target.id, spec)
            except SetError as e:
                not_created[creation_id] = e.to_json()
                continue
            created[creation_id] = record
            originals.append(original)
            ctx.record_created(creation_id, str(record["id"]))
        out: JsonObject = {"fromAccountId": source.id, "accountId": target.id,
                           "oldState": old_state,
                           "newState": await self.store.run(target.id, current_state),
                           "created": created or None, "notCreated": not_created or None}
        if not (destroy_original and originals):
            return out
        check_state(args, from_state, name="destroyFromIfInState")
        destroyed: list[JsonValue] = list(await self.store.run(source.id, _destroy,
                                                                originals))
        implicit: JsonObject = {
            "accountId": source.id, "oldState": from_state,
            "newState": await self.store.run(source.id, current_state),
            "created": None, "updated": None, "destroyed": destroyed or None,
            "notCreated": None, "notUpdated": None,
            "notDestroyed": {i: SetError("notFound").to_json()
                             for i in originals if i not in destroyed} or None}
        return (("Email/copy", out), ("Email/set", implicit))

    async def _one(self, ctx: CallContext, source_id: str, target_id: str,
                   spec: JsonValue) -> tuple[JsonObject, str]:
        if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
            raise SetError("invalidProperties", "a copy names the email's id",
                           properties=("id",))
        unknown = sorted(set(spec) - set(COPY_PROPERTIES))
        if unknown:
            raise SetError("invalidProperties", "only id, mailboxIds, keywords and "
                           "receivedAt may be given", properties=tuple(unknown))
        email_id = resolve_creation_id(ctx, str(spec["id"]))
        original = await self.store.run(source_id, get_visible_email, email_id)
        if original is None:
            raise SetError("notFound", f"no email {email_id}")
        mailbox_ids = mailbox_ids_value(ctx, spec.get("mailboxIds"))
        keywords = keywords_value(spec["keywords"]) if "keywords" in spec \
            else original.keywords
        received_at = original.received_at
        if spec.get("receivedAt") is not None:
            try:
                received_at = parse_utc_date(spec["receivedAt"], "receivedAt")
            except MethodError:
                raise SetError("invalidProperties", "receivedAt must be a UTCDate",
                               properties=("receivedAt",)) from None
        stored = await deliver(self.delivery, ctx, target_id,
                               BlobRef(original.blob_id, original.size), mailbox_ids,
                               keywords, received_at)
        return ({"id": stored.email_id, "blobId": stored.blob_id,
                 "threadId": stored.thread_id, "size": original.size}, email_id)

