"""Email/get (RFC 8621 section 4.2): every Email property of section 4.1.

Metadata comes from the mail layer's email record, the header convenience properties and
the body choice (textBody, htmlBody, attachments) from the summary stored at delivery;
``headers``, ``header:*`` and bodyValues read byte ranges of the message's blob, after the
transaction, only when asked for.  :func:`render_email` is shared with Email/parse, which
renders a message held in memory."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from fdb_layers.mail import Email, Transaction, get_state, get_summary, get_visible_emails
from server.blobs import BlobStore
from server.blobs.base import BlobError
from server.mime import MessageSummary
from server.mime.model import Envelope
from server.mime.serialize import head_from_bytes
from server.mime.charsets import surrogate_text

from .args import account_arg, bool_arg, check_known, ids_arg, int_arg
from .email_body import BodyView, RangeReader, body_properties_arg
from .email_heads import Head, HeadCache, copy_value
from .errors import MethodError, invalid_arguments
from .get_all import all_email_ids
from .headers import (
    HeaderProperty,
    addresses,
    header_value,
    parse_date,
    parse_header_property,
    raw_headers,
)
from .json import JsonObject, JsonValue
from .mail import MAIL, MailStore, utc_date
from .methods import CallContext
from .state_cache import StateCache

RECORD_PROPERTIES = ("id", "blobId", "threadId", "mailboxIds", "keywords", "size",
                     "receivedAt")
SUMMARY_PROPERTIES = ("messageId", "inReplyTo", "references", "sender", "from", "to", "cc",
                      "bcc", "replyTo", "subject", "sentAt", "hasAttachment", "preview")
BODY_PROPERTIES = ("bodyStructure", "textBody", "htmlBody", "attachments", "bodyValues")
PROPERTIES = (*RECORD_PROPERTIES, *SUMMARY_PROPERTIES, "headers", *BODY_PROPERTIES)
# Section 4.2: the properties when the client gives none.
DEFAULT_PROPERTIES = (*RECORD_PROPERTIES, *SUMMARY_PROPERTIES, "bodyValues", "textBody",
                      "htmlBody", "attachments")
# Section 4.1.3: each convenience property is the named header form, and a header
# property takes the *last* instance of its field ("header:{name}": "If there are
# multiple, the last one is used" unless ``:all``).  The summary's envelope holds the
# first instances (IMAP's ENVELOPE) and names the fields that repeat: only those are
# read again from the blob.
CONVENIENCE_HEADERS: dict[str, tuple[str, HeaderProperty]] = {
    field: (prop, header) for field, prop, header in (
        (f, p, parse_header_property(h)) for f, p, h in (
            ("message-id", "messageId", "header:Message-ID:asMessageIds"),
            ("in-reply-to", "inReplyTo", "header:In-Reply-To:asMessageIds"),
            ("references", "references", "header:References:asMessageIds"),
            ("sender", "sender", "header:Sender:asAddresses"),
            ("from", "from", "header:From:asAddresses"),
            ("to", "to", "header:To:asAddresses"),
            ("cc", "cc", "header:Cc:asAddresses"),
            ("bcc", "bcc", "header:Bcc:asAddresses"),
            ("reply-to", "replyTo", "header:Reply-To:asAddresses"),
            ("subject", "subject", "header:Subject:asText"),
            ("date", "sentAt", "header:Date:asDate")))
    if header is not None}
READS_AT_ONCE = 16  # emails whose blobs one Email/get reads at the same time
GET_ARGUMENTS = ("accountId", "ids", "properties", "bodyProperties", "fetchTextBodyValues",
                 "fetchHTMLBodyValues", "fetchAllBodyValues", "maxBodyValueBytes")


@dataclass(frozen=True, slots=True)
class EmailView:
    """What the client asked an Email to show (Email/get's and Email/parse's arguments)."""

    properties: tuple[str, ...]
    headers: dict[str, HeaderProperty]
    body_properties: tuple[str, ...]
    body_headers: dict[str, HeaderProperty]
    fetch_text: bool
    fetch_html: bool
    fetch_all: bool
    max_bytes: int

    @property
    def needs_summary(self) -> bool:
        return any(p not in RECORD_PROPERTIES for p in self.properties)

    @property
    def head_only(self) -> bool:
        """Whether the record, the summary's envelope, preview and hasAttachment give
        every property (a list view): no part, no header or body read from the blob."""
        return not self.headers and all(
            p in RECORD_PROPERTIES or p in SUMMARY_PROPERTIES for p in self.properties)


def view_arg(args: JsonObject, default: Sequence[str], *, with_id: bool = True) -> EmailView:
    """The properties, bodyProperties, fetch*BodyValues and maxBodyValueBytes arguments
    (section 4.2); an unknown property or a forbidden header form is invalidArguments."""
    wanted = args.get("properties")
    if wanted is None:
        names = tuple(default)
    elif isinstance(wanted, list) and all(isinstance(p, str) for p in wanted):
        names = tuple(dict.fromkeys(p for p in wanted if isinstance(p, str)))
    else:
        raise invalid_arguments("'properties' must be an array of strings or null")
    headers: dict[str, HeaderProperty] = {}
    for name in names:
        parsed = parse_header_property(name)
        if parsed is not None:
            headers[name] = parsed
        elif name not in PROPERTIES:
            raise invalid_arguments(f"unknown property {name!r}")
    body, body_headers = body_properties_arg(args.get("bodyProperties"))
    # section 4.2: an UnsignedInt, 0 (the default) for no truncation
    max_bytes = int_arg(args, "maxBodyValueBytes", 0, minimum=0)
    assert max_bytes is not None
    return EmailView(tuple(dict.fromkeys(("id", *names) if with_id else names)), headers,
                     body, body_headers,
                     bool_arg(args, "fetchTextBodyValues"),
                     bool_arg(args, "fetchHTMLBodyValues"),
                     bool_arg(args, "fetchAllBodyValues"), max_bytes)


def _ids(values: tuple[str, ...]) -> list[JsonValue] | None:
    return list(values) if values else None


def _addr(items: Sequence[object]) -> list[JsonValue] | None:
    return addresses(items) or None  # type: ignore[arg-type]


_ENVELOPE_PROPERTIES: dict[str, Callable[[Envelope], JsonValue]] = {
    "messageId": lambda env: _ids(env.message_ids),
    "inReplyTo": lambda env: _ids(env.in_reply_to_ids),
    "references": lambda env: _ids(env.reference_ids),
    "sender": lambda env: _addr(env.sender), "from": lambda env: _addr(env.from_),
    "to": lambda env: _addr(env.to), "cc": lambda env: _addr(env.cc),
    "bcc": lambda env: _addr(env.bcc), "replyTo": lambda env: _addr(env.reply_to),
    "subject": lambda env: env.decoded_subject,
    "sentAt": lambda env: (parse_date(surrogate_text(env.date)) if env.date is not None
                           else None)}


def head_properties(envelope: Envelope, preview: str, has_attachment: bool,
                    wanted: Iterable[str] = SUMMARY_PROPERTIES) -> JsonObject:
    """Those of ``wanted`` among the header convenience properties (section 4.1.3),
    hasAttachment and preview (each is computed only when wanted)."""
    out: JsonObject = {}
    for name in wanted:
        convert = _ENVELOPE_PROPERTIES.get(name)
        if convert is not None:
            out[name] = convert(envelope)
        elif name == "hasAttachment":
            out[name] = has_attachment
        elif name == "preview":
            out[name] = preview
    return out


def summary_properties(summary: MessageSummary,
                       wanted: Iterable[str] = SUMMARY_PROPERTIES) -> JsonObject:
    """The header convenience properties (section 4.1.3), hasAttachment and preview."""
    return head_properties(summary.envelope, summary.preview, summary.has_attachment, wanted)


RECORD_VALUES: dict[str, Callable[[Email], JsonValue]] = {
    "id": lambda email: email.id, "blobId": lambda email: email.blob_id,
    "threadId": lambda email: email.thread_id,
    "mailboxIds": lambda email: dict.fromkeys(email.mailboxes, True),
    "keywords": lambda email: dict.fromkeys(email.keywords, True),
    "size": lambda email: email.size,
    "receivedAt": lambda email: utc_date(email.received_at)}


@dataclass(frozen=True, slots=True)
class _HeadPlan:
    """The wanted properties of a :attr:`EmailView.head_only` view: those of the record
    with their getters, and those of the summary."""

    record: tuple[tuple[str, Callable[[Email], JsonValue]], ...]
    summary: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _head_plan(properties: tuple[str, ...]) -> _HeadPlan:
    return _HeadPlan(tuple((p, RECORD_VALUES[p]) for p in properties if p in RECORD_VALUES),
                     tuple(p for p in properties if p not in RECORD_VALUES))


def record_properties(email: Email) -> JsonObject:
    return {name: value(email) for name, value in RECORD_VALUES.items()}


async def render_email(summary: MessageSummary, blob_id: str, reader: RangeReader,
                       view: EmailView) -> JsonObject:
    """The summary, header and body properties of ``view`` for one message."""
    out = summary_properties(summary, view.properties)
    body = BodyView(summary, blob_id, reader, view.body_properties, view.body_headers)
    wanted = set(view.properties)
    for field in summary.envelope.repeated:
        convenience = CONVENIENCE_HEADERS.get(field)
        if convenience is not None and convenience[0] in wanted:  # the last (4.1.3)
            out[convenience[0]] = header_value(convenience[1], await body.fields(0))
    if "headers" in wanted:
        out["headers"] = raw_headers(await body.fields(0))
    for name, prop in view.headers.items():
        out[name] = header_value(prop, await body.fields(0))
    if "bodyStructure" in wanted:
        out["bodyStructure"] = await body.structure()
    for name, indices in (("textBody", summary.text_body), ("htmlBody", summary.html_body),
                          ("attachments", summary.attachments)):
        if name in wanted:
            out[name] = await body.parts(indices)
    if "bodyValues" in wanted:
        chosen = body.value_parts(view.fetch_text, view.fetch_html, view.fetch_all)
        out["bodyValues"] = await body.values(chosen, view.max_bytes)
    return out


class BlobReader:
    """A :class:`RangeReader` over one blob of the blob store."""

    def __init__(self, blobs: BlobStore, blob_id: str) -> None:
        self.blobs, self.blob_id = blobs, blob_id

    async def read(self, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        return await self.blobs.read_range(self.blob_id, start, end)


EmailKey = tuple[str, str]  # (account id, email id)
EMAILS = 20_000
"""Visible emails (:class:`Email`) one process keeps for Email/get: .state_cache."""


async def get_records(tr: Transaction, account_id: str, ids: Sequence[str], with_summary: bool,
                      known: Callable[[Email], bool] | None = None,
                      cache: StateCache[EmailKey, Email | None] | None = None
                      ) -> tuple[str, dict[str, tuple[Email, bytes | None]]]:
    """The state and each email found (in a mailbox) with its summary if ``with_summary``,
    but for those ``known`` says the caller has what it needs of already.  ``cache``
    holds emails as read at a state: those kept at the state read here are not read
    again (the account's state changes with every change of any email: .state_cache)."""
    state = await get_state(tr, account_id)
    emails: dict[str, Email | None] = {}
    missing: list[str] = []
    for email_id in ids:
        hit, email = (False, None) if cache is None else cache.get((account_id, email_id),
                                                                   state)
        if hit:
            emails[email_id] = email
        else:
            missing.append(email_id)
    if missing:
        storages: dict[int, str | None] = {}  # this transaction's storage -> mailbox reads
        deleted: dict[int, frozenset[int] | None] = {}  # and storage -> its \Deleted UIDs
        read = await get_visible_emails(tr, account_id, missing, storages=storages,
                                        deleted=deleted)
        for email_id, email in zip(missing, read, strict=True):
            emails[email_id] = email
            if cache is not None:
                cache.put((account_id, email_id), state, email)
    found: dict[str, tuple[Email, bytes | None]] = {}
    for email_id in ids:
        email = emails[email_id]
        if email is None or not email.mailboxes:
            continue
        wanted = with_summary and (known is None or not known(email))
        found[email_id] = (email, await get_summary(tr, account_id, email_id)
                           if wanted else None)
    return state, found


AnswerKey = tuple[str, tuple[str, ...], tuple[str, ...]]  # account, ids, properties
Answer = tuple[list[JsonValue], list[JsonValue]]  # list, notFound
ANSWERS = 256
"""Email/get answers of a list view one process keeps (.state_cache).  Their objects are
shared by every response that gives them: nothing changes a response once made (the
values a result reference takes from one are copied: .references)."""
ANSWER_IDS = 500
"""Email/get answers of at most this many ids are kept (a page of a list view)."""


async def _kept_or_records(tr: Transaction, account_id: str, ids: Sequence[str],
                           with_summary: bool, known: Callable[[Email], bool] | None,
                           emails: StateCache[EmailKey, Email | None],
                           key: AnswerKey | None, answers: StateCache[AnswerKey, Answer]
                           ) -> tuple[str, dict[str, tuple[Email, bytes | None]],
                                      Answer | None]:
    """The answer kept for ``key`` at the state read here, or :func:`get_records`."""
    if key is not None:
        state = await get_state(tr, account_id)
        _, kept = answers.get(key, state)
        if kept is not None:
            return state, {}, kept
    state, found = await get_records(tr, account_id, ids, with_summary, known, emails)
    return state, found, None


def load_summary(raw: bytes | None) -> MessageSummary | None:
    if raw is None:
        return None
    try:
        return MessageSummary.from_bytes(raw)
    except ValueError:
        return None


class EmailGet:
    name = "Email/get"
    capability = MAIL

    def __init__(self, store: MailStore, blobs: BlobStore,
                 heads: HeadCache | None = None) -> None:
        self.store, self.blobs = store, blobs
        self.heads = HeadCache() if heads is None else heads
        self.emails: StateCache[EmailKey, Email | None] = StateCache("email", EMAILS)
        self.answers: StateCache[AnswerKey, Answer] = StateCache("answer", ANSWERS)

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, GET_ARGUMENTS)
        account = account_arg(ctx, args)
        ids = ids_arg(ctx, args)
        listed: str | None = None  # the state of the listing for ids null
        if ids is None:
            listed, ids = await all_email_ids(self.store, ctx, account.id)
        view = view_arg(args, DEFAULT_PROPERTIES)
        # a list view: from the records, and the summaries of the emails whose
        # properties this process has not cached (they never change: .email_heads)
        held: dict[str, tuple[Email, Head]] = {}

        def known(email: Email) -> bool:
            head = self.heads.get(account.id, email)
            if head is None or not head.usable(view.properties):
                return False
            held[email.id] = (email, head)
            return True
        # a list view of given ids: the whole answer, kept at the state it was made at
        key = (account.id, tuple(ids), view.properties) \
            if view.head_only and listed is None and len(ids) <= ANSWER_IDS else None
        state, found, kept = await self.store.run(
            account.id, _kept_or_records, ids, view.needs_summary,
            known if view.head_only else None, self.emails, key, self.answers)
        if kept is not None:
            return {"accountId": account.id, "state": state, "list": kept[0],
                    "notFound": kept[1]}
        wanted = [i for i in dict.fromkeys(ids) if i in found]
        heads: dict[str, JsonObject] = {}
        if view.head_only:
            plan = _head_plan(view.properties)
            misses = 0
            for i in wanted:
                email, raw = found[i]
                cached = held.get(i)
                if cached is not None and cached[0] is email:  # read in the last attempt
                    heads[i] = self._from_head(email, cached[1], plan)
                    continue
                misses += 1
                head = self._head(raw)
                if head is not None:
                    self.heads.put(account.id, email, head)
                    if head.usable(view.properties):
                        heads[i] = self._from_head(email, head, plan)
            self.heads.count(len(wanted) - misses, misses)
        gate = asyncio.Semaphore(READS_AT_ONCE)  # blob reads of several emails overlap
        rest = [i for i in wanted if i not in heads]
        heads.update(zip(rest, await asyncio.gather(
            *(self._record(*found[i], view, gate) for i in rest)), strict=True))
        records: list[JsonValue] = [heads[i] for i in wanted]
        not_found: list[JsonValue] = [i for i in dict.fromkeys(ids) if i not in found]
        if key is not None:
            self.answers.put(key, state, (records, not_found))
        return {"accountId": account.id, "state": listed or state, "list": records,
                "notFound": not_found}

    @staticmethod
    def _head(raw: bytes | None) -> Head | None:
        """The summary-derived list-view properties of a stored summary: every header
        convenience property, preview and hasAttachment; None for a summary that is
        damaged (:meth:`_record` serves it)."""
        if raw is None:  # stored without one: its properties are null
            return Head({"hasAttachment": False, "preview": ""}, frozenset())
        try:
            envelope, preview, has_attachment = head_from_bytes(raw)
        except ValueError:
            return None
        repeated = frozenset(CONVENIENCE_HEADERS[f][0] for f in envelope.repeated
                             if f in CONVENIENCE_HEADERS)
        return Head(head_properties(envelope, preview, has_attachment), repeated)

    @staticmethod
    def _from_head(email: Email, head: Head, plan: _HeadPlan) -> JsonObject:
        """:meth:`_record` of a :attr:`EmailView.head_only` view from the email's record
        and the properties of its summary (only the wanted ones: 50 emails per list
        view, so the plan of which is which is made once per call: 200 -> 95 us)."""
        out: JsonObject = {p: value(email) for p, value in plan.record}
        held = head.properties
        for p in plan.summary:  # held (null if the email has no summary)
            value = held.get(p)
            out[p] = copy_value(value) if type(value) is list else value
        return out

    async def _record(self, email: Email, raw: bytes | None, view: EmailView,
                      gate: asyncio.Semaphore) -> JsonObject:
        record = record_properties(email)
        summary = load_summary(raw)
        if summary is None:  # stored without one: its properties are null
            record.update(hasAttachment=False, preview="")
        else:
            async with gate:
                try:
                    record.update(await render_email(summary, email.blob_id,
                                                     BlobReader(self.blobs, email.blob_id),
                                                     view))
                except BlobError as e:
                    raise MethodError("serverFail", f"the message is unreadable: {e}") from e
        return {p: record.get(p) for p in view.properties}
