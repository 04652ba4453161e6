"""The outbound queue: messages waiting for delivery to remote hosts.

* the keys and records, in one block: :mod:`.layout`; the domain errors: :mod:`.errors`;
* the pure retry schedule and its settings: :mod:`.schedule`;
* the operations (enqueue, lease, record an attempt, inspect, retry, delete):
  :mod:`.messages`.

Functions take ``tr`` first and never commit; the delivery workers (``server``)
run them with :func:`fdb_layers.engine.run.transact` and send the mail (bounces
and delay notices included) after the commit: the queue itself sends nothing.
"""

from .errors import LeaseLost, MessageNotFound, QueueError
from .layout import (
    DELAYED,
    DELIVERED,
    FAILED,
    PENDING,
    AttemptOutcome,
    Envelope,
    QueuedMessage,
    Recipient,
    RecipientResult,
    RecipientState,
)
from .messages import (
    count_queue,
    delete_message,
    enqueue_message,
    expire_tombstones,
    get_message,
    lease_due,
    list_messages,
    record_attempt,
    renew_lease,
    retry_now,
    watch_queue,
)
from .schedule import RetrySettings, next_due_at

__all__ = [
    "DELAYED",
    "DELIVERED",
    "FAILED",
    "PENDING",
    "AttemptOutcome",
    "Envelope",
    "LeaseLost",
    "MessageNotFound",
    "QueueError",
    "QueuedMessage",
    "Recipient",
    "RecipientResult",
    "RecipientState",
    "RetrySettings",
    "count_queue",
    "delete_message",
    "enqueue_message",
    "expire_tombstones",
    "get_message",
    "lease_due",
    "list_messages",
    "next_due_at",
    "record_attempt",
    "renew_lease",
    "retry_now",
    "watch_queue",
]
