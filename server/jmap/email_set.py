"""Email/set (RFC 8621 section 4.6).

* create: the JSON structure becomes an RFC 5322 message (:mod:`.email_compose`), with
  attachments read from blobs the account may use, stored through the delivery
  pipeline into the given mailboxes (``server.delivery``: durable before ``created``);
* update: ``keywords`` and ``mailboxIds`` only (every other property is immutable), as
  whole values or by patch (``keywords/$seen: true``, ``mailboxIds/<id>: null``), each
  email in one transaction of the mail layer, so IMAP sees the change (flags, modseq);
* destroy: out of every mailbox, then gone.

``ifInState`` is checked against the account's state before anything is done
(``stateMismatch``)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from fdb_layers.mail import (
    Email,
    EmailNotFound,
    MailboxNotFound,
    MailError,
    Transaction,
    destroy_email,
    get_summary,
    get_visible_email,
    set_email_keywords,
    set_email_mailboxes,
)
from server.blobs import BlobStore
from server.blobs.base import BlobError, BlobNotFound
from server.delivery import Delivery
from server.mime import parse_message

from .args import (
    account_arg,
    apply_updates,
    check_known,
    check_set_size,
    check_state,
    object_arg,
    resolve_creation_id,
    set_response,
    split_updates,
    string_list_arg,
)
from .blob import readable_blobs
from .email_compose import ENVELOPE, blob_ids_of, compose
from .email_get import SUMMARY_PROPERTIES, load_summary, record_properties, \
    summary_properties
from .email_import import current_state, deliver, keywords_value, mailbox_ids_value
from .email_unchanged import without_unchanged_body
from .errors import MethodError, SetError
from .json import JsonObject, JsonValue
from .mail import MAIL, MailStore, parse_utc_date, utc_date
from .methods import CallContext
from .patch import apply_patch

MUTABLE = ("keywords", "mailboxIds")


class EmailSet:
    name = "Email/set"
    capability = MAIL

    def __init__(self, store: MailStore, delivery: Delivery, blobs: BlobStore, *,
                 max_attachments: int, clock: Callable[[], float] = time.time) -> None:
        self.store, self.delivery, self.blobs = store, delivery, blobs
        self.max_attachments, self.clock = max_attachments, clock

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ifInState", "create", "update", "destroy"))
        account = account_arg(ctx, args, write=True)
        check_set_size(ctx, args)
        create = object_arg(args, "create") or {}
        update = object_arg(args, "update") or {}
        destroy = string_list_arg(args, "destroy") or []
        old_state = await self.store.run(account.id, current_state)
        check_state(args, old_state)

        created: JsonObject = {}
        not_created: JsonObject = {}
        for creation_id, values in create.items():
            try:
                if not isinstance(values, dict):
                    raise SetError("invalidProperties", "an Email must be an object")
                created[creation_id] = record = await self._create(ctx, account.id, values)
            except SetError as e:
                not_created[creation_id] = e.to_json()
                continue
            ctx.record_created(creation_id, str(record["id"]))

        async def update_one(email_id: str, patch: JsonObject) -> None:
            patch = await without_unchanged_body(self.store, self.blobs, account.id,
                                                 email_id, patch)
            await self.store.run(account.id, _update, ctx, email_id, patch)
        update, doomed = split_updates(ctx, update, destroy)
        updated, not_updated = await apply_updates(ctx, update, update_one)
        destroyed: list[JsonValue] = []
        not_destroyed: JsonObject = {}
        for raw_id in destroy:
            email_id = resolve_creation_id(ctx, raw_id)
            op_id = "jmap-destroy/" + secrets.token_hex(12)
            if await self.store.run(account.id, destroy_email, email_id, op_id=op_id):
                destroyed.append(email_id)
            else:
                not_destroyed[raw_id] = SetError("notFound").to_json()
        # RFC 8620 section 5.3: an update of an object destroyed above is willDestroy
        settled = await apply_updates(ctx, doomed, update_one, destroyed=destroyed)
        updated.update(settled[0])
        not_updated.update(settled[1])
        out: JsonObject = {"accountId": account.id, "oldState": old_state,
                           "newState": await self.store.run(account.id, current_state)}
        return set_response(out, created, updated, destroyed, not_created, not_updated,
                            not_destroyed)

    async def _create(self, ctx: CallContext, account_id: str,
                      values: JsonObject) -> JsonObject:
        mailbox_ids = mailbox_ids_value(ctx, values.get("mailboxIds"))
        keywords = keywords_value(values.get("keywords", {}))
        received = values.get("receivedAt")
        try:
            # section 4.1.1: "default: time of creation on server", chosen here so that
            # created can say it
            received_at = self.clock() if received is None else \
                parse_utc_date(received, "receivedAt")
        except MethodError:
            raise SetError("invalidProperties", "receivedAt must be a UTCDate",
                           properties=("receivedAt",)) from None
        wanted = [resolve_creation_id(ctx, b) for b in blob_ids_of(values)]
        usable = await readable_blobs(self.store, account_id, wanted)
        missing = [b for b in wanted if b not in usable]
        if missing:
            raise SetError("blobNotFound", notFound=list(missing))
        data: dict[str, bytes] = {}
        total = 0
        for blob_id in wanted:
            try:
                total += await self.blobs.size(blob_id)
                if total > self.max_attachments:
                    raise SetError("tooLarge", "the attachments are larger than "
                                   f"maxSizeAttachmentsPerEmail ({self.max_attachments})")
                data[blob_id] = await self.blobs.get(blob_id)
            except BlobNotFound:
                raise SetError("blobNotFound", notFound=[blob_id]) from None
            except (BlobError, OSError) as e:
                raise MethodError("serverUnavailable", "the blob store is unavailable") from e
        # blob ids in the structure may be creation ids: compose sees the real ones
        resolved = _resolve_blob_ids(ctx, values)
        domain = _domain(ctx)
        composed = compose({k: v for k, v in resolved.items() if k not in ENVELOPE}, data,
                           now=self.clock(), domain=domain)
        stored = await deliver(self.delivery, ctx, account_id, composed.raw, mailbox_ids,
                               keywords, received_at)
        # RFC 8620 section 5.3: the server-set properties (RFC 8621 section 4.1: id,
        # blobId, threadId, size, hasAttachment, preview), those whose header the server
        # made (section 4.6: messageId, sentAt) and those the client left to their
        # section 4.1.1 defaults (keywords {}, receivedAt the time of creation), each as
        # Email/get shows it
        out: JsonObject = {"id": stored.email_id, "blobId": stored.blob_id,
                           "threadId": stored.thread_id, "size": len(composed.raw)}
        out.update(summary_properties(parse_message(composed.raw),
                                      ("hasAttachment", "preview", *composed.generated)))
        if "keywords" not in values:
            out["keywords"] = {}
        if received is None:
            out["receivedAt"] = utc_date(received_at)
        return out


def _domain(ctx: CallContext) -> str:
    emails = ctx.principal.emails
    return emails[0].rpartition("@")[2] if emails and "@" in emails[0] else "localhost"


def _resolve_blob_ids(ctx: CallContext, values: JsonObject) -> JsonObject:
    def walk(value: JsonValue) -> JsonValue:
        if isinstance(value, dict):
            return {k: resolve_creation_id(ctx, v) if k == "blobId" and isinstance(v, str)
                    else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value
    out = walk(values)
    assert isinstance(out, dict)
    return out


async def _without_unchanged(tr: Transaction, account_id: str, email: Email,
                             patch: JsonObject) -> JsonObject:
    """``patch`` without the immutable properties it gives their current values of: RFC
    8620 section 5.3 refuses those "immutable and different to the current server
    value" (invalidProperties), so a client may send back what it got.  The record's
    properties and the summary's (section 4.1.3's convenience headers, preview,
    hasAttachment) are compared (those of the blob went before the transaction:
    :mod:`.email_unchanged`); a patch path into an immutable property is refused."""
    immutable = {key for key in patch if key.partition("/")[0] not in MUTABLE}
    if not immutable:
        return patch
    current = record_properties(email)
    if immutable & set(SUMMARY_PROPERTIES):
        summary = load_summary(await get_summary(tr, account_id, email.id))
        if summary is not None:
            current.update(summary_properties(summary))
    changed = sorted(key.partition("/")[0] for key in immutable
                     if key not in current or patch[key] != current[key])
    if changed:
        raise SetError("invalidProperties", "only keywords and mailboxIds can change",
                       properties=tuple(dict.fromkeys(changed)))
    return {k: v for k, v in patch.items() if k not in immutable}


async def _update(tr: Transaction, account_id: str, ctx: CallContext, email_id: str,
                  patch: JsonObject) -> None:
    email = await get_visible_email(tr, account_id, email_id)
    if email is None:
        raise SetError("notFound")
    patch = await _without_unchanged(tr, account_id, email, patch)
    current: JsonObject = {"keywords": dict.fromkeys(email.keywords, True),
                           "mailboxIds": dict.fromkeys(email.mailboxes, True)}
    # keywords compare case-insensitively: a patch path names the stored (lowercase) one
    lowered: JsonObject = {}
    for key, value in patch.items():
        prop, slash, rest = key.partition("/")
        lowered[prop + slash + (rest.lower() if prop == "keywords" else rest)] = value
    patched = apply_patch(current, lowered, defaults={"keywords": {}, "mailboxIds": {}})
    keywords = keywords_value(patched.get("keywords", {}))
    mailbox_ids = mailbox_ids_value(ctx, patched.get("mailboxIds", {}))
    try:
        if set(keywords) != set(email.keywords):
            await set_email_keywords(tr, account_id, email_id, keywords)
        if set(mailbox_ids) != set(email.mailboxes):
            await set_email_mailboxes(tr, account_id, email_id, mailbox_ids)
    except EmailNotFound:
        raise SetError("notFound") from None
    except MailboxNotFound:
        raise SetError("invalidProperties", "no such mailbox",
                       properties=("mailboxIds",)) from None
    except MailError as e:
        raise SetError("invalidProperties", str(e), properties=("mailboxIds",)) from None
