"""Submission's way into the outbound queue: the message is put in the blob store,
then queued (blob reference, envelope, per-recipient state) in one commit.  Only
then does SMTP answer 250, as local delivery is durable before 250.

The queue id is the caller's (SMTP uses its delivery id, a hash of the envelope and
the message): a client that retries after a lost 250 queues nothing twice."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from fdb_layers.blobs.refs import BlobBeingDeleted
from fdb_layers.mail import Engine, transact
from fdb_layers.queue import Envelope, QueuedMessage, Recipient, enqueue_message
from server.blobs import BlobStore
from server.outbound import dsn as dsn_report

log = logging.getLogger(__name__)

_PUT_TRIES = 3


class Signer(Protocol):
    """``server.mailauth.sign.Signer``: the message to queue, DKIM-signed when its
    From: domain has keys (why at submission: see that module)."""

    async def sign(self, message: bytes) -> bytes: ...


class Outbox:
    """Queues messages for remote recipients (``server.smtp``'s ``Outbox`` seam)."""

    def __init__(self, engine: Engine, blobs: BlobStore,
                 clock: Callable[[], float] = time.time, *,
                 signer: Signer | None = None) -> None:
        self.engine = engine
        self.blobs = blobs
        self.clock = clock
        self.signer = signer

    async def enqueue(self, queue_id: str, sender: str, recipients: Sequence[str],
                      content: bytes, *, envid: str = "", ret: str = "",
                      dsn: Mapping[str, tuple[tuple[str, ...], str]] | None = None
                      ) -> bool:
        """Queue ``content`` for ``recipients``; False if this queue id was queued
        already (a retry).  Raises on failure: nothing is acknowledged then.  The DSN
        options (RFC 3461 section 4) are kept with the message for its notices:
        ``envid`` and ``ret`` from MAIL, ``dsn`` maps an address to its NOTIFY and
        ORCPT from RCPT."""
        now = self.clock()
        if self.signer is not None:
            content = await self.signer.sign(content)
        options = dsn or {}
        rcpts = tuple(Recipient(r, *options.get(r, ((), ""))) for r in recipients)
        for attempt in range(_PUT_TRIES):
            ref = await self.blobs.put(content)
            envelope = Envelope(sender, rcpts, ref.id, ref.size, now, now, envid, ret)
            try:
                queued = await transact(self.engine, enqueue_message, queue_id, envelope)
            except BlobBeingDeleted:  # the collector is deleting it: put it again
                if attempt == _PUT_TRIES - 1:
                    raise
                continue
            log.info("queued %s for %d remote recipients", queue_id, len(recipients),
                     extra={"queue_id": queue_id})
            return queued
        return False

    async def enqueue_delivered_notice(self, message: QueuedMessage, content: bytes, *,
                                       reporting_mta: str, now: float) -> bool:
        """Queue the "delivered" DSN (RFC 3461 section 5.2.2) of ``message``'s recipients
        to its sender, named by the message and notice (a retry queues it once)."""
        notice = dsn_report.Notice(dsn_report.DELIVERED, message.recipients)
        report = dsn_report.build(message, notice, content, reporting_mta=reporting_mta,
                                  now=now)
        return await self.enqueue(dsn_report.notice_id(message, notice), "",
                                  [message.sender], report)
