"""The one way into a mailbox: see :mod:`server.delivery.pipeline`.

>>> results = await delivery.deliver(DeliveryRequest(
...     Source.IMPORT, raw, (Recipient("alice"),), idempotency_id="...", mailbox_ids=("m1",)))
>>> match results[0]:
...     case Stored(email_id=e, mailboxes=[Placement(uidvalidity=v, uid=u), *_]): ...
...     case Refused(error=QuotaExceeded()): ...
"""

from .errors import (
    DeliveryError,
    InvalidRequest,
    MessageTooLarge,
    NoSuchBlob,
    Refusal,
    TemporaryFailure,
    Unavailable,
    is_temporary,
)
from .hooks import AtRestEncryption, DeliveredHook, NoEncryption, NoSieve, SieveFilter, Target
from .pipeline import Delivery, thread_headers
from .request import (
    FILTERED,
    DeliveryRequest,
    DeliveryResult,
    Discarded,
    Placement,
    Recipient,
    Refused,
    Source,
    Stored,
)

__all__ = [
    "FILTERED",
    "AtRestEncryption",
    "DeliveredHook",
    "Delivery",
    "DeliveryError",
    "DeliveryRequest",
    "DeliveryResult",
    "Discarded",
    "InvalidRequest",
    "MessageTooLarge",
    "NoEncryption",
    "NoSieve",
    "NoSuchBlob",
    "Placement",
    "Recipient",
    "Refusal",
    "Refused",
    "SieveFilter",
    "Source",
    "Stored",
    "Target",
    "TemporaryFailure",
    "Unavailable",
    "is_temporary",
    "thread_headers",
]
