"""The one way into a mailbox: see :mod:`server.delivery.pipeline`."""

from .pipeline import Delivery, DeliveryOutcome, Target, thread_headers

__all__ = ["Delivery", "DeliveryOutcome", "Target", "thread_headers"]
