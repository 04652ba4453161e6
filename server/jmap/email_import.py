"""Email/import (RFC 8621 section 4.8): messages the account uploaded become emails,
through the delivery pipeline (``server.delivery``, the one way into a mailbox), so each
is durable before it is reported ``created`` and its ids are the mail layer's.

Also what Email/set's create and Email/copy share with it: reading ``mailboxIds`` and
``keywords`` (section 4.1.1), delivering one message for the caller, and the table from
the pipeline's refusals to SetErrors."""

from __future__ import annotations

import secrets

from fdb_layers.mail import (
    DELETED,
    MailboxNotFound,
    MailboxNotSelectable,
    QuotaExceeded,
    Transaction,
    get_email,
    get_state,
)
from server.blobs.base import BlobRef
from server.delivery import (
    Delivery,
    DeliveryRequest,
    MessageTooLarge,
    NoSuchBlob,
    Recipient,
    Refused,
    Source,
    Stored,
)

from .args import account_arg, check_known, check_state, object_arg, resolve_creation_id
from .blob import readable_blobs
from .errors import MethodError, SetError
from .json import JsonObject, JsonValue
from .mail import MAIL, MailStore, parse_utc_date
from .methods import CallContext

# RFC 8621 4.1.1: a keyword is 1-255 of %x21-7E except ( ) { ] % * " \
_NOT_IN_KEYWORD = frozenset('(){]%*"\\')
MAX_KEYWORDS = 100  # per email: more is tooManyKeywords (RFC 8621 4.6)


def _invalid(prop: str, description: str) -> SetError:
    return SetError("invalidProperties", description, properties=(prop,))


def _all_invalid(errors: list[SetError]) -> SetError:
    """One SetError for several: invalidProperties naming each invalid property, or the
    first error of another type (tooManyKeywords)."""
    other = [e for e in errors if e.type != "invalidProperties"]
    if other:
        return other[0]
    return SetError("invalidProperties", "; ".join(e.description or "" for e in errors),
                    properties=tuple(p for e in errors for p in e.properties))


def keywords_value(value: JsonValue, prop: str = "keywords") -> tuple[str, ...]:
    """``keywords: String[Boolean]`` (every value true), lowercase."""
    if not isinstance(value, dict):
        raise _invalid(prop, "keywords must be an object of keyword: true")
    for keyword, flag in value.items():
        if flag is not True:
            raise _invalid(prop, f"the value of keyword {keyword!r} must be true")
        if not is_keyword(keyword):
            raise _invalid(prop, f"{keyword!r} is not a keyword")
    if len(value) > MAX_KEYWORDS:
        raise SetError("tooManyKeywords", f"at most {MAX_KEYWORDS} keywords per email")
    lowered = tuple(sorted({k.lower() for k in value}))
    if DELETED in lowered:
        # RFC 8621 section 4.1.1: IMAP's \Deleted is not present in JMAP, and a message
        # with it is not visible; setting it is an invalid value (RFC 8620 section 5.3)
        raise _invalid(prop, f"{DELETED!r} is IMAP's \\Deleted, which JMAP does not set")
    return lowered


def is_keyword(keyword: str) -> bool:
    return 0 < len(keyword) <= 255 and all(
        "\x21" <= c <= "\x7e" and c not in _NOT_IN_KEYWORD for c in keyword)


def mailbox_ids_value(ctx: CallContext, value: JsonValue,
                      prop: str = "mailboxIds") -> tuple[str, ...]:
    """``mailboxIds: Id[Boolean]`` (every value true, at least one), creation ids
    resolved."""
    if not isinstance(value, dict) or not value:
        raise _invalid(prop, "mailboxIds must be a non-empty object of id: true")
    if any(flag is not True for flag in value.values()):
        raise _invalid(prop, "every value of mailboxIds must be true")
    return tuple(dict.fromkeys(resolve_creation_id(ctx, m) for m in value))


def refusal(error: object, blob_id: str) -> SetError:
    """The SetError for a delivery's refusal (one table for Email/import, /set, /copy)."""
    if isinstance(error, (MailboxNotFound, MailboxNotSelectable)):
        return _invalid("mailboxIds", "no such mailbox")
    if isinstance(error, QuotaExceeded):
        return SetError("overQuota", str(error))
    if isinstance(error, NoSuchBlob):
        return SetError("blobNotFound", notFound=[blob_id])
    if isinstance(error, MessageTooLarge):
        return SetError("tooLarge", str(error))
    raise MethodError("serverUnavailable", f"the message could not be stored: {error}")


async def deliver(delivery: Delivery, ctx: CallContext, account_id: str,
                  body: bytes | BlobRef, mailbox_ids: tuple[str, ...],
                  keywords: tuple[str, ...], received_at: float | None,
                  source: Source = Source.IMPORT) -> Stored:
    """One message into the caller's own account; SetError if refused."""
    request = DeliveryRequest(
        source, body, (Recipient(account_id, ctx.principal.quota),),
        idempotency_id="jmap/" + secrets.token_hex(16), mailbox_ids=mailbox_ids,
        keywords=keywords, received_at=received_at)
    [result] = await delivery.deliver(request)
    if isinstance(result, Stored):
        return result
    blob_id = body.id if isinstance(body, BlobRef) else ""
    if isinstance(result, Refused):
        raise refusal(result.error, blob_id)
    raise MethodError("serverFail", "the message was discarded")


async def current_state(tr: Transaction, account_id: str) -> str:
    return await get_state(tr, account_id)


class EmailImport:
    name = "Email/import"
    capability = MAIL

    def __init__(self, store: MailStore, delivery: Delivery) -> None:
        self.store, self.delivery = store, delivery

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ifInState", "emails"))
        account = account_arg(ctx, args, write=True)
        emails = object_arg(args, "emails")
        if emails is None:
            raise MethodError("invalidArguments", "'emails' is required")
        if len(emails) > ctx.limits.max_objects_in_set:
            raise MethodError("requestTooLarge",
                              f"at most {ctx.limits.max_objects_in_set} emails per call")
        old_state = await self.store.run(account.id, current_state)
        check_state(args, old_state)
        blob_ids = [str(e["blobId"]) for e in emails.values()
                    if isinstance(e, dict) and isinstance(e.get("blobId"), str)]
        usable = await readable_blobs(self.store, account.id,
                                      [resolve_creation_id(ctx, b) for b in blob_ids])
        created: JsonObject = {}
        not_created: JsonObject = {}
        for creation_id, spec in emails.items():
            try:
                created[creation_id] = await self._one(ctx, account.id, spec, usable)
            except SetError as e:
                not_created[creation_id] = e.to_json()
                continue
            email_id = created[creation_id]
            assert isinstance(email_id, dict) and isinstance(email_id["id"], str)
            ctx.record_created(creation_id, email_id["id"])
        return {"accountId": account.id, "oldState": old_state,
                "newState": await self.store.run(account.id, current_state),
                "created": created or None, "notCreated": not_created or None}

    async def _one(self, ctx: CallContext, account_id: str, spec: JsonValue,
                   usable: set[str]) -> JsonObject:
        if not isinstance(spec, dict):
            raise SetError("invalidProperties", "an EmailImport must be an object")
        unknown = sorted(set(spec) - {"blobId", "mailboxIds", "keywords", "receivedAt"})
        if unknown:
            raise SetError("invalidProperties", "unknown properties", properties=tuple(unknown))
        # RFC 8620 section 5.3: invalidProperties lists every invalid property, so
        # each is checked before one SetError names them all
        invalid: list[SetError] = []
        raw_blob = spec.get("blobId")
        if not isinstance(raw_blob, str):
            invalid.append(_invalid("blobId", "blobId must be an id"))
        mailbox_ids: tuple[str, ...] = ()
        keywords: tuple[str, ...] = ()
        received_at: float | None = None
        try:
            mailbox_ids = mailbox_ids_value(ctx, spec.get("mailboxIds"))
        except SetError as e:
            invalid.append(e)
        try:
            keywords = keywords_value(spec.get("keywords", {}))
        except SetError as e:
            invalid.append(e)
        received = spec.get("receivedAt")
        try:
            received_at = None if received is None else parse_utc_date(received, "receivedAt")
        except MethodError:
            invalid.append(_invalid("receivedAt", "receivedAt must be a UTCDate"))
        if invalid:
            raise _all_invalid(invalid)
        assert isinstance(raw_blob, str)
        blob_id = resolve_creation_id(ctx, raw_blob)
        if blob_id not in usable:
            raise SetError("blobNotFound", notFound=[raw_blob])
        stored = await deliver(self.delivery, ctx, account_id, BlobRef(blob_id, 0),
                               mailbox_ids, keywords, received_at)
        size = await self.store.run(account_id, _size, stored.email_id)
        return {"id": stored.email_id, "blobId": stored.blob_id,
                "threadId": stored.thread_id, "size": size}


async def _size(tr: Transaction, account_id: str, email_id: str) -> int:
    email = await get_email(tr, account_id, email_id)
    return 0 if email is None else email.size
