"""Sending a message the server was handed or composed itself (JMAP EmailSubmission,
vacation replies): the path SMTP submission takes, as one function.

* :func:`~server.delivery.routing.route_recipients` (the decision SMTP and the outbound
  worker share) says where each address goes: local accounts, remote hosts (the outbound
  queue), or nowhere (a local domain without that user);
* :func:`send` delivers to the local accounts at once through the delivery pipeline
  (with Return-Path and Received, as SMTP adds them) and queues the message for the
  remote addresses (Received only: the last hop adds Return-Path).  Both are durable
  when it returns; both are named by the caller's ``send_id`` (the delivery's
  idempotency id and the queue id), so a send run again stores and queues nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Protocol

from fdb_layers.mail import MAX_DELIVERY_ID
from server.delivery.request import DeliveryRequest, DeliveryResult
from server.delivery.routing import Outcome, Routes, local_request, verdicts

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """``server.outbound.outbox.Outbox``."""

    async def enqueue(self, queue_id: str, sender: str, recipients: Sequence[str],
                      content: bytes) -> bool: ...


class DeliveryPipeline(Protocol):
    """``server.delivery.Delivery``."""

    async def deliver(self, request: DeliveryRequest) -> Sequence[DeliveryResult]: ...


class SendFailed(Exception):
    """Nothing could be made durable for some recipients: try again later."""


def received(*, by: str, source: str, id: str, when: datetime | None = None) -> bytes:
    """A ``Received:`` field (RFC 5321 section 4.4) for a message that did not come
    over SMTP: ``source``, an atom, says how it came (``HTTP`` for JMAP, ``vacation``)."""
    when = when or datetime.now(UTC)
    return (f"Received: by {by} (fdbmail) with {source}\r\n\tid {id[:16]};\r\n"
            f"\t{format_datetime(when)}\r\n").encode()


@dataclass(frozen=True, slots=True)
class Sent:
    """SMTP-like replies per local address; the queue id if remote ones were queued."""

    local: dict[str, str]
    queue_id: str | None


async def send(delivery: DeliveryPipeline, outbox: Outbox | None, *, send_id: str,
               sender: str, routes: Routes, content: bytes, trace: bytes) -> Sent:
    """Deliver ``content`` to the local recipients and queue it for the remote ones
    (see the module doc).  ``trace`` is the Received field to prepend.  Raises
    :class:`SendFailed` when a local delivery failed temporarily (before anything is
    queued) or the queue is not available."""
    if len(send_id) > MAX_DELIVERY_ID:
        raise ValueError(f"a send id of at most {MAX_DELIVERY_ID} characters is required")
    if routes.remote and outbox is None:
        raise SendFailed("no outbound queue on this node")
    replies: dict[str, str] = {}
    if routes.local:
        request = local_request(sender, trace, content, routes.local.values(), send_id)
        outcomes = verdicts(routes.local, await delivery.deliver(request))
        if any(v.outcome is Outcome.TEMPORARY for v in outcomes.values()):
            raise SendFailed("local delivery failed for now")
        for address, v in outcomes.items():
            if v.outcome is Outcome.REFUSED:
                replies[address] = f"550 5.0.0 {type(v.refused[0].error).__name__}"
            else:
                replies[address] = "250 2.0.0 delivered" if v.stored else \
                    "250 2.0.0 accepted"
    queue_id = None
    if routes.remote:
        assert outbox is not None
        try:
            await outbox.enqueue(send_id, sender, routes.remote, trace + content)
        except Exception as e:
            log.exception("queueing %s failed", send_id)
            raise SendFailed("the outbound queue is unavailable") from e
        queue_id = send_id
    return Sent(replies, queue_id)
