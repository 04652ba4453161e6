"""The delivery contract: what a protocol asks for, and what it gets back per account.

A protocol builds one :class:`DeliveryRequest` and calls
:meth:`server.delivery.Delivery.deliver`; it gets one :class:`DeliveryResult`
per recipient, in the request's order:

* :class:`Stored`: the email id, thread id, blob id, and per mailbox its
  UIDVALIDITY, UID and modseq (:class:`~fdb_layers.mail.messages.Placement`) --
  what IMAP APPENDUID (RFC 4315) and JMAP Email/import (RFC 8621 section 4.8)
  report.  A repeat of an idempotency id stores nothing and returns the same
  result as the first delivery (its marker keeps the values);
* :class:`Discarded`: the recipient's Sieve script dropped it (RFC 5228
  ``discard``): accepted, stored nowhere;
* :class:`Refused`: the domain error itself (:mod:`.errors`), which each
  protocol maps to its own reply in one table.

Every value is a frozen dataclass with slots; a request is checked when it is
built (a bad one is the caller's bug: ``ValueError``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fdb_layers.mail import MAX_DELIVERY_ID, Placement
from server.blobs.base import BlobRef

from .errors import Refusal, is_temporary


class Source(enum.Enum):
    """How the message came in (a bounded metric label too)."""

    SMTP = "smtp"  # received over SMTP for local recipients (MX or submission port)
    LMTP = "lmtp"  # received over LMTP (RFC 2033) from a front MTA
    APPEND = "append"  # IMAP APPEND (RFC 9051 section 6.3.12)
    IMPORT = "import"  # JMAP Email/import (RFC 8621 section 4.8)
    SUBMISSION = "submission"  # a copy of what the account itself sent (JMAP EmailSubmission)
    MIGRATION = "migration"  # bulk import from another server


FILTERED = frozenset({Source.SMTP, Source.LMTP})
"""Sources whose mail the recipient's Sieve script sees (incoming mail only)."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """An account to store the message for, with its quota (the directory's
    ``Principal.quota``: bytes, 0 unlimited)."""

    account_id: str
    quota: int = 0


@dataclass(frozen=True, slots=True)
class DeliveryRequest:
    """One message for one or more accounts.

    ``body``: the message's bytes, or a blob already in the blob store (JMAP
    Email/import of an upload).  Where: ``mailbox_ids`` (one account's ids: only
    with a single recipient; JMAP mailboxIds, IMAP APPEND's mailbox), else the
    mailbox with ``role`` (created if the account has none).  ``idempotency_id``
    is the caller's: the same id stores nothing twice (SMTP: a hash of envelope
    and message; IMAP/JMAP: one per command) and derives the email id.
    ``received_at``: seconds since the epoch; None is now."""

    source: Source
    body: bytes | BlobRef
    recipients: tuple[Recipient, ...]
    idempotency_id: str
    mailbox_ids: tuple[str, ...] = ()
    role: str = "inbox"
    keywords: tuple[str, ...] = ()
    received_at: float | None = None

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError("a delivery needs at least one recipient")
        if not 0 < len(self.idempotency_id) <= MAX_DELIVERY_ID:
            raise ValueError(f"an idempotency id of 1..{MAX_DELIVERY_ID} characters is required")
        if self.mailbox_ids and len({r.account_id for r in self.recipients}) != 1:
            raise ValueError("mailbox ids belong to one account: give a single recipient")
        for name in ("recipients", "mailbox_ids", "keywords"):
            if not isinstance(getattr(self, name), tuple):
                raise ValueError(f"{name} must be a tuple (the request is immutable)")

    @property
    def account_ids(self) -> tuple[str, ...]:
        return tuple(r.account_id for r in self.recipients)


@dataclass(frozen=True, slots=True)
class Stored:
    account_id: str
    email_id: str
    thread_id: str
    blob_id: str
    mailboxes: tuple[Placement, ...]  # the first one is where the email went first


@dataclass(frozen=True, slots=True)
class Discarded:
    account_id: str


@dataclass(frozen=True, slots=True)
class Refused:
    account_id: str
    error: Refusal

    @property
    def temporary(self) -> bool:
        """True: nothing was stored and a retry may succeed (SMTP 4xx)."""
        return is_temporary(self.error)


DeliveryResult = Stored | Discarded | Refused

__all__ = [
    "FILTERED",
    "DeliveryRequest",
    "DeliveryResult",
    "Discarded",
    "Placement",
    "Recipient",
    "Refused",
    "Source",
    "Stored",
]
