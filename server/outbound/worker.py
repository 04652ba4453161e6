"""The delivery worker: every node process may run one; leases through the store
keep two workers off the same message.

A run leases due messages (:func:`lease_due`, a holder unique per call), groups each
message's open recipients by destination domain, sends to each domain's next hop
(at most ``concurrency_per_domain`` at once per domain), and records the outcome
(:func:`record_attempt`) and the DSNs it calls for in one commit: the DSNs are queued
messages from ``<>`` (never to ``<>``), so none is lost between the two.  Recipients
in local domains (a DSN to a local sender) are delivered through the delivery
pipeline.  Idle workers wait for the queue's watch, or ``poll_seconds``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

from fdb_layers.mail import MAX_DELIVERY_ID, Engine, Transaction, transact
from fdb_layers.queue import (
    DELAYED,
    DELIVERED,
    FAILED,
    AttemptOutcome,
    Envelope,
    LeaseLost,
    QueuedMessage,
    Recipient as QueueRecipient,
    RecipientResult,
    count_queue,
    enqueue_message,
    lease_due,
    renew_lease,
    record_attempt,
    watch_queue,
)
from fdb_layers.queue.schedule import is_expired, needs_delay_notice
from server.blobs import BlobStore
from server.blobs.base import BlobRef
from server.delivery import Delivery
from server.delivery.routing import Kind, Outcome, local_request, route, verdicts
from server.directory.base import Directory
from server.outbound import dsn
from server.outbound.client import ClientOptions, DsnOptions, HopFailed, send
from server.outbound.dane import Dane, send_with_dane
from server.outbound.mtasts import PolicySource, send_under_policy
from server.outbound.pool import ConnectionPool
from server.outbound.routing import Hop, RouteError, Router, make_resolver
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
# a local recipient's reply (see DeliveryWorker._local), as SMTP would give it
_LOCAL_REPLIES = {
    Outcome.ACCEPTED: "250 2.0.0 delivered locally",
    Outcome.TEMPORARY: "451 4.3.0 local delivery failed for now",
    Outcome.REFUSED: "550 5.0.0 local delivery refused",
}
# a directory lookup failed: where the recipient's mail goes is unknown for now
DIRECTORY_DOWN = "451 4.4.3 directory unavailable"


class _Wakeup(Protocol):
    """The queue's watch (``watch_queue``)."""

    async def wait(self) -> None: ...

    def cancel(self) -> None: ...


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
        self.options = ClientOptions(settings.helo or hostname, settings.connect_timeout,
                                     settings.timeout, settings.tls_verify,
                                     settings.relay_username, settings.relay_password,
                                     settings.require_tls_for_relay,
                                     rset_timeout=settings.rset_timeout)
        self._domains: dict[str, _DomainLimit] = {}
        self.policies = PolicySource(engine, settings, self.router.resolver, clock) \
            if settings.mta_sts else None
        self.dane = Dane(make_resolver(settings)) if settings.dane else None
        self._stop = asyncio.Event()
        self.runs = 0
        self.pool = ConnectionPool(settings.idle_seconds, settings.idle_connections_per_hop)

    # --- the loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Until :meth:`stop`: work while messages are due, else wait for a wake-up
        (the queue's watch) or ``poll_seconds``; errors are logged, never raised."""
        try:
            await self._loop()
        finally:
            await self.pool.close()     # QUIT to the idle connections

    async def _loop(self) -> None:
        while not self._stop.is_set():
            watch: _Wakeup | None = None
            leased = 0
            try:
                watch = await watch_queue(self.engine)
                leased = await self.run_once()
            except Exception:
                log.exception("outbound worker run failed")
            if leased:
                if watch is not None:
                    watch.cancel()
                continue
            waits: list[asyncio.Future[object]] = [asyncio.ensure_future(self._stop.wait())]
            if watch is not None:
                waits.append(asyncio.ensure_future(watch.wait()))
            try:
                await asyncio.wait(waits, timeout=self.settings.poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
                if watch is not None:
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
        keeper = asyncio.create_task(self._keep_lease(holder, message.queue_id))
        try:
            await self._attempt_held(holder, message)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep_lease(self, holder: str, queue_id: str) -> None:
        """Renew the lease every third of its length while the attempt runs: a long
        delivery (slow hosts, many of them) is not taken by another worker meanwhile,
        and a worker that dies still leaves it within one lease."""
        seconds = self.retry.lease_seconds
        while True:
            await asyncio.sleep(seconds / 3)
            try:
                held = await transact(self.engine, renew_lease, queue_id, holder,
                                      self.clock(), seconds)
            except Exception:
                log.exception("queued %s: renewing the lease failed", queue_id)
                continue
            if not held:
                return

    async def _attempt_held(self, holder: str, message: QueuedMessage) -> None:
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
        # a success to report if asked (RFC 3461 5.2.2): dsn.DELIVERED to a local
        # mailbox, dsn.RELAYED to a hop without DSN (one with DSN reports itself)
        success: dict[int, str] = {}
        addresses = {r.index: r.address for r in message.recipients}
        await asyncio.gather(*(self._domain(message, domain, [addresses[i] for i in indexes],
                                            indexes, body, results, success)
                               for domain, indexes in by_domain.items()))
        now = self.clock()
        notices = await self._prepare_notices(message, results, body, now, success)
        try:
            outcome = await transact(self.engine, self._record, message, holder, results,
                                     notices, now)
        except LeaseLost:
            log.warning("queued %s: lease lost before its outcome was recorded",
                        message.queue_id, extra=extra)
            return
        for index in outcome.delivered:
            log.info("queued %s delivered to <%s>", message.queue_id, addresses[index],
                     extra=extra)
        for notice, _, _ in notices:
            NOTICES.labels(notice.kind).inc()

    async def _record(self, tr: Transaction, message: QueuedMessage, holder: str,
                      results: dict[int, RecipientResult],
                      notices: list[tuple[dsn.Notice, str, BlobRef]],
                      now: float) -> AttemptOutcome:
        """The attempt's outcome and its DSNs, queued in the same commit: a notice is
        never lost between the two (a DSN to a local sender is delivered by the queue
        too, see :meth:`_local`)."""
        outcome = await record_attempt(tr, message.queue_id, holder, results, now=now,
                                       settings=self.retry)
        for notice, queue_id, ref in notices:
            wanted = outcome.failed if notice.kind == dsn.FAILED else \
                outcome.delivered if notice.kind in dsn.SUCCESS_KINDS else outcome.delay_notice
            if {r.index for r in notice.recipients} <= set(wanted):
                envelope = Envelope("", (QueueRecipient(message.sender),), ref.id, ref.size,
                                    now, now)
                await enqueue_message(tr, queue_id, envelope)
        return outcome

    async def _prepare_notices(self, message: QueuedMessage,
                               results: dict[int, RecipientResult], body: bytes,
                               now: float, success: dict[int, str] | None = None
                               ) -> list[tuple[dsn.Notice, str, BlobRef]]:
        """The DSNs this attempt calls for (what record_attempt will decide, from the same
        state and time), their bodies put in the blob store; never to ``<>`` (RFC 3461
        section 6.2)."""
        if not message.sender:
            return []
        expired = is_expired(self.retry, message.created_at, now)
        late = needs_delay_notice(self.retry, message.created_at, now)
        failed, delayed, updated = [], [], []
        delivered: list[int] = []
        passed_on: list[int] = []
        for r in message.recipients:
            state, reply = r.state, r.reply
            if state not in (DELIVERED, FAILED) and r.index in results:
                state, reply = results[r.index].state, results[r.index].reply
            if state not in (DELIVERED, FAILED) and expired:
                state, reply = FAILED, reply or "gave up: not delivered in time"
            if state == FAILED and r.state != FAILED:
                failed.append(r.index)
            if state == DELAYED and late and not r.delay_notified:
                delayed.append(r.index)
            kind = (success or {}).get(r.index)
            if state == DELIVERED and r.state != DELIVERED and kind is not None:
                (passed_on if kind == dsn.RELAYED else delivered).append(r.index)
            updated.append(replace(r, reply=reply))
        message = replace(message, recipients=tuple(updated))
        out = []
        for notice in dsn.notices(message, failed, delayed, delivered, passed_on):
            report = dsn.build(message, notice, body, reporting_mta=self.hostname, now=now)
            out.append((notice, dsn.notice_id(message, notice), await self.blobs.put(report)))
        return out

    async def _domain(self, message: QueuedMessage, domain: str, recipients: list[str],
                      indexes: list[int], body: bytes,
                      results: dict[int, RecipientResult],
                      success: dict[int, str] | None = None) -> None:
        limit = self._domains.setdefault(
            domain, _DomainLimit(asyncio.Semaphore(self.settings.concurrency_per_domain)))
        limit.users += 1
        started = time.perf_counter()
        options = DsnOptions(
            message.envid, message.ret,
            {r.address: r.notify for r in message.recipients if r.notify},
            {r.address: r.orcpt for r in message.recipients if r.orcpt})
        local: bool | None = False
        try:
            async with limit.semaphore:
                local = await self._is_local(domain)
                if local is None:       # the directory is down: no route is known
                    replies = dict.fromkeys(recipients, DIRECTORY_DOWN)
                elif local:
                    replies = await self._local(message, recipients, body)
                else:
                    replies = await self._send(domain, message.sender, recipients, body,
                                               options)
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
            if success is not None and (local or address in options.relayed):
                success[index] = dsn.DELIVERED if local else dsn.RELAYED
            log.info("queued %s to <%s>: %s", message.queue_id, address, reply[:200],
                     extra={"queue_id": message.queue_id})

    async def _send(self, domain: str, sender: str, recipients: list[str],
                    body: bytes, dsn_options: DsnOptions | None = None) -> dict[str, str]:
        """Each recipient's reply from the first hop that took the transaction."""
        try:
            hops = await self.router.hops(domain)
        except RouteError as e:
            return dict.fromkeys(recipients, e.reply)
        if self.dane is not None and hops and not hops[0].relay:
            replies = await self._send_dane(domain, hops, sender, recipients, body,
                                            dsn_options)
            if replies is not None:         # DANE takes precedence (RFC 8461 section 2)
                return replies
        if self.policies is not None and hops and not hops[0].relay:
            return await self._send_mta_sts(domain, hops, sender, recipients, body,
                                            dsn_options)
        last = HopFailed("451 4.4.1 no next hop")
        for hop in hops:        # RFC 5321 section 5.1: the next MX on failure
            try:
                return await send(hop, self.options, sender, recipients, body, dsn_options,
                                  pool=self.pool)
            except HopFailed as e:
                if e.permanent:
                    return dict.fromkeys(recipients, e.reply)
                last = e
        return dict.fromkeys(recipients, last.reply)

    async def _send_dane(self, domain: str, hops: list[Hop], sender: str,
                         recipients: list[str], body: bytes,
                         dsn_options: DsnOptions | None = None) -> dict[str, str] | None:
        """:meth:`_send` to MX hosts with DANE (RFC 7672); None where it does not apply."""
        assert self.dane is not None

        async def attempt(hop: Hop, tls: ssl.SSLContext | None,
                          check: Callable[[ssl.SSLObject], str | None] | None
                          ) -> dict[str, str]:
            return await send(hop, self.options, sender, recipients, body, dsn_options,
                              require_tls=tls, check_peer=check, pool=self.pool)

        try:
            return await send_with_dane(self.dane, domain, hops, attempt)
        except HopFailed as e:
            return dict.fromkeys(recipients, e.reply)

    async def _send_mta_sts(self, domain: str, hops: list[Hop], sender: str,
                            recipients: list[str], body: bytes,
                            dsn_options: DsnOptions | None = None) -> dict[str, str]:
        """:meth:`_send` to MX hosts under the domain's MTA-STS policy (RFC 8461)."""
        assert self.policies is not None
        try:
            policy = await self.policies.policy(domain)
        except Exception:
            log.exception("MTA-STS policy of %s unavailable", domain)
            return dict.fromkeys(recipients, "451 4.3.0 MTA-STS policy unavailable")

        async def attempt(hop: Hop, tls: ssl.SSLContext | None) -> dict[str, str]:
            return await send(hop, self.options, sender, recipients, body, dsn_options,
                              require_tls=tls, pool=self.pool)

        try:
            return await send_under_policy(domain, policy, self.policies.context, hops,
                                           attempt)
        except HopFailed as e:
            return dict.fromkeys(recipients, e.reply)

    # --- local recipients (DSNs to local senders) -------------------------------------
    async def _is_local(self, domain: str) -> bool | None:
        """Whether the domain's recipients are ours (:meth:`_local`); None when the
        directory cannot say.  A failed lookup defers the attempt (a temporary lookup
        failure, as Postfix's): guessing "remote" would send mail for one of our own
        domains to its MX or the relay host while the directory is down, and a
        permanent failure there would lose it."""
        try:
            return await self.directory.is_local_domain(domain)
        except Exception:
            log.exception("directory lookup of %s failed", domain)
            return None

    async def _local(self, message: QueuedMessage, recipients: list[str],
                     body: bytes) -> dict[str, str]:
        """Deliver to local recipients through the delivery pipeline (idempotent by
        the queue id): each recipient's reply as SMTP would give it."""
        out: dict[str, str] = {}
        for address in recipients:
            try:
                where = await route(self.directory, address)
            except Exception:
                out[address] = DIRECTORY_DOWN
                continue
            if where.kind is Kind.UNKNOWN:
                out[address] = "550 5.1.1 no such user here"
                continue
            if where.kind is Kind.REMOTE:   # no longer a local domain: the next attempt
                out[address] = "451 4.3.0 domain no longer local"  # routes it out
                continue
            principals = where.principals
            request = local_request(message.sender, b"", body, [principals],
                                    f"q-{message.queue_id}-{address}"[:MAX_DELIVERY_ID])
            try:
                results = await self.delivery.deliver(request)
            except Exception:
                log.exception("queued %s: local delivery failed", message.queue_id)
                out[address] = "451 4.3.0 local delivery failed"
                continue
            outcome = verdicts({address: principals}, results)[address].outcome
            out[address] = _LOCAL_REPLIES[outcome]
        return out


def start_worker(worker: DeliveryWorker) -> asyncio.Task[None]:
    return asyncio.create_task(worker.run(), name="outbound")


async def stop_worker(worker: DeliveryWorker, task: asyncio.Task[None],
                      grace: float = 10.0) -> None:
    """Stop taking messages and let the attempts under way record their outcome for up to
    ``grace`` seconds; one cut short after that leaves its lease to expire (the message
    is tried again then, by this node or another)."""
    worker.stop()
    try:
        await asyncio.wait_for(asyncio.shield(task), grace)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
