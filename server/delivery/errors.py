"""Why a delivery was refused: the domain errors a :class:`~.request.Refused` carries.

Two families, one base each:

* the mail layer's refusals (``fdb_layers.mail.errors.MailError``): over quota,
  no such mailbox, a mailbox that holds no messages ... -- the user's or the
  policy's, permanent;
* the pipeline's own (:class:`DeliveryError`): a message too large, a blob that
  is gone, a request that cannot be served (permanent), and
  :class:`TemporaryFailure`, our fault or the store's, to be tried again, whose
  :class:`Unavailable` kind says which part failed.

Protocols map these *types* to their replies, each in one table (SMTP:
``server.smtp.refusals``); none reads an error's text.  Engine errors never
reach a protocol: the pipeline turns them into :class:`TemporaryFailure`.
"""

from __future__ import annotations

import enum

from fdb_layers.mail import (
    EmailExists,
    MailboxNotFound,
    MailboxNotSelectable,
    MailError,
    QuotaExceeded,
)


class DeliveryError(Exception):
    """A refusal made by the pipeline itself (not by the mail layer)."""

    @property
    def temporary(self) -> bool:
        return False


class MessageTooLarge(DeliveryError):
    """The message is larger than the pipeline takes (``Delivery(max_size=)``)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes; at most {limit}")
        self.size = size
        self.limit = limit


class NoSuchBlob(DeliveryError):
    """The request's body is a blob that the blob store does not have (JMAP
    blobNotFound)."""

    def __init__(self, blob_id: str) -> None:
        super().__init__(f"blob {blob_id} not found")
        self.blob_id = blob_id


class InvalidRequest(DeliveryError):
    """The request cannot be served as asked (a keyword the store refuses ...)."""


class Unavailable(enum.Enum):
    """Which part of a delivery failed temporarily (a bounded metric label too)."""

    STORE = "store"  # the metadata store: conflicts retried too long, unreachable, ...
    BLOBS = "blobs"  # the blob store
    STORAGE_FULL = "storage_full"  # no space left (SMTP 452 4.3.1)
    INTERNAL = "internal"  # our bug: logged with its traceback


class TemporaryFailure(DeliveryError):
    """Our fault or the store's: nothing was stored for this account; try again."""

    def __init__(self, kind: Unavailable, detail: str = "") -> None:
        super().__init__(f"{kind.value}: {detail}" if detail else kind.value)
        self.kind = kind

    @property
    def temporary(self) -> bool:
        return True


Refusal = MailError | DeliveryError
"""What a :class:`~.request.Refused` carries."""


def is_temporary(error: Refusal) -> bool:
    return isinstance(error, DeliveryError) and error.temporary


__all__ = [
    "DeliveryError",
    "EmailExists",
    "InvalidRequest",
    "MailError",
    "MailboxNotFound",
    "MailboxNotSelectable",
    "MessageTooLarge",
    "NoSuchBlob",
    "QuotaExceeded",
    "Refusal",
    "TemporaryFailure",
    "Unavailable",
    "is_temporary",
]
