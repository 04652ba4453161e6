"""Domain exceptions of the queue layer; ``fdbmail queue`` and the delivery
workers map them to messages.  Engine errors never leave the layer."""

from __future__ import annotations


class QueueError(Exception):
    """A refusal by the queue layer."""


class MessageNotFound(QueueError):
    """No queued message has this queue id (delivered, deleted or never queued)."""


class LeaseLost(QueueError):
    """The caller's lease on the message expired and another holder took it
    (or the message was deleted): its attempt is not recorded."""
