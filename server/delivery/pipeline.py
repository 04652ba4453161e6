"""The one way into a mailbox (DESIGN.md, "One way into a mailbox").

SMTP/LMTP delivery, IMAP APPEND, JMAP Email/import and migration all call
:meth:`Delivery.deliver`, which runs, in this order:

1. parse the summary once (``server.mime.parse_message``);
2. per recipient, the Sieve hook (:meth:`Delivery.run_sieve`; no-op for now);
3. per recipient, the encryption-at-rest hook (:meth:`Delivery.encrypt_at_rest`;
   no-op for now);
4. put each distinct blob once, for every recipient that stores it;
5. per recipient, one idempotent index entry (run while the blob is being
   written -- its id is its SHA-256 -- and committed only after the put
   returned, so the index never refers to a blob that is not durable): ensure
   the account, resolve the target mailbox, append (blob reference, counters,
   thread, change log), all guarded by the delivery id's marker, so a repeated
   call stores nothing new and returns the same email ids.  Entries of one
   account are committed one transaction at a time; entries that queue up
   meanwhile, of any accounts, share the next transaction
   (:mod:`server.delivery.writer`).  If the blob collector is deleting the
   blob right then, the entry waits a little, puts the blob again and retries;
6. wake listeners: the append bumps the account's modseq key, which IMAP IDLE
   and JMAP push watch (``fdb_layers.accounts.watch_account``); in-process
   listeners added with :meth:`Delivery.add_listener` are called after commit.

``deliver`` returns only after blob and index are durable; one recipient's
failure never affects another's.

Droppable node-local state: the role mailboxes of recently seen accounts
(``fdb_layers.messages.RoleMailbox``), a hint that saves a lookup and that the
transaction checks against the mailbox's record.

Blob store without an atomic delete-if-older (S3): the collector's age check
and its DELETE are two requests, and a put of the same bytes landing between
them, with an index commit after the collector finished, would leave a
reference to a deleted blob (see ``fdb_layers.blobrefs``).  After such a
store's index commit the pipeline checks that the blob is there and puts it
again if not (it still holds the bytes).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from fdb_layers.blobrefs import BlobBeingDeleted
from fdb_layers.engine.base import Engine, LayoutVersionError, StoreError, Transaction
from fdb_layers.mail_errors import (
    EmailExists,
    MailboxNotFound,
    MailboxNotSelectable,
    MailError,
    QuotaExceeded,
)
from fdb_layers.messages import Appended, NewEmail, RoleMailbox, deliver_email, email_id_for
from fdb_layers.threads import ThreadHeaders
from server.blobs import BlobStore
from server.blobs.base import BlobRef
from server.mime import MessageSummary, parse_message

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
class DeliveryOutcome:
    account_id: str
    ok: bool
    email_id: str | None = None
    error: str | None = None  # human-readable reason
    permanent: bool = False  # True: 5xx (e.g. over quota, mailbox gone); False: 4xx


@dataclass(frozen=True, slots=True)
class Target:
    """Where one recipient's copy goes (what Sieve may change)."""

    mailbox_role: str = "inbox"
    mailbox_id: str | None = None
    keywords: tuple[str, ...] = ()
    discard: bool = False


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
    quota: int | None,
    uidvalidity_seed: int,
    hint: RoleMailbox | None,
) -> tuple[Appended, RoleMailbox | None]:
    """One recipient's transaction: account, target mailbox, append (idempotent)."""
    return await deliver_email(
        tr,
        account_id,
        email,
        delivery_id=delivery_id,
        role=target.mailbox_role,
        mailbox_id=target.mailbox_id,
        quota=quota or None,  # the directory's 0: unlimited
        uidvalidity_seed=uidvalidity_seed,
        hint=hint,
    )


class Delivery:
    def __init__(
        self, engine: Engine, blobs: BlobStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.clock = clock
        self._listeners: list[Callable[[str], None]] = []
        self._writer = AccountWriter(engine)  # one transaction per account at a time
        self._hints: dict[tuple[str, str], RoleMailbox] = {}
        # a store whose delete_if_older is atomic with respect to puts needs no
        # re-check after the index commit (server.blobs.base.BlobCapabilities)
        self._recheck_blobs = not blobs.capabilities.atomic_delete_if_older

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(account_id)`` after each committed new email (in-process
        wake-ups; other nodes watch the account's modseq key)."""
        self._listeners.append(listener)

    # --- hooks ----------------------------------------------------------------------

    async def run_sieve(
        self, account_id: str, summary: MessageSummary, raw: bytes, target: Target
    ) -> Target:
        """Hook: the recipient's Sieve script (RFC 5228) picks the target. No-op for now."""
        return target

    async def encrypt_at_rest(
        self, account_id: str, raw: bytes, summary: MessageSummary
    ) -> tuple[bytes, MessageSummary]:
        """Hook: encrypt the body for an account that asks for it (and cut the
        summary to what stays readable). No-op for now."""
        return raw, summary

    # --- the pipeline -------------------------------------------------------------

    async def deliver(
        self,
        raw: bytes,
        account_ids: Sequence[str],
        *,
        delivery_id: str,
        mailbox_role: str = "inbox",
        mailbox_id: str | None = None,
        keywords: Sequence[str] = (),
        received_at: float | None = None,
        quotas: Mapping[str, int] | None = None,
    ) -> list[DeliveryOutcome]:
        """Store ``raw`` for each account; one outcome per account, in order."""
        started = time.perf_counter()
        received = self.clock() if received_at is None else received_at
        if len(raw) > PARSE_IN_THREAD_BYTES:
            summary = await asyncio.to_thread(parse_message, raw)
        else:
            summary = parse_message(raw)
        unique = list(dict.fromkeys(account_ids))
        base = Target(mailbox_role, mailbox_id, tuple(keywords))
        outcomes: dict[str, DeliveryOutcome] = {}
        plans: list[tuple[_Plan, MessageSummary]] = []
        for account_id in unique:
            try:
                target = await self.run_sieve(account_id, summary, raw, base)
                if target.discard:
                    outcomes[account_id] = DeliveryOutcome(account_id, ok=True)
                    continue
                body, own_summary = await self.encrypt_at_rest(account_id, raw, summary)
                plans.append((_Plan(account_id, target, body), own_summary))
            except Exception as e:
                outcomes[account_id] = self._failure(account_id, e)

        by_body: dict[bytes, list[tuple[_Plan, MessageSummary]]] = {}
        for plan, own_summary in plans:
            by_body.setdefault(plan.raw, []).append((plan, own_summary))
        for body, group in by_body.items():
            results = await self._store_group(body, group, delivery_id, received, quotas or {})
            outcomes.update(results)
        DELIVERY_SECONDS.observe(time.perf_counter() - started)
        return [outcomes[a] for a in account_ids]

    async def _store_group(
        self,
        body: bytes,
        group: list[tuple[_Plan, MessageSummary]],
        delivery_id: str,
        received: float,
        quotas: Mapping[str, int],
    ) -> dict[str, DeliveryOutcome]:
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

        async def one(plan: _Plan, summary: MessageSummary) -> DeliveryOutcome:
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
            hint_key = (account_id, plan.target.mailbox_role)
            for attempt in range(BLOB_RETRIES + 1):
                entry = functools.partial(
                    _store_index,
                    account_id=account_id,
                    target=plan.target,
                    email=email,
                    delivery_id=delivery_id,
                    quota=quotas.get(account_id),
                    uidvalidity_seed=seed,
                    hint=None if plan.target.mailbox_id else self._hints.get(hint_key),
                )
                try:
                    result = await self._writer.commit(
                        account_id, entry, len(email.summary), ready=put if attempt == 0 else None
                    )
                except EmailExists:
                    # the delivery's marker expired, but its email is still there
                    _DUPLICATE.inc()
                    return DeliveryOutcome(account_id, ok=True, email_id=email.email_id)
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
                return DeliveryOutcome(account_id, ok=True, email_id=appended.email_id)
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

    async def _recheck_blob(
        self, body: bytes, blob_id: str, delivery_id: str, results: list[DeliveryOutcome]
    ) -> list[DeliveryOutcome]:
        """After the index commit, on a store whose collector may have deleted the
        blob just before it: put it again if it is gone (see the module docstring)."""
        try:
            if not await self.blobs.exists(blob_id):
                log.warning("blob %s vanished before delivery %s committed; put again",
                            blob_id, delivery_id)
                await self.blobs.put(body)
        except Exception as e:
            log.exception("blob re-check failed for delivery %s", delivery_id)
            return [self._failure(r.account_id, e) if r.ok else r for r in results]
        return results

    def _wake(self, account_id: str) -> None:
        for listener in self._listeners:
            try:
                listener(account_id)
            except Exception:
                log.exception("delivery listener failed")

    def _failure(self, account_id: str, error: BaseException) -> DeliveryOutcome:
        if isinstance(error, QuotaExceeded):
            outcome = DeliveryOutcome(account_id, False, error="mailbox full: over quota",
                                      permanent=True)
        elif isinstance(error, MailboxNotFound | MailboxNotSelectable):
            outcome = DeliveryOutcome(account_id, False, error="target mailbox does not exist",
                                      permanent=True)
        elif isinstance(error, MailError | ValueError):
            outcome = DeliveryOutcome(account_id, False, error=str(error) or type(error).__name__,
                                      permanent=True)
        elif isinstance(error, StoreError | LayoutVersionError | BlobBeingDeleted):
            log.warning("delivery to %s failed temporarily: %s", account_id, error)
            outcome = DeliveryOutcome(account_id, False, error="temporary store failure")
        else:
            log.error("delivery to %s failed", account_id, exc_info=error)
            outcome = DeliveryOutcome(account_id, False, error="internal error")
        (_PERMANENT if outcome.permanent else _TEMPORARY).inc()
        return outcome
