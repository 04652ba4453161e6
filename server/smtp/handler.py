"""What fdbmail does with a transaction: who may send, who receives, and the delivery.

The session (:mod:`.session`) speaks the protocol; this module decides.  It knows the
directory and the delivery pipeline only through the Protocols below.

DATA has one reply for all recipients (LMTP would give one each, RFC 2033), so the
pipeline's per-account results are folded into one; each refusal's own reply comes from
SMTP's one table of domain errors (:mod:`.refusals`), never from an error's text:

* all stored (or discarded by Sieve): 250;
* any temporary failure: 4xx, so the client sends the whole message again later: the
  refusals' reply if they share one (452 4.3.1 for a full disk), else 451 4.3.0;
* some permanent failures, others stored: 250 (no bounce queue exists yet: the failure is
  logged and counted as ``partial``); all permanent: their reply if they share one (552
  5.2.2 when all are over quota), else 554 5.0.0.

The 451 would duplicate the message for the accounts that did get it, were it not for the
delivery id: a hash of the reverse-path, the recipient addresses and the message as
received.  A retry (after our 451, a delivery timeout, or a connection lost before our 250)
produces the same id, and the pipeline stores the message once per account whatever the
number of attempts.  The trace fields we prepend (their timestamp differs per attempt) are
not hashed.  The price: the same bytes sent twice with the same envelope are stored once;
real messages carry a Message-ID and a Date, so in practice only retries collide.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Counter, Histogram

from server.delivery import DeliveryRequest, DeliveryResult, Refused, Source
from server.delivery.routing import Kind, Outcome, local_request, route, verdict
from fdb_layers.queue import QueuedMessage, RecipientState
from server.directory.base import Directory, Principal
from server.mailauth.checks import QUARANTINE, REJECT
from server.mailauth.verify import Checked
from server.sasl import Authenticator, CredentialCache
from server.smtp import trace
from server.smtp.headers import UnparsableAuthor, author_addresses
from server.smtp.refusals import reply_for
from server.smtp.wire.path import PathArgument

log = logging.getLogger(__name__)

MESSAGES = Counter(
    "fdbmail_smtp_messages_total",
    "Messages at the end of DATA, by listener, result (accepted, partial, rejected, "
    "tempfail) and reason (ok, too_big, line_too_long, bare_line_ending, recipient_failed, "
    "recipient_tempfail, delivery_error, delivery_timeout, author_not_owned).",
    ("listener", "result", "reason"),
)
RECIPIENTS = Counter(
    "fdbmail_smtp_recipients_total",
    "RCPT TO commands by listener, result (accepted, rejected, tempfail) and reason.",
    ("listener", "result", "reason"),
)
DELIVERY_SECONDS = Histogram(
    "fdbmail_smtp_delivery_duration_seconds",
    "Time from the end of DATA until the message is durable for every recipient.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class Outbox(Protocol):
    """``server.outbound.outbox.Outbox``: queues a message for remote recipients,
    returns once durable (False: this queue id was queued already)."""

    async def enqueue(self, queue_id: str, sender: str, recipients: Sequence[str],
                      content: bytes, *, envid: str = "", ret: str = "",
                      dsn: Mapping[str, tuple[tuple[str, ...], str]] | None = None
                      ) -> bool: ...

    async def enqueue_delivered_notice(self, message: QueuedMessage, content: bytes, *,
                                       reporting_mta: str, now: float) -> bool: ...


class InboundChecker(Protocol):
    """``server.mailauth.verify.Checker``: SPF, DKIM, DMARC and ARC on mail from
    outside; never raises (temperror instead)."""

    async def check(self, message: bytes, ip: str, helo: str, mail_from: str) -> Checked: ...


class DeliveryPipeline(Protocol):
    """``server.delivery.Delivery``: stores a message for accounts, returns once durable."""

    async def deliver(self, request: DeliveryRequest) -> Sequence[DeliveryResult]: ...


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """What the handler needs to know about the connection."""

    listener: str               # "mx", "submission" or "submissions"
    conn_id: str
    peer_ip: str
    helo: str
    esmtp: bool
    tls: str | None             # e.g. "TLSv1.3" when encrypted
    principal: Principal | None


@dataclass(slots=True)
class Recipient:
    address: str
    principals: list[Principal]     # empty: a remote recipient, for the outbound queue
    notify: tuple[str, ...] = ()    # DSN NOTIFY (RFC 3461 section 4.1); () not given
    orcpt: str = ""                 # DSN ORCPT, decoded ("rfc822;bob@example.org")

    @property
    def remote(self) -> bool:
        return not self.principals


@dataclass(slots=True)
class Transaction:
    reverse_path: str
    utf8: bool = False
    recipients: list[Recipient] = field(default_factory=list)
    body: str = "7BIT"              # BODY: 7BIT, 8BITMIME or BINARYMIME (BDAT only)
    ret: str = ""                   # DSN RET (RFC 3461 section 4.3): FULL, HDRS or ""
    envid: str = ""                 # DSN ENVID (section 4.4), decoded


@dataclass(frozen=True, slots=True)
class RcptDecision:
    reply: str
    principals: list[Principal] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.reply.startswith("2")


def delivery_id(reverse_path: str, recipients: Sequence[str], content: bytes) -> str:
    """Idempotency key of a message: same envelope and bytes, same id (see module doc)."""
    h = hashlib.sha256(b"fdbmail-smtp-1\0")
    h.update(reverse_path.encode("utf-8", "surrogateescape") + b"\0")
    for r in sorted({r.lower() for r in recipients}):
        h.update(r.encode("utf-8", "surrogateescape") + b"\0")
    h.update(content)
    return h.hexdigest()[:32]


def _owns(principal: Principal, address: str, separator: str = "+") -> bool:
    """Whether ``address`` (or its ``user+tag`` form) is one of the principal's emails."""
    emails = {e.lower() for e in principal.emails}
    addr = address.lower()
    if addr in emails:
        return True
    local, _, domain = addr.rpartition("@")
    user, sep, _tag = local.partition(separator)
    return bool(sep) and f"{user}@{domain}" in emails


class SmtpHandler:
    """Policy and delivery, shared by every connection of a node."""

    def __init__(self, directory: Directory, delivery: DeliveryPipeline, hostname: str,
                 postmaster: str = "postmaster", outbox: Outbox | None = None,
                 checker: InboundChecker | None = None) -> None:
        self.directory = directory
        self.outbox = outbox            # None: remote recipients get 451 (no queue)
        self.checker = checker          # None: no authentication checks on the MX
        self.authenticator = Authenticator(directory, CredentialCache())  # AUTH (server.sasl)
        self.delivery = delivery
        self.hostname = hostname
        self.postmaster = postmaster    # the principal of postmaster@ (RFC 5321 4.5.1)

    async def check_sender(self, who: SenderInfo, path: PathArgument) -> str | None:
        """None if the reverse-path is acceptable, else the refusal."""
        if who.principal is not None and not _owns(who.principal, path.address):
            return "553 5.7.1 Sender address not owned by the authenticated user"
        return None

    def check_authors(self, who: SenderInfo, content: bytes) -> str | None:
        """On submission: None if every From:/Sender: address is the authenticated
        principal's (an alias or a +tag form included), else the refusal."""
        if who.principal is None:
            return None
        try:
            addresses = author_addresses(content)
        except UnparsableAuthor:
            return "550 5.7.1 From: or Sender: address cannot be parsed"
        if all(_owns(who.principal, a) for a in addresses):
            return None
        return "550 5.7.1 From: or Sender: address not owned by the authenticated user"

    async def check_recipient(self, who: SenderInfo, path: PathArgument) -> RcptDecision:
        decision = await self._decide_recipient(who, path)
        result = ("accepted" if decision.accepted
                  else "tempfail" if decision.reply.startswith("4") else "rejected")
        RECIPIENTS.labels(who.listener, result, _reason(decision.reply)).inc()
        return decision

    async def _decide_recipient(self, who: SenderInfo, path: PathArgument) -> RcptDecision:
        address = path.address
        local = address.rpartition("@")[0]
        try:
            if address.lower() == "postmaster":       # <Postmaster>, RFC 5321 section 4.5.1
                return await self._postmaster(who, None)
            where = await route(self.directory, address)
            if where.kind is Kind.REMOTE:
                if who.principal is None:
                    return RcptDecision("554 5.7.1 Relay access denied")
                if self.outbox is not None:     # queued for delivery (no principals)
                    return RcptDecision("250 2.1.5 Recipient OK (remote)")
                return RcptDecision("451 4.3.2 Outbound delivery not available yet; "
                                    "only local recipients are accepted")
            if where.kind is Kind.UNKNOWN and local.lower() == "postmaster":
                return await self._postmaster(who, address)
        except Exception:
            log.exception("directory lookup failed", extra={"conn": who.conn_id})
            return RcptDecision("451 4.4.3 Directory unavailable, try again later")
        if where.kind is Kind.UNKNOWN:
            return RcptDecision("550 5.1.1 No such user here")
        return RcptDecision("250 2.1.5 Recipient OK", where.principals)

    async def _postmaster(self, who: SenderInfo, address: str | None) -> RcptDecision:
        """<Postmaster>, or postmaster@ a local domain that has no such address: always
        accepted (RFC 5321 section 4.5.1).  <Postmaster> goes where postmaster@ the first
        local domain goes; failing an address, to the principal named by [smtp]
        postmaster (a group: to its members)."""
        principals: list[Principal] = []
        if address is None:
            domains = await self.directory.list_domains()
            if domains:
                principals = await self.directory.resolve_recipient(f"postmaster@{domains[0]}")
        if not principals:
            principal = await self.directory.get_principal(self.postmaster)
            if principal is not None and principal.type == "group":
                principals = await self.directory.resolve_recipient(principal.emails[0]) \
                    if principal.emails else []
            elif principal is not None:
                principals = [principal]
        if not principals:
            log.error("mail for postmaster cannot be delivered: no principal %r ([smtp] "
                      "postmaster)", self.postmaster, extra={"conn": who.conn_id})
            return RcptDecision("451 4.3.0 Postmaster mailbox not configured, try again "
                                "later")
        return RcptDecision("250 2.1.5 Recipient OK", principals)

    def refused(self, listener: str, reason: str, result: str = "rejected") -> None:
        """Count a message the session answered without a delivery outcome."""
        MESSAGES.labels(listener, result, reason).inc()

    async def deliver(self, who: SenderInfo, tx: Transaction, content: bytes) -> str:
        """Store the message for every local recipient and queue it for the remote
        ones (both durable before the reply); the reply to DATA.  Mail from outside
        (the MX listener, no AUTH) is checked first: SPF, DKIM, DMARC, ARC
        (:mod:`server.mailauth`), the results prepended, DMARC's reject honoured."""
        results_header, role = b"", "inbox"
        if self.checker is not None and who.principal is None and who.listener == "mx":
            checked = await self.checker.check(content, who.peer_ip, who.helo,
                                               tx.reverse_path)
            if checked.action == REJECT:    # RFC 7489 section 6.7 and 10.3
                MESSAGES.labels(who.listener, "rejected", "dmarc").inc()
                return "550 5.7.1 Rejected by the DMARC policy of the author's domain"
            content, results_header = checked.message, checked.header
            role = "junk" if checked.action == QUARANTINE else "inbox"
        remote = [r.address for r in tx.recipients if r.remote]
        if remote:
            did = self._did(tx, content)        # a hash of the whole message: once
            reply = await self._enqueue(who, tx, content, remote, did)
            if reply is not None or len(remote) == len(tx.recipients):
                return reply or f"250 2.0.0 OK queued as {did[:16]}"
            tx = replace(tx, recipients=[r for r in tx.recipients if not r.remote])
        request = self._request(who, tx, content, Source.SMTP, results_header, role)
        results = await self._run(who, request)
        if results is None:
            return "451 4.3.0 Temporary delivery failure, try again later"
        reply = self._data_reply(who, request.idempotency_id, results, len(request.recipients))
        if reply.startswith("2") and not await self._success_notice(who, tx, content,
                                                                     results):
            return "451 4.3.0 Temporary queueing failure, try again later"
        if remote and reply.startswith("5"):    # the remote ones are queued: accepted
            log.warning("delivery %s: local recipients refused (%s), remote ones queued",
                        request.idempotency_id, reply, extra={"conn": who.conn_id})
            return f"250 2.0.0 OK id={request.idempotency_id[:16]}"
        return reply

    async def _success_notice(self, who: SenderInfo, tx: Transaction, content: bytes,
                              results: Sequence[DeliveryResult]) -> bool:
        """A "delivered" DSN (RFC 3461 section 5.2.2) for the local recipients that
        asked for one with NOTIFY=SUCCESS and were stored, queued to the sender (named
        by the delivery id: a retried message queues it once); False if it could not
        be queued (the client tries again; the delivery itself is idempotent)."""
        stored = {r.account_id for r in results if not isinstance(r, Refused)}
        wanted = [r for r in tx.recipients if not r.remote and "SUCCESS" in r.notify
                  and any(p.id in stored for p in r.principals)]
        if not wanted or not tx.reverse_path or self.outbox is None:
            return True
        did = self._did(tx, content)
        now = time.time()
        message = QueuedMessage(
            did, tx.reverse_path, tx.envid, tx.ret, "", len(content), now, now, 0, "", 0.0,
            tuple(RecipientState(i, r.address, r.notify, r.orcpt, "delivered",
                                 "250 2.0.0 delivered", 1, False)
                  for i, r in enumerate(wanted)))
        try:
            await self.outbox.enqueue_delivered_notice(message, content,
                                                       reporting_mta=self.hostname, now=now)
        except Exception:
            log.exception("queueing the delivery notice of %s failed", did,
                          extra={"conn": who.conn_id})
            return False
        return True

    @staticmethod
    def _did(tx: Transaction, content: bytes) -> str:
        return delivery_id(tx.reverse_path, [r.address for r in tx.recipients], content)

    async def _enqueue(self, who: SenderInfo, tx: Transaction, content: bytes,
                       remote: list[str], did: str) -> str | None:
        """Queue the message for the remote recipients (``did``, the whole envelope's
        delivery id, names it, so a retried submission is queued once); None once durable, else
        the 451 to answer."""
        assert self.outbox is not None      # remote recipients are accepted only then
        try:
            dsn = {r.address: (r.notify, r.orcpt) for r in tx.recipients
                   if r.remote and (r.notify or r.orcpt)}
            await self.outbox.enqueue(did, tx.reverse_path, remote,
                                      self._received(who, tx, did, Source.SMTP) + content,
                                      envid=tx.envid, ret=tx.ret, dsn=dsn)
        except Exception:
            log.exception("queueing %s failed", did, extra={"conn": who.conn_id})
            MESSAGES.labels(who.listener, "tempfail", "delivery_error").inc()
            return "451 4.3.0 Temporary queueing failure, try again later"
        if len(remote) == len(tx.recipients):
            MESSAGES.labels(who.listener, "accepted", "ok").inc()
        return None

    async def deliver_each(self, who: SenderInfo, tx: Transaction, content: bytes) -> list[str]:
        """LMTP (RFC 2033 section 4.2): store the message once for every account, and
        answer each recipient, in RCPT order, from its own accounts' results: stored (or
        discarded by Sieve) 250; else a temporary failure's reply, else a permanent
        one's, from the one table (:mod:`.refusals`).  A group stored for some members
        and refused for others permanently is 250, as in SMTP (logged, no bounce)."""
        request = self._request(who, tx, content, Source.LMTP)
        did = request.idempotency_id
        results = await self._run(who, request)
        if results is None:
            return ["451 4.3.0 Temporary delivery failure, try again later"] * \
                len(tx.recipients)
        by_account = {r.account_id: r for r in results}
        replies = []
        for rcpt in tx.recipients:
            mine = verdict(rcpt.principals, by_account)
            refused = mine.refused
            if mine.outcome is Outcome.TEMPORARY:
                reply = str(reply_for(refused[0].error)) if refused and refused[0].temporary \
                    else "451 4.3.0 Temporary delivery failure, try again later"
                result = "tempfail"
            elif mine.outcome is Outcome.REFUSED:
                reply, result = str(reply_for(refused[0].error)), "rejected"
            else:
                reply, result = f"250 2.1.5 <{rcpt.address}> OK id={did[:16]}", \
                    "partial" if mine.partial else "accepted"
            for r in refused:
                if not r.temporary:
                    log.warning("delivery %s to account %s failed (permanent): %s", did,
                                r.account_id, type(r.error).__name__,
                                extra={"conn": who.conn_id})
            MESSAGES.labels(who.listener, result, "ok" if result == "accepted"
                            else "recipient_failed").inc()
            replies.append(reply)
        return replies

    def _request(self, who: SenderInfo, tx: Transaction, content: bytes,
                 source: Source, results_header: bytes = b"",
                 role: str = "inbox") -> DeliveryRequest:
        """``results_header``: our Authentication-Results, after the trace fields and,
        like them, outside the delivery id (a retry may find other DNS answers)."""
        did = delivery_id(tx.reverse_path, [r.address for r in tx.recipients], content)
        return local_request(tx.reverse_path, self._received(who, tx, did, source)
                             + results_header, content,
                             (r.principals for r in tx.recipients), did, source=source,
                             role=role)

    def _received(self, who: SenderInfo, tx: Transaction, did: str,
                  source: Source) -> bytes:
        """Our Received field (RFC 5321 section 4.4); Return-Path is added by
        final delivery only (:func:`~server.delivery.routing.local_request`)."""
        single = tx.recipients[0].address if len(tx.recipients) == 1 else None
        protocol = "LMTP" if source is Source.LMTP else trace.with_protocol(
            esmtp=who.esmtp, tls=who.tls is not None, authenticated=who.principal is not None,
            utf8=tx.utf8)
        return trace.received(
            helo=who.helo, peer_ip=who.peer_ip, by=self.hostname, protocol=protocol,
            id=did[:16], recipient=single, when=datetime.now(UTC), tls=who.tls)

    async def _run(self, who: SenderInfo,
                   request: DeliveryRequest) -> Sequence[DeliveryResult] | None:
        """The pipeline's results; None (logged, counted) if it failed as a whole."""
        started = time.perf_counter()
        try:
            results = await self.delivery.deliver(request)
        except Exception:
            log.exception("delivery %s failed", request.idempotency_id,
                          extra={"conn": who.conn_id})
            MESSAGES.labels(who.listener, "tempfail", "delivery_error").inc()
            return None
        DELIVERY_SECONDS.observe(time.perf_counter() - started)
        return results

    def _data_reply(self, who: SenderInfo, did: str, results: Sequence[DeliveryResult],
                    expected: int) -> str:
        """One reply for all recipients (see the module doc)."""
        refused = [r for r in results if isinstance(r, Refused)]
        temporary = [r for r in refused if r.temporary]
        permanent = [r for r in refused if not r.temporary]
        stored = len(results) - len(refused)
        # temporary failures are logged where they happen (the pipeline; a full disk by
        # the engine, once per interval), not once more per message here
        for r in permanent:
            log.warning("delivery %s to account %s failed (permanent): %s: %s", did,
                        r.account_id, type(r.error).__name__, r.error,
                        extra={"conn": who.conn_id})
        if temporary or len(results) != expected:
            # The client retries the whole message; accounts that already have it are
            # skipped by the pipeline thanks to the delivery id.
            MESSAGES.labels(who.listener, "tempfail", "recipient_tempfail").inc()
            replies = {reply_for(r.error) for r in temporary}
            if len(replies) == 1 and len(results) == expected:
                return str(replies.pop())
            return "451 4.3.0 Delivery failed for some recipients, try again later"
        if not stored:
            MESSAGES.labels(who.listener, "rejected", "recipient_failed").inc()
            replies = {reply_for(r.error) for r in permanent}
            if len(replies) == 1:
                return str(replies.pop())
            return "554 5.0.0 Delivery failed for every recipient"
        if permanent:
            # No bounce queue yet: the failure is logged and counted, the rest is accepted.
            log.warning("delivery %s accepted for %d of %d accounts; no bounce sent (no "
                        "bounce queue yet)", did, stored, len(results),
                        extra={"conn": who.conn_id})
            MESSAGES.labels(who.listener, "partial", "recipient_failed").inc()
        else:
            MESSAGES.labels(who.listener, "accepted", "ok").inc()
        return f"250 2.0.0 OK id={did[:16]}"


def _reason(reply: str) -> str:
    """A bounded metric label from a reply: its enhanced status code."""
    parts = reply.split(" ", 2)
    return parts[1] if len(parts) > 1 and parts[1][:1].isdigit() else parts[0]
