"""Sending a message the server was handed or composed itself (JMAP EmailSubmission,
vacation replies): the path SMTP submission takes, as one function.

* :func:`route_recipients` asks the directory where each address goes: local accounts,
  remote hosts (the outbound queue), or nowhere (a local domain without that user);
* :func:`send` delivers to the local accounts at once through the delivery pipeline
  (with Return-Path and Received, as SMTP adds them) and queues the message for the
  remote addresses (Received only: the last hop adds Return-Path).  Both are durable
  when it returns; both are named by the caller's ``send_id`` (the delivery's
  idempotency id and the queue id), so a send run again stores and queues nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Protocol

from fdb_layers.mail import MAX_DELIVERY_ID
from server.delivery import DeliveryRequest, Recipient, Refused, Source, Stored
from server.delivery.request import DeliveryResult
from server.directory.base import Directory, Principal

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


@dataclass(frozen=True, slots=True)
class Routes:
    local: dict[str, list[Principal]] = field(default_factory=dict)  # address -> accounts
    remote: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # a local domain has no such recipient


async def route_recipients(directory: Directory, addresses: Sequence[str]) -> Routes:
    """Where each address goes (raises what the directory raises when it is down)."""
    local: dict[str, list[Principal]] = {}
    remote: list[str] = []
    unknown: list[str] = []
    for address in dict.fromkeys(addresses):
        domain = address.rpartition("@")[2]
        if not await directory.is_local_domain(domain):
            remote.append(address)
            continue
        principals = await directory.resolve_recipient(address)
        if principals:
            local[address] = principals
        else:
            unknown.append(address)
    return Routes(local, tuple(remote), tuple(unknown))


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
        accounts: dict[str, Principal] = {}
        for principals in routes.local.values():
            for p in principals:
                accounts.setdefault(p.id, p)
        request = DeliveryRequest(
            Source.SMTP, f"Return-Path: <{sender}>\r\n".encode() + trace + content,
            tuple(Recipient(a, max(0, p.quota)) for a, p in accounts.items()), send_id)
        results = {r.account_id: r for r in await delivery.deliver(request)}
        if any(isinstance(r, Refused) and r.temporary for r in results.values()):
            raise SendFailed("local delivery failed for now")
        for address, principals in routes.local.items():
            mine = [results[p.id] for p in principals]
            refused = [r for r in mine if isinstance(r, Refused)]
            if refused and len(refused) == len(mine):
                replies[address] = f"550 5.0.0 {type(refused[0].error).__name__}"
            else:
                stored = any(isinstance(r, Stored) for r in mine)
                replies[address] = "250 2.0.0 delivered" if stored else \
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
