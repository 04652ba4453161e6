"""The one way into a mailbox (DESIGN.md, "One way into a mailbox").

SMTP/LMTP delivery, IMAP APPEND, JMAP Email/import and migration all call
:meth:`Delivery.deliver` with a :class:`~.request.DeliveryRequest`; it returns
one typed result per recipient (:mod:`.request`) and runs, in this order:

1. the body: the request's bytes, or the bytes of the blob it names; parse the
   summary once (``server.mime.parse_message``);
2. per recipient, for incoming mail only (SMTP, LMTP), the Sieve filter
   (:class:`~.hooks.SieveFilter`, given to the pipeline; no-op for now);
3. per recipient, encryption at rest (:class:`~.hooks.AtRestEncryption`, given
   to the pipeline; it decides per account; no-op for now);
4. put each distinct blob once, for every recipient that stores it;
5. per recipient, one idempotent index entry (run while the blob is being
   written -- its id is its SHA-256 -- and committed only after the put
   returned, so the index never refers to a blob that is not durable): ensure
   the account, resolve the target mailboxes, append (blob reference, counters,
   thread, change log), all guarded by the idempotency id's marker, so a
   repeated call stores nothing new and returns the same values.  Entries of
   one account are committed one transaction at a time; entries that queue up
   meanwhile, of any accounts, share the next transaction
   (:mod:`server.delivery.writer`), which never commits half of an entry.  If
   the blob collector is deleting the blob right then, the entry waits a
   little, puts the blob again and retries;
6. wake listeners: the append bumps the account's modseq key, which IMAP IDLE
   and JMAP push watch (``fdb_layers.mail.accounts.watch_account``); in-process
   listeners added with :meth:`Delivery.add_listener` are called after commit.

``deliver`` returns only after blob and index are durable; one recipient's
failure never affects another's.  Failures become :class:`~.request.Refused`
with a domain error (:mod:`.errors`): the mail layer's refusals as they are,
store and blob store failures as :class:`~.errors.TemporaryFailure`.

Droppable node-local state: the role mailboxes of recently seen accounts
(``fdb_layers.mail.messages.RoleMailbox``), a hint that saves a lookup and that the
transaction checks against the mailbox's record.

Blob store without an atomic delete-if-older (``BlobCapabilities``; S3): the
collector's age check and its DELETE are two requests, and a put of the same
bytes landing between them, with an index commit after the collector
finished, would leave a reference to a deleted blob (see
``fdb_layers.blobs.refs``).  After such a store's index commit the pipeline
checks that the blob is there and puts it again if not (it still holds the
bytes).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from fdb_layers.mail import (
    Engine,
    Transaction,
    Appended,
    BlobBeingDeleted,
    EmailExists,
    MailError,
    NewEmail,
    Placement,
    RoleMailbox,
    StorageFull,
    StoreUnavailable,
    ThreadHeaders,
    deliver_email,
    email_id_for,
    ensure_account,
    get_email,
    get_mailbox,
    transact,
)
from server.blobs import BlobStore
from server.blobs.base import BlobError, BlobNotFound, BlobRef
from server.mime import MessageSummary, parse_message

from .errors import (
    DeliveryError,
    InvalidRequest,
    MessageTooLarge,
    NoSuchBlob,
    TemporaryFailure,
    Unavailable,
)
from .hooks import (
    AtRestEncryption,
    DeliveredHook,
    NoEncryption,
    NoSieve,
    SieveFilter,
    Target,
)
from .request import (
    FILTERED,
    DeliveryRequest,
    DeliveryResult,
    Discarded,
    Refused,
    Stored,
)
from .writer import AccountWriter

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "fdbmail_delivery_recipients_total",
    "Recipients a delivery was attempted for, by result (stored, duplicate, temporary, permanent).",
    ["result"],
)
DELIVERY_SECONDS = Histogram(
    "fdbmail_delivery_seconds",
    "Time to deliver one message to all its recipients (parse, blob, index).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
_STORED = DELIVERIES.labels("stored")
_DUPLICATE = DELIVERIES.labels("duplicate")
_PERMANENT = DELIVERIES.labels("permanent")
_TEMPORARY = DELIVERIES.labels("temporary")

PARSE_IN_THREAD_BYTES = 1_000_000  # parse larger messages off the event loop
BLOB_RETRIES = 3  # a blob being collected is put again this many times
BLOB_RETRY_SECONDS = 0.05  # first wait before that put (doubled each time, jittered)
MAX_HINTS = 10_000  # role mailboxes remembered (dropped all at once when full)


@dataclass(frozen=True, slots=True)
class _Plan:
    account_id: str
    target: Target
    raw: bytes


def _retrieve(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def thread_headers(summary: MessageSummary) -> ThreadHeaders:
    """What threading reads from a parsed message."""
    env = summary.envelope
    ids = env.message_ids
    return ThreadHeaders(
        message_id=ids[0] if ids else None,
        in_reply_to=env.in_reply_to_ids,
        references=env.reference_ids,
        subject=env.decoded_subject or "",
    )


async def _store_index(
    tr: Transaction,
    *,
    account_id: str,
    target: Target,
    email: NewEmail,
    delivery_id: str,
    quota: int,
    uidvalidity_seed: int,
    hint: RoleMailbox | None,
) -> tuple[Appended, RoleMailbox | None]:
    """One recipient's transaction: account, target mailboxes, append (idempotent)."""
    first, *also = target.mailbox_ids or (None,)
    return await deliver_email(
        tr,
        account_id,
        email,
        delivery_id=delivery_id,
        role=target.role,
        mailbox_id=first,
        also_in=[m for m in also if m is not None],
        quota=quota or None,  # the directory's 0: unlimited
        uidvalidity_seed=uidvalidity_seed,
        hint=hint,
    )


async def _existing(tr: Transaction, account_id: str, email_id: str) -> Stored | None:
    """The email a delivery made earlier, as it is now (its marker has expired)."""
    email = await get_email(tr, account_id, email_id)
    if email is None:
        return None
    places = []
    for mailbox_id, uid in email.mailboxes.items():
        box = await get_mailbox(tr, account_id, mailbox_id)
        places.append(Placement(mailbox_id, box.uidvalidity, uid, email.modseq))
    return Stored(account_id, email.id, email.thread_id, email.blob_id, tuple(places))


def _stored(account_id: str, appended: Appended, blob_id: str) -> Stored:
    return Stored(account_id, appended.email_id, appended.thread_id, blob_id,
                  appended.placements)


class Delivery:
    """The pipeline of a node: one per process, shared by every protocol.

    ``sieve`` and ``encryption`` are the two seams (:mod:`.hooks`);
    ``max_size`` (bytes, 0: none) refuses larger messages with
    :class:`~.errors.MessageTooLarge`, whatever the protocol's own limit."""

    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        *,
        clock: Callable[[], float] = time.time,
        sieve: SieveFilter | None = None,
        encryption: AtRestEncryption | None = None,
        max_size: int = 0,
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.clock = clock
        self.sieve: SieveFilter = sieve or NoSieve()
        self.encryption: AtRestEncryption = encryption or NoEncryption()
        self.max_size = max_size
        self._listeners: list[Callable[[str], None]] = []
        self._delivered_hooks: list[DeliveredHook] = []
        self._writer = AccountWriter(engine)  # one transaction per account at a time
        self._hints: dict[tuple[str, str], RoleMailbox] = {}
        # a store whose delete_if_older is atomic with respect to puts needs no
        # re-check after the index commit (server.blobs.base.BlobCapabilities)
        self._recheck_blobs = not blobs.capabilities.atomic_delete_if_older

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(account_id)`` after each committed new email (in-process
        wake-ups; other nodes watch the account's modseq key)."""
        self._listeners.append(listener)

    def add_delivered_hook(self, hook: DeliveredHook) -> None:
        """Run ``hook`` after incoming mail (SMTP, LMTP) is durable (:mod:`.hooks`)."""
        self._delivered_hooks.append(hook)

    # --- the pipeline -------------------------------------------------------------

    async def deliver(self, request: DeliveryRequest) -> list[DeliveryResult]:
        """Store the request's message for each recipient; one result per
        recipient, in order, once everything stored is durable."""
        started = time.perf_counter()
        account_ids = request.account_ids
        try:
            raw = await self._body(request)
        except DeliveryError as e:
            return [self._failure(a, e) for a in account_ids]
        received = self.clock() if request.received_at is None else request.received_at
        if len(raw) > PARSE_IN_THREAD_BYTES:
            summary = await asyncio.to_thread(parse_message, raw)
        else:
            summary = parse_message(raw)
        base = Target(request.role, tuple(dict.fromkeys(request.mailbox_ids)), request.keywords)
        filtered = request.source in FILTERED
        results: dict[str, DeliveryResult] = {}
        plans: list[tuple[_Plan, MessageSummary]] = []
        for account_id in dict.fromkeys(account_ids):
            try:
                target = base
                if filtered:
                    target = await self.sieve.filter(account_id, request, summary, raw, base)
                if target.discard:
                    results[account_id] = Discarded(account_id)
                    continue
                body, own_summary = await self.encryption.encrypt(account_id, raw, summary)
                plans.append((_Plan(account_id, target, body), own_summary))
            except Exception as e:
                results[account_id] = self._failure(account_id, e)

        by_body: dict[bytes, list[tuple[_Plan, MessageSummary]]] = {}
        for plan, own_summary in plans:
            by_body.setdefault(plan.raw, []).append((plan, own_summary))
        quotas = {r.account_id: r.quota for r in request.recipients}
        for body, group in by_body.items():
            results.update(await self._store_group(
                body, group, request.idempotency_id, received, quotas))
        DELIVERY_SECONDS.observe(time.perf_counter() - started)
        if filtered and self._delivered_hooks:
            await self._after(request, raw, [a for a, r in results.items()
                                             if isinstance(r, Stored)])
        return [results[a] for a in account_ids]

    async def _after(self, request: DeliveryRequest, raw: bytes, stored: list[str]) -> None:
        if not stored:
            return
        for hook in self._delivered_hooks:
            try:
                await hook.delivered(request, raw, stored)
            except Exception:
                log.exception("delivered hook %s failed for delivery %s",
                              type(hook).__name__, request.idempotency_id)

    async def _body(self, request: DeliveryRequest) -> bytes:
        body = request.body
        if isinstance(body, BlobRef):
            # read back and put again below like any body: the put refreshes the
            # blob, so that the collector leaves it alone until the index refers to it
            try:
                raw = await self.blobs.get(body.id)
            except BlobNotFound:
                raise NoSuchBlob(body.id) from None
            except (BlobError, OSError) as e:
                raise _unavailable(e) from e
        else:
            raw = body
        if self.max_size and len(raw) > self.max_size:
            raise MessageTooLarge(len(raw), self.max_size)
        return raw

    async def _store_group(
        self,
        body: bytes,
        group: list[tuple[_Plan, MessageSummary]],
        delivery_id: str,
        received: float,
        quotas: dict[str, int],
    ) -> dict[str, DeliveryResult]:
        # The blob's id is the SHA-256 of its bytes: the index entries are built
        # while the blob store writes, and commit once the put has returned.
        if len(body) > PARSE_IN_THREAD_BYTES:
            blob_id = await asyncio.to_thread(_sha256, body)
        else:
            blob_id = _sha256(body)
        ref = BlobRef(blob_id, len(body))
        put = asyncio.ensure_future(self._put(body, blob_id))
        put.add_done_callback(_retrieve)  # its error is reported below, unless we are cancelled

        seed = max(1, int(received))  # the first UIDVALIDITY of a new account
        email_id = email_id_for(delivery_id)
        encoded: dict[int, tuple[bytes, ThreadHeaders]] = {}  # per summary object
        committed = False

        async def one(plan: _Plan, summary: MessageSummary) -> DeliveryResult:
            nonlocal committed
            account_id = plan.account_id
            if id(summary) not in encoded:
                encoded[id(summary)] = (summary.to_bytes(), thread_headers(summary))
            summary_bytes, headers = encoded[id(summary)]
            email = NewEmail(
                email_id=email_id,
                blob_id=ref.id,
                size=ref.size,
                received_at=received,
                delivered_at=self.clock(),
                summary=summary_bytes,
                headers=headers,
                keywords=plan.target.keywords,
            )
            hint_key = (account_id, plan.target.role)
            for attempt in range(BLOB_RETRIES + 1):
                entry = functools.partial(
                    _store_index,
                    account_id=account_id,
                    target=plan.target,
                    email=email,
                    delivery_id=delivery_id,
                    quota=quotas.get(account_id, 0),
                    uidvalidity_seed=seed,
                    hint=None if plan.target.mailbox_ids else self._hints.get(hint_key),
                )
                try:
                    result = await self._writer.commit(
                        account_id, entry, len(email.summary), ready=put if attempt == 0 else None
                    )
                except EmailExists:
                    # the delivery's marker expired, but its email is still there
                    return await self._duplicate(account_id, email_id)
                except BlobBeingDeleted as e:
                    if attempt == BLOB_RETRIES:
                        return self._failure(account_id, e)
                    # the collector is deleting it right now: let it finish, then put
                    # the blob again (a fresh put is never collected) and retry
                    delay = BLOB_RETRY_SECONDS * 2**attempt
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    try:
                        await self.blobs.put(body)
                    except Exception as put_error:
                        log.exception("blob put failed for delivery %s", delivery_id)
                        return self._failure(account_id, put_error)
                    continue
                except MailError as e:
                    if not plan.target.mailbox_ids and hint_key not in self._hints:
                        await self._ensure_account(account_id, seed)
                    return self._failure(account_id, e)
                except Exception as e:
                    return self._failure(account_id, e)
                assert isinstance(result, tuple)
                appended, role_mailbox = result
                committed = True
                if role_mailbox is not None:
                    if len(self._hints) >= MAX_HINTS:
                        self._hints.clear()
                    self._hints[hint_key] = role_mailbox
                (_STORED if appended.created else _DUPLICATE).inc()
                # even for a "duplicate": a lost commit reply makes a first delivery
                # look like one, and a spurious wake-up costs a poll
                self._wake(account_id)
                return _stored(account_id, appended, ref.id)
            raise AssertionError("unreachable")

        results = await asyncio.gather(*(one(p, s) for p, s in group))
        try:
            await put
        except Exception:
            log.exception("blob put failed for delivery %s", delivery_id)
            return {r.account_id: r for r in results}
        # (a "duplicate" too: it may be this delivery's own commit whose reply was lost)
        if committed and self._recheck_blobs:
            results = await self._recheck_blob(body, ref.id, delivery_id, results)
        return {r.account_id: r for r in results}

    async def _put(self, body: bytes, blob_id: str) -> object:
        ref = await self.blobs.put(body)
        if ref.id != blob_id:
            raise RuntimeError(f"blob store gave id {ref.id} for a blob of SHA-256 {blob_id}")
        return ref

    async def _duplicate(self, account_id: str, email_id: str) -> DeliveryResult:
        _DUPLICATE.inc()
        try:
            found = await transact(self.engine, _existing, account_id, email_id)
        except Exception as e:
            return self._failure(account_id, e)
        if found is None:  # destroyed meanwhile: delivered, then gone; nothing to report
            return Discarded(account_id)
        return found

    async def _ensure_account(self, account_id: str, seed: int) -> None:
        """A refused first delivery still creates the account, as a stored one does
        (best effort: the refusal stands whatever happens here)."""
        entry = functools.partial(ensure_account, account_id=account_id, uidvalidity_seed=seed)
        try:
            await self._writer.commit(account_id, entry)
        except Exception:
            log.warning("creating account %s after a refusal failed", account_id, exc_info=True)

    async def _recheck_blob(
        self, body: bytes, blob_id: str, delivery_id: str, results: list[DeliveryResult]
    ) -> list[DeliveryResult]:
        """After the index commit, on a store whose collector may have deleted the
        blob just before it: put it again if it is gone (see the module docstring)."""
        try:
            if not await self.blobs.exists(blob_id):
                log.warning("blob %s vanished before delivery %s committed; put again",
                            blob_id, delivery_id)
                await self.blobs.put(body)
        except Exception as e:
            log.exception("blob re-check failed for delivery %s", delivery_id)
            return [self._failure(r.account_id, e) if isinstance(r, Stored) else r
                    for r in results]
        return results

    def _wake(self, account_id: str) -> None:
        for listener in self._listeners:
            try:
                listener(account_id)
            except Exception:
                log.exception("delivery listener failed")

    def _failure(self, account_id: str, error: BaseException) -> Refused:
        """The refusal for ``error``: domain errors as they are, the rest temporary."""
        if isinstance(error, MailError | DeliveryError):
            refused = Refused(account_id, error)
        elif isinstance(error, ValueError):  # a keyword or id the layer refuses
            refused = Refused(account_id, InvalidRequest(str(error) or type(error).__name__))
        else:
            temporary = _unavailable(error)
            if temporary.kind is Unavailable.INTERNAL:
                log.error("delivery to %s failed", account_id, exc_info=error)
            elif not isinstance(error, StorageFull):  # the engine logs a full disk, per interval
                log.warning("delivery to %s failed temporarily: %r", account_id, error)
            refused = Refused(account_id, temporary)
        (_TEMPORARY if refused.temporary else _PERMANENT).inc()
        return refused


def _unavailable(error: BaseException) -> TemporaryFailure:
    """A store's or blob store's failure (or our bug) as a domain error."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return TemporaryFailure(Unavailable.STORAGE_FULL, str(error))
    if isinstance(error, StorageFull):  # the metadata store's disk
        return TemporaryFailure(Unavailable.STORAGE_FULL, str(error))
    if isinstance(error, StoreUnavailable | BlobBeingDeleted):
        return TemporaryFailure(Unavailable.STORE, str(error))
    if isinstance(error, BlobError | OSError):
        return TemporaryFailure(Unavailable.BLOBS, str(error))
    return TemporaryFailure(Unavailable.INTERNAL, type(error).__name__)
