"""EmailSubmission (RFC 8621 section 7): /get, /changes, /query, /queryChanges, /set.

Creating a submission sends the email at once (``maxDelayedSend`` 0, so ``undoStatus``
is ``final``) through the path SMTP submission takes (``server.delivery.submit``):
local recipients get it through the delivery pipeline before ``created`` is answered,
remote ones are queued durably for the outbound workers.  The envelope is the client's,
or derived from the email (section 7: Sender or From; To, Cc and Bcc); Bcc fields are
removed from what is sent.  Refusals (section 7.5): ``forbiddenMailFrom`` when the
envelope's MAIL FROM, ``forbiddenFrom`` when a From or Sender address is not one of
the account's addresses (a ``+tag`` form included); ``invalidEmail``, ``noRecipients``,
``invalidRecipients`` (bad syntax, or no such user in a local domain),
``tooManyRecipients``, ``tooLarge``.

The records live in ``fdb_layers.submissions`` with their own change counter.
``deliveryStatus`` of a remote recipient follows the outbound queue's state for it,
read (and stored when it moved) by EmailSubmission/get; once the queue is done with the
message its outcome per recipient is no longer known (``unknown``) unless a /get saw it.
``onSuccessUpdateEmail`` and ``onSuccessDestroyEmail`` run as an implicit Email/set
whose response follows (section 7.5)."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from prometheus_client import Counter

from fdb_layers.mail import Transaction, get_visible_email
from fdb_layers.queue import DELIVERED, FAILED, get_message
from fdb_layers.submissions import (
    MAX_RECIPIENTS,
    Address,
    DeliveryStatus,
    Submission,
    create_submission,
    destroy_submission,
    get_submission,
    get_submission_changes,
    get_submission_state,
    list_submissions,
    set_delivery_status,
)
from server.blobs import BlobStore
from server.directory.base import Directory
from server.delivery.submit import (
    DeliveryPipeline,
    Outbox,
    SendFailed,
    received,
    send,
)
from server.delivery.routing import route_recipients

from .args import (
    account_arg,
    check_known,
    check_set_size,
    check_state,
    ids_arg,
    max_changes_arg,
    object_arg,
    properties_arg,
    resolve_creation_id,
    set_response,
    split_updates,
    string_arg,
    string_list_arg,
    will_destroy_error,
)
from .email_set import EmailSet
from .errors import MethodError, SetError
from .identity import SUBMISSION, identity_email
from .json import JsonObject, JsonValue
from .mail import (MAIL, MailStore, counted_changes_call, parse_exact_utc_date,
                   parse_utc_date, utc_date)
from .methods import CallContext, Replies
from .query import Comparator, apply_window, evaluate, filter_arg, sort_arg, window_arg

SUBMISSIONS = Counter(
    "fdbmail_jmap_submissions_total",
    "EmailSubmission/set creations by result (sent, refused, failed).",
    ("result",),
)

PROPERTIES = ("id", "identityId", "emailId", "threadId", "envelope", "sendAt",
              "undoStatus", "deliveryStatus", "dsnBlobIds", "mdnBlobIds")
CREATABLE = ("identityId", "emailId", "envelope")
SORTS = ("emailId", "threadId", "sentAt")
# what the outbound path does for every message it sends (server.outbound.client);
# the MAIL FROM parameters a client may give for them
EXTENSIONS = ("SIZE", "8BITMIME", "SMTPUTF8")
_MAIL_PARAMS = {"SIZE", "BODY", "SMTPUTF8"}
MAX_PATH = 256  # octets of a path (RFC 5321 section 4.5.3.1.3): records stay small
MAX_PARAM = 100
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+\.?[^@\s<>()\[\],;:\"\\]*")


def extensions(max_size: int) -> JsonObject:
    """``submissionExtensions`` (RFC 8621 section 1.3.2)."""
    return {"SIZE": [str(max_size)], "8BITMIME": [], "SMTPUTF8": []}


def _owns(owned: set[str], address: str) -> bool:
    """``address`` (or its ``user+tag`` form) is one of the account's."""
    addr = address.lower()
    if addr in owned:
        return True
    local, _, domain = addr.rpartition("@")
    user, sep, _tag = local.partition("+")
    return bool(sep) and f"{user}@{domain}" in owned


SERVER_SET = frozenset({"id", "threadId", "sendAt", "undoStatus", "deliveryStatus",
                        "dsnBlobIds", "mdnBlobIds"})


def _address_json(a: Address) -> JsonObject:
    return {"email": a.email, "parameters": dict(a.parameters) if a.parameters else None}


def _to_json(s: Submission) -> JsonObject:
    return {"id": s.id, "identityId": s.identity_id, "emailId": s.email_id,
            "threadId": s.thread_id,
            "envelope": {"mailFrom": _address_json(s.mail_from),
                         "rcptTo": [_address_json(a) for a in s.rcpt_to]},
            "sendAt": utc_date(s.send_at), "undoStatus": s.undo_status,
            "deliveryStatus": {k: {"smtpReply": v.smtp_reply, "delivered": v.delivered,
                                   "displayed": v.displayed}
                               for k, v in s.delivery_status.items()} or None,
            "dsnBlobIds": [], "mdnBlobIds": []}


async def _refreshed(tr: Transaction, account_id: str, s: Submission) -> Submission:
    """``s`` with the queue's state of its remote recipients (stored if it moved)."""
    if not s.queue_id or not any(v.delivered == "queued"
                                 for v in s.delivery_status.values()):
        return s
    queued = await get_message(tr, s.queue_id)
    status = dict(s.delivery_status)
    if queued is None:  # the queue is done with it; per recipient, we do not know
        for address, v in status.items():
            if v.delivered == "queued":
                status[address] = DeliveryStatus(v.smtp_reply, "unknown")
    else:
        for r in queued.recipients:
            old = status.get(r.address)
            if old is None or old.delivered != "queued":
                continue
            delivered = {DELIVERED: "yes", FAILED: "no"}.get(r.state, "queued")
            status[r.address] = DeliveryStatus(r.reply or old.smtp_reply, delivered)
    if status != s.delivery_status:
        await set_delivery_status(tr, account_id, s.id, status)
        s = replace(s, delivery_status=status)
    return s


async def _get(tr: Transaction, account_id: str, ids: list[str] | None
               ) -> tuple[list[Submission], list[str], int]:
    if ids is None:
        found = await list_submissions(tr, account_id)
        missing: list[str] = []
    else:
        found, missing = [], []
        for submission_id in ids:
            s = await get_submission(tr, account_id, submission_id)
            if s is None or s.destroyed:
                missing.append(submission_id)
            else:
                found.append(s)
    found = [await _refreshed(tr, account_id, s) for s in found]
    return found, missing, await get_submission_state(tr, account_id)


async def _find(tr: Transaction, account_id: str, submission_id: str) -> Submission | None:
    return await get_submission(tr, account_id, submission_id)


class _Submissions:
    capability = SUBMISSION

    def __init__(self, store: MailStore) -> None:
        self.store = store


class EmailSubmissionGet(_Submissions):
    name = "EmailSubmission/get"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ids", "properties"))
        account = account_arg(ctx, args)
        ids = ids_arg(ctx, args)
        properties = properties_arg(args, PROPERTIES, PROPERTIES)
        found, missing, state = await self.store.run(account.id, _get, ids)
        return {"accountId": account.id, "state": str(state),
                "list": [{p: _to_json(s)[p] for p in properties} for s in found],
                "notFound": list[JsonValue](missing)}


class EmailSubmissionChanges(_Submissions):
    name = "EmailSubmission/changes"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        return await counted_changes_call(self.store, ctx, args, get_submission_changes)


_CONDITIONS = ("identityIds", "emailIds", "threadIds", "undoStatus", "before", "after")


def check_condition(condition: JsonObject) -> None:
    """A FilterCondition of EmailSubmission/query (RFC 8621 section 7.3)."""
    unknown = set(condition) - set(_CONDITIONS)
    if unknown:
        raise MethodError("unsupportedFilter", f"unknown conditions {sorted(unknown)}")
    for name in ("identityIds", "emailIds", "threadIds"):
        if name in condition:
            string_list_arg(condition, name)
    if "undoStatus" in condition:
        string_arg(condition, "undoStatus")
    for name in ("before", "after"):
        if name in condition:
            parse_exact_utc_date(condition[name], name)


def _matches(s: Submission, condition: JsonObject) -> bool:
    for name, value in (("identityIds", s.identity_id), ("emailIds", s.email_id),
                        ("threadIds", s.thread_id)):
        wanted = condition.get(name)
        if isinstance(wanted, list) and value not in wanted:
            return False
    if "undoStatus" in condition and condition["undoStatus"] != s.undo_status:
        return False
    if "before" in condition and not s.send_at < parse_utc_date(condition["before"], "before"):
        return False
    if "after" in condition and not s.send_at >= parse_utc_date(condition["after"], "after"):
        return False
    return True


def _sorted(found: list[Submission], sort: tuple[Comparator, ...]) -> list[Submission]:
    out = sorted(found, key=lambda s: (s.send_at, s.id))  # default: oldest first
    for c in reversed(sort):
        if c.property == "sentAt":
            out.sort(key=lambda s: s.send_at, reverse=not c.is_ascending)
        else:
            prop = "email_id" if c.property == "emailId" else "thread_id"
            out.sort(key=lambda s: str(getattr(s, prop)), reverse=not c.is_ascending)
    return out


class EmailSubmissionQuery(_Submissions):
    name = "EmailSubmission/query"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "filter", "sort", "position", "anchor",
                           "anchorOffset", "limit", "calculateTotal"))
        account = account_arg(ctx, args)
        tree = filter_arg(args, check_condition)
        sort = sort_arg(args, SORTS)
        window = window_arg(args)

        async def run(tr: Transaction, account_id: str) -> tuple[list[Submission], int]:
            return (await list_submissions(tr, account_id),
                    await get_submission_state(tr, account_id))
        found, state = await self.store.run(account.id, run)
        def passes(s: Submission) -> bool:
            return evaluate(tree, lambda c: _matches(s, c))
        ids = [s.id for s in _sorted([s for s in found if passes(s)], sort)]
        position, page, capped = apply_window(ids, window, ctx.limits.max_objects_in_get)
        out: JsonObject = {"accountId": account.id, "queryState": str(state),
                           "canCalculateChanges": False, "position": position,
                           "ids": list(page)}
        if window.calculate_total:
            out["total"] = len(ids)
        if capped is not None:
            out["limit"] = capped
        return out


class EmailSubmissionQueryChanges(_Submissions):
    """Section 7.4 with ``canCalculateChanges: false``: arguments checked, then
    ``cannotCalculateChanges`` (RFC 8620 section 5.6)."""

    name = "EmailSubmission/queryChanges"

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "filter", "sort", "sinceQueryState", "maxChanges",
                           "upToId", "calculateTotal"))
        account_arg(ctx, args)
        filter_arg(args, check_condition)
        sort_arg(args, SORTS)
        since = string_arg(args, "sinceQueryState", required=True)
        max_changes_arg(args)
        string_arg(args, "upToId")
        raise MethodError("cannotCalculateChanges",
                          f"cannot calculate changes since query state {since!r}")


def _invalid(prop: str, description: str) -> SetError:
    return SetError("invalidProperties", description, properties=(prop,))


def _params(value: JsonValue, prop: str, allowed: set[str]) -> dict[str, str | None] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(v is None or isinstance(v, str)
                                              for v in value.values()):
        raise _invalid(prop, "parameters are an object of strings or nulls")
    unknown = {k.upper() for k in value} - allowed
    if unknown:
        raise _invalid(prop, f"unsupported SMTP parameters {sorted(unknown)}")
    return {k: v if isinstance(v, str) else None for k, v in value.items()}


def _address(value: JsonValue, prop: str, allowed: set[str]) -> Address:
    if not isinstance(value, dict) or set(value) - {"email", "parameters"} or \
            not isinstance(value.get("email"), str):
        raise _invalid(prop, "an Address is {email, parameters}")
    params = _params(value.get("parameters"), prop, allowed)
    if params and any(len(k) + len(v or "") > MAX_PARAM for k, v in params.items()):
        raise _invalid(prop, f"a parameter is longer than {MAX_PARAM} characters")
    return Address(str(value["email"]), params)


def _envelope(value: JsonValue) -> tuple[Address, list[Address]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"mailFrom", "rcptTo"} or \
            not isinstance(value["rcptTo"], list):
        raise _invalid("envelope", "an Envelope is {mailFrom, rcptTo}")
    mail_from = _address(value["mailFrom"], "envelope", _MAIL_PARAMS)
    return mail_from, [_address(a, "envelope", set()) for a in value["rcptTo"]]


def _header_addresses(headers: Message, *names: str) -> list[str]:
    values = [str(v) for name in names for v in (headers.get_all(name) or [])]
    return [a for _, a in getaddresses(values) if a]


def without_bcc(raw: bytes) -> bytes:
    """The message without its Bcc fields (RFC 5322 section 3.6.3: not sent), folded
    lines included; everything else, the body above all, byte for byte."""
    out: list[bytes] = []
    pos = 0
    skipping = False
    for line in raw.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):  # the end of the header
            break
        pos += len(line)
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                out.append(line)
            continue
        skipping = line[:4].lower() == b"bcc:" or line.lower().startswith(b"bcc ")
        if not skipping:
            out.append(line)
    return b"".join(out) + raw[pos:]


class EmailSubmissionSet(_Submissions):
    name = "EmailSubmission/set"

    def __init__(self, store: MailStore, blobs: BlobStore, directory: Directory,
                 delivery: DeliveryPipeline, outbox: Outbox | None, email_set: EmailSet, *,
                 hostname: str, max_size: int, clock: Callable[[], float] = time.time
                 ) -> None:
        super().__init__(store)
        self.blobs, self.directory, self.delivery, self.outbox = blobs, directory, \
            delivery, outbox
        self.email_set, self.hostname, self.max_size, self.clock = email_set, hostname, \
            max_size, clock

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject | Replies:
        check_known(args, ("accountId", "ifInState", "create", "update", "destroy",
                           "onSuccessUpdateEmail", "onSuccessDestroyEmail"))
        account = account_arg(ctx, args, write=True)
        check_set_size(ctx, args)
        create = object_arg(args, "create") or {}
        update = object_arg(args, "update") or {}
        destroy = string_list_arg(args, "destroy") or []
        on_update = object_arg(args, "onSuccessUpdateEmail") or {}
        on_destroy = string_list_arg(args, "onSuccessDestroyEmail") or []
        old_state = str(await self.store.run(account.id, get_submission_state))
        check_state(args, old_state)
        created: JsonObject = {}
        not_created: JsonObject = {}
        email_of: dict[str, str] = {}  # submission id and #creation id -> email id
        for creation_id, values in create.items():
            try:
                if not isinstance(values, dict):
                    raise SetError("invalidProperties", "an EmailSubmission is an object")
                new = await self._create(ctx, account.id, values)
            except SetError as e:
                SUBMISSIONS.labels("refused").inc()
                not_created[creation_id] = e.to_json()
                continue
            SUBMISSIONS.labels("sent").inc()
            ctx.record_created(creation_id, new.id)
            email_of["#" + creation_id] = email_of[new.id] = new.email_id
            # RFC 8620 section 5.3: the server-set properties (id, threadId, sendAt,
            # undoStatus, deliveryStatus, dsnBlobIds, mdnBlobIds) and those the client
            # left to the server (envelope, "If null or omitted on creation, the server
            # MUST generate this", section 7)
            created[creation_id] = {k: v for k, v in _to_json(new).items()
                                    if values.get(k) is None or k in SERVER_SET}
        updated: JsonObject = {}
        not_updated: JsonObject = {}

        async def update_all(items: JsonObject, destroyed: list[JsonValue]) -> None:
            for raw_id, patch in items.items():
                submission_id = resolve_creation_id(ctx, raw_id)
                if submission_id in destroyed:  # RFC 8620 section 5.3
                    not_updated[raw_id] = will_destroy_error().to_json()
                    continue
                s = await self.store.run(account.id, _find, submission_id)
                if s is None or s.destroyed:
                    not_updated[raw_id] = SetError("notFound").to_json()
                elif not isinstance(patch, dict):
                    not_updated[raw_id] = SetError("invalidPatch").to_json()
                elif set(patch) - {"undoStatus"}:  # section 7: the others are immutable
                    not_updated[raw_id] = SetError(
                        "invalidProperties", "only undoStatus may be changed",
                        properties=tuple(sorted(set(patch) - {"undoStatus"}))).to_json()
                elif patch.get("undoStatus", s.undo_status) not in ("canceled",
                                                                    s.undo_status):
                    # section 7: undoStatus "may only be set to canceled"
                    not_updated[raw_id] = _invalid("undoStatus", "undoStatus may only be "
                                                   "set to canceled").to_json()
                elif patch.get("undoStatus", s.undo_status) == s.undo_status:
                    updated[raw_id] = None
                    email_of[raw_id] = email_of[submission_id] = s.email_id
                else:  # section 7.5: sent at once, so never canceled
                    not_updated[raw_id] = SetError(
                        "cannotUnsend", "the email was sent already").to_json()
        update, doomed = split_updates(ctx, update, destroy)
        await update_all(update, [])
        destroyed: list[JsonValue] = []
        not_destroyed: JsonObject = {}
        for raw_id in destroy:
            submission_id = resolve_creation_id(ctx, raw_id)
            s = await self.store.run(account.id, _find, submission_id)
            if s is None or s.destroyed or not await self.store.run(
                    account.id, destroy_submission, submission_id,
                    op_id="jmap/" + secrets.token_hex(12)):
                not_destroyed[raw_id] = SetError("notFound").to_json()
                continue
            email_of[raw_id] = email_of[submission_id] = s.email_id
            destroyed.append(submission_id)
        await update_all(doomed, destroyed)
        out: JsonObject = {"accountId": account.id, "oldState": old_state,
                           "newState": str(await self.store.run(account.id,
                                                                get_submission_state))}
        response = set_response(out, created, updated, destroyed, not_created, not_updated,
                                not_destroyed)
        email_update = {email_of[k]: v for k, v in on_update.items() if k in email_of}
        email_destroy = [email_of[k] for k in on_destroy if k in email_of]
        if not email_update and not email_destroy:
            return response
        email_args: JsonObject = {"accountId": account.id}
        if email_update:
            email_args["update"] = email_update
        if email_destroy:
            email_args["destroy"] = list(email_destroy)
        email_ctx = replace(ctx, method="Email/set", capability=MAIL)
        email_response = await self.email_set.call(email_ctx, email_args)
        return (("EmailSubmission/set", response), ("Email/set", email_response))

    async def _create(self, ctx: CallContext, account_id: str,
                      values: JsonObject) -> Submission:
        unknown = sorted(set(values) - set(CREATABLE))
        if unknown:
            raise SetError("invalidProperties", "unknown or server-set properties",
                           properties=tuple(unknown))
        identity_id = values.get("identityId")
        email_id = values.get("emailId")
        if not isinstance(identity_id, str):
            raise _invalid("identityId", "identityId is required")
        if not isinstance(email_id, str):
            raise _invalid("emailId", "emailId is required")
        email_id = resolve_creation_id(ctx, email_id)
        identity_address = await identity_email(self.store, ctx, account_id, identity_id)
        if identity_address is None:
            raise _invalid("identityId", f"no identity {identity_id!r}")
        email = await self.store.run(account_id, get_visible_email, email_id)
        if email is None:
            raise _invalid("emailId", f"no email {email_id!r}")
        if self.max_size and email.size > self.max_size:
            raise SetError("tooLarge", f"the email is larger than {self.max_size} bytes",
                           maxSize=self.max_size)
        try:
            raw = await self.blobs.get(email.blob_id)
        except Exception as e:
            raise MethodError("serverFail", "the email's message cannot be read") from e
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        try:
            authors = _header_addresses(headers, "From")
            sender_field = _header_addresses(headers, "Sender")
        except Exception:
            raise SetError("invalidEmail", "From or Sender cannot be parsed",
                           properties=("from",)) from None
        if not authors:
            raise SetError("invalidEmail", "the email has no From address",
                           properties=("from",))
        owned = {a.lower() for a in ctx.principal.emails}
        if not all(_owns(owned, a) for a in authors + sender_field):
            raise SetError("forbiddenFrom", "this account may not send as "
                           + ", ".join(authors + sender_field))
        given = _envelope(values.get("envelope"))
        if given is None:
            mail_from = Address((sender_field or authors)[0])
            rcpt_to = [Address(a) for a in dict.fromkeys(
                _header_addresses(headers, "To", "Cc", "Bcc"))]
        else:
            mail_from, rcpt_to = given
        if not _owns(owned, mail_from.email):
            raise SetError("forbiddenMailFrom",
                           f"this account may not send from {mail_from.email}")
        size_param = {k.upper(): v for k, v in (mail_from.parameters or {}).items()
                      }.get("SIZE")
        if size_param is not None and not size_param.isdigit():  # RFC 1870 section 3
            raise _invalid("envelope", f"SIZE {size_param!r} is not a number of octets")
        if size_param is not None and self.max_size and int(size_param) > self.max_size:
            raise SetError("tooLarge", f"SIZE {size_param} is over the limit",
                           maxSize=self.max_size)
        if not rcpt_to:
            raise SetError("noRecipients", "the envelope has no recipients")
        if len(rcpt_to) > MAX_RECIPIENTS:
            raise SetError("tooManyRecipients", f"at most {MAX_RECIPIENTS} recipients",
                           maxRecipients=MAX_RECIPIENTS)
        bad = [a.email[:MAX_PATH] for a in rcpt_to
               if len(a.email) > MAX_PATH or not _ADDRESS.fullmatch(a.email)]
        if bad:
            raise SetError("invalidRecipients", "not addresses",
                           invalidRecipients=list[JsonValue](bad))
        routes = await route_recipients(self.directory, [a.email for a in rcpt_to])
        if routes.unknown:
            raise SetError("invalidRecipients", "no such recipients",
                           invalidRecipients=list[JsonValue](routes.unknown))
        submission_id = "S" + secrets.token_hex(11)
        send_id = "jmap-" + hashlib.sha256(
            f"{account_id}\0{submission_id}".encode()).hexdigest()[:40]
        now = self.clock()
        try:
            sent = await send(self.delivery, self.outbox, send_id=send_id,
                              sender=mail_from.email, routes=routes,
                              content=without_bcc(raw),
                              trace=received(by=self.hostname, source="HTTP",
                                             id=send_id[5:]))
        except SendFailed as e:
            SUBMISSIONS.labels("failed").inc()
            raise MethodError("serverUnavailable", str(e)) from e
        status = {a: DeliveryStatus(r, "yes" if r.startswith("2") else "no")
                  for a, r in sent.local.items()}
        for address in routes.remote:
            status[address] = DeliveryStatus("250 2.0.0 queued", "queued")
        submission = Submission(submission_id, identity_id, email.id, email.thread_id,
                                mail_from, tuple(rcpt_to), now, sent.queue_id or "",
                                delivery_status=status)
        return await self.store.run(account_id, create_submission, submission)
