"""The pipeline's two seams: Sieve and encryption at rest, each a ``typing.Protocol``
given to :class:`server.delivery.Delivery` (not a method to override).

* :class:`SieveFilter` runs for incoming mail only (``request.FILTERED``: SMTP
  and LMTP), once per recipient, and may change where that recipient's copy
  goes (:class:`Target`) or discard it.  IMAP APPEND, JMAP Email/import,
  submission copies and migration go where they are told.
* :class:`AtRestEncryption` runs for every source, once per recipient; the
  implementation decides whether the account asks for encryption and returns
  the body and summary unchanged when it does not.

Both are no-ops today (:class:`NoSieve`, :class:`NoEncryption`).

* :class:`DeliveredHook` runs for incoming mail only, after the message is durable
  for its recipients (the vacation auto-reply, ``server.outbound.vacation``); hooks
  are added with ``Delivery.add_delivered_hook``.  A hook's failure is logged and
  never changes the delivery's results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from server.mime import MessageSummary

from .request import DeliveryRequest


@dataclass(frozen=True, slots=True)
class Target:
    """Where one recipient's copy goes (what Sieve may change): ``mailbox_ids``,
    else the mailbox with ``role``."""

    role: str = "inbox"
    mailbox_ids: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    discard: bool = False


class SieveFilter(Protocol):
    async def filter(
        self,
        account_id: str,
        request: DeliveryRequest,
        summary: MessageSummary,
        raw: bytes,
        target: Target,
    ) -> Target:
        """The recipient's script (RFC 5228) applied to ``target``, the request's own."""
        ...


class AtRestEncryption(Protocol):
    async def encrypt(
        self, account_id: str, raw: bytes, summary: MessageSummary
    ) -> tuple[bytes, MessageSummary]:
        """The body to store for this account, and the summary that stays readable
        (both unchanged if the account does not ask for encryption)."""
        ...


class DeliveredHook(Protocol):
    async def delivered(
        self,
        request: DeliveryRequest,
        raw: bytes,
        stored: Sequence[str],
    ) -> None:
        """``raw`` (with its trace fields) is now durable for the accounts ``stored``."""
        ...


class NoSieve:
    async def filter(
        self,
        account_id: str,
        request: DeliveryRequest,
        summary: MessageSummary,
        raw: bytes,
        target: Target,
    ) -> Target:
        return target


class NoEncryption:
    async def encrypt(
        self, account_id: str, raw: bytes, summary: MessageSummary
    ) -> tuple[bytes, MessageSummary]:
        return raw, summary


__all__ = ["AtRestEncryption", "DeliveredHook", "NoEncryption", "NoSieve", "SieveFilter", "Target"]
