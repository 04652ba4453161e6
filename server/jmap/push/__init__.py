"""JMAP push (RFC 8620 section 7, RFC 8887): the EventSource endpoint, JMAP over
WebSocket with WebSocketPushEnable, and PushSubscription with its delivery worker.

All three tell a client that an account's state changed (:mod:`.state`), woken by
watches on the store, so a change made in any node process reaches every listener."""

from .eventsource import EventSource
from .settings import PushSettings
from .state import StateWatcher

__all__ = ["EventSource", "PushSettings", "StateWatcher"]
