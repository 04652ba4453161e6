"""The delivery worker: every node process may run one; leases through the store
keep two workers off the same message.

A run leases due messages (:func:`lease_due`, a holder unique per call), groups each
message's open recipients by destination domain, sends to each domain's next hop
(at most ``concurrency_per_domain`` at once per domain), records the outcome
(:func:`record_attempt`), and after that commit sends the DSNs it calls for: to a
local sender through the delivery pipeline, to a remote one through the queue; never
to ``<>``.  Idle workers wait for the queue's watch, or ``poll_seconds``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from prometheus_client import Counter, Gauge, Histogram

from fdb_layers.mail import Engine, transact
from fdb_layers.queue import (
    DELAYED,
    DELIVERED,
    FAILED,
    LeaseLost,
    QueuedMessage,
    RecipientResult,
    count_queue,
    lease_due,
    record_attempt,
    watch_queue,
)
from server.blobs import BlobStore
from server.delivery import Delivery, DeliveryRequest, Recipient as DeliveryRecipient, Source
from server.directory.base import Directory
from server.outbound import dsn
from server.outbound.client import ClientOptions, HopFailed, send
from server.outbound.outbox import Outbox
from server.outbound.routing import RouteError, Router
from server.outbound.settings import OutboundSettings

log = logging.getLogger(__name__)

QUEUE_SIZE = Gauge(
    "fdbmail_outbound_queue_recipients",
    "Recipients in the outbound queue by state (pending, delayed, delivered and failed ones "
    "wait for the others of their message), as last seen by this process's worker.",
    ("state",),
)
QUEUE_MESSAGES = Gauge("fdbmail_outbound_queue_messages",
                       "Messages in the outbound queue, as last seen by this process's worker.")
DELIVERIES = Counter(
    "fdbmail_outbound_deliveries_total",
    "Recipient delivery attempts by result (delivered, deferred, failed).",
    ("result",),
)
ATTEMPT_SECONDS = Histogram(
    "fdbmail_outbound_attempt_duration_seconds",
    "Duration of one delivery attempt to one destination domain.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
NOTICES = Counter("fdbmail_outbound_dsn_total", "DSNs sent, by kind (failed, delayed).",
                  ("kind",))


@dataclass(slots=True)
class _DomainLimit:
    semaphore: asyncio.Semaphore
    users: int = 0


class DeliveryWorker:
    def __init__(self, engine: Engine, blobs: BlobStore, directory: Directory,
                 delivery: Delivery, settings: OutboundSettings, hostname: str, *,
                 node: str = "node", router: Router | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.blobs = blobs
        self.directory = directory
        self.delivery = delivery
        self.settings = settings
        self.retry = settings.retry()
        self.hostname = hostname
        self.node = node
        self.router = router or Router(settings)
        self.clock = clock
        self.outbox = Outbox(engine, blobs, clock)
        self.options = ClientOptions(settings.helo or hostname, settings.connect_timeout,
                                     settings.timeout, settings.tls_verify,
                                     settings.relay_username, settings.relay_password,
                                     settings.require_tls_for_relay)
        self._domains: dict[str, _DomainLimit] = {}
        self._stop = asyncio.Event()
        self.runs = 0

    # --- the loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Until :meth:`stop`: work while messages are due, else wait for a wake-up."""
        while not self._stop.is_set():
            watch = await watch_queue(self.engine)
            try:
                try:
                    leased = await self.run_once()
                except Exception:
                    log.exception("outbound worker run failed")
                    leased = 0
                if leased:
                    continue
                waits = [asyncio.ensure_future(watch.wait()),
                         asyncio.ensure_future(self._stop.wait())]
                await asyncio.wait(waits, timeout=self.settings.poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
            finally:
                watch.cancel()

    def stop(self) -> None:
        self._stop.set()

    async def run_once(self) -> int:
        """Lease what is due and try it; the number of messages leased."""
        holder = f"{self.node}/{uuid.uuid4().hex}"     # unique per call (see lease_due)
        leased = await transact(self.engine, lease_due, self.clock(), holder,
                                self.retry.lease_seconds, self.settings.batch)
        if leased:
            await asyncio.gather(*(self._attempt(holder, m) for m in leased))
        await self._gauge()
        self.runs += 1
        return len(leased)

    async def _gauge(self) -> None:
        counts = await transact(self.engine, count_queue)
        QUEUE_MESSAGES.set(counts.pop("messages", 0))
        for state, n in counts.items():
            QUEUE_SIZE.labels(state).set(n)

    # --- one message ------------------------------------------------------------------
    async def _attempt(self, holder: str, message: QueuedMessage) -> None:
        extra = {"queue_id": message.queue_id}
        try:
            body = await self.blobs.get(message.blob_id)
        except Exception:
            log.exception("queued %s: cannot read its body", message.queue_id, extra=extra)
            return      # the lease expires; tried again then
        by_domain: dict[str, list[int]] = {}
        for r in message.recipients:
            if r.state not in (DELIVERED, FAILED):
                by_domain.setdefault(r.address.rpartition("@")[2].lower(), []).append(r.index)
        results: dict[int, RecipientResult] = {}
        addresses = {r.index: r.address for r in message.recipients}
        await asyncio.gather(*(self._domain(message, domain, [addresses[i] for i in indexes],
                                            indexes, body, results)
                               for domain, indexes in by_domain.items()))
        try:
            outcome = await transact(self.engine, record_attempt, message.queue_id, holder,
                                     results, now=self.clock(), settings=self.retry)
        except LeaseLost:
            log.warning("queued %s: lease lost before its outcome was recorded",
                        message.queue_id, extra=extra)
            return
        for index in outcome.delivered:
            log.info("queued %s delivered to <%s>", message.queue_id, addresses[index],
                     extra=extra)
        updated = replace(message, recipients=tuple(
            replace(r, reply=results[r.index].reply) if r.index in results else r
            for r in message.recipients))
        await self._notify(updated, outcome.failed, outcome.delay_notice, body)

    async def _domain(self, message: QueuedMessage, domain: str, recipients: list[str],
                      indexes: list[int], body: bytes,
                      results: dict[int, RecipientResult]) -> None:
        limit = self._domains.setdefault(
            domain, _DomainLimit(asyncio.Semaphore(self.settings.concurrency_per_domain)))
        limit.users += 1
        started = time.perf_counter()
        try:
            async with limit.semaphore:
                replies = await self._send(domain, message.sender, recipients, body)
        finally:
            limit.users -= 1
            if not limit.users:         # no unbounded map of every domain ever seen
                del self._domains[domain]
        ATTEMPT_SECONDS.observe(time.perf_counter() - started)
        for index, address in zip(indexes, recipients, strict=True):
            reply = replies.get(address, "451 4.3.0 no reply")
            state = DELIVERED if reply[:1] == "2" else FAILED if reply[:1] == "5" else DELAYED
            DELIVERIES.labels({DELIVERED: "delivered", FAILED: "failed"}.get(
                state, "deferred")).inc()
            results[index] = RecipientResult(state, reply)
            log.info("queued %s to <%s>: %s", message.queue_id, address, reply[:200],
                     extra={"queue_id": message.queue_id})

    async def _send(self, domain: str, sender: str, recipients: list[str],
                    body: bytes) -> dict[str, str]:
        """Each recipient's reply from the first hop that took the transaction."""
        try:
            hops = await self.router.hops(domain)
        except RouteError as e:
            return dict.fromkeys(recipients, e.reply)
        last = HopFailed("451 4.4.1 no next hop")
        for hop in hops:        # RFC 5321 section 5.1: the next MX on failure
            try:
                return await send(hop, self.options, sender, recipients, body)
            except HopFailed as e:
                if e.permanent:
                    return dict.fromkeys(recipients, e.reply)
                last = e
        return dict.fromkeys(recipients, last.reply)

    # --- notices ----------------------------------------------------------------------
    async def _notify(self, message: QueuedMessage, failed: Sequence[int],
                      delayed: Sequence[int], original: bytes) -> None:
        if not message.sender:          # never a DSN about a DSN (RFC 3461 section 6.2)
            return
        for notice in dsn.notices(message, failed, delayed):
            report = dsn.build(message, notice, original, reporting_mta=self.hostname,
                               now=self.clock())
            try:
                await self._send_notice(message.sender, dsn.notice_id(message, notice), report)
            except Exception:
                log.exception("queued %s: the %s notice could not be sent", message.queue_id,
                              notice.kind, extra={"queue_id": message.queue_id})
                continue
            NOTICES.labels(notice.kind).inc()

    async def _send_notice(self, to: str, notice_id: str, report: bytes) -> None:
        principals = []
        domain = to.rpartition("@")[2]
        if await self.directory.is_local_domain(domain):
            principals = await self.directory.resolve_recipient(to)
        if principals:
            request = DeliveryRequest(
                Source.SMTP, b"Return-Path: <>\r\n" + report,
                tuple(DeliveryRecipient(p.id, max(0, p.quota)) for p in principals),
                notice_id)
            await self.delivery.deliver(request)
        else:
            await self.outbox.enqueue(notice_id, "", [to], report)


def start_worker(worker: DeliveryWorker) -> asyncio.Task[None]:
    return asyncio.create_task(worker.run(), name="outbound")


async def stop_worker(worker: DeliveryWorker, task: asyncio.Task[None]) -> None:
    worker.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
