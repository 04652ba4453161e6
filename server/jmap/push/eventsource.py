"""The EventSource endpoint (RFC 8620 section 7.3): ``GET /eventsource/?types=...&
closeafter=...&ping=...`` answers a ``text/event-stream`` of ``state`` events (a
StateChange each) and ``ping`` events.

* ``types``: ``*`` or a comma-separated list of type names; names we do not push are
  ignored (another server's client may ask for CalendarEvent), malformed lists get 400.
* ``closeafter``: ``state`` ends the response after the first state event; ``no`` not.
* ``ping``: seconds; 0 sends none, anything else is raised to ``push_ping_min`` and
  capped at :data:`MAX_PING`; the ping's ``interval`` says which was used.

Each state event's id encodes the states it announced: a client that reconnects with
``Last-Event-ID`` is sent what changed since at once.  A new connection without it
gets the current states first when ``closeafter=no`` (so that it knows where it
stands); with ``closeafter=state`` it waits for the next change (long polling)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping

from prometheus_client import Counter, Gauge
from starlette.background import BackgroundTask
from starlette.requests import Request as HttpRequest
from starlette.responses import Response, StreamingResponse

from server.directory.base import Principal
from server.node.http import STOPPING

from ..errors import Refused
from ..json import encode
from ..limits import InFlight
from ..mail import MailStore
from ..routes import HttpRoute
from .settings import PushSettings
from .state import TYPES, StateWatcher, changed_types, decode_token, encode_token, state_change

log = logging.getLogger(__name__)

PATH = "/eventsource/"
MAX_PING = 3600
_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")

EVENTS = Counter("fdbmail_jmap_push_events_total",
                 "Push events sent, by transport (eventsource, websocket, subscription) "
                 "and kind (state, ping).", ["transport", "kind"])
OPEN = Gauge("fdbmail_jmap_push_connections",
             "Push connections open on this process, by transport.", ["transport"])


def _stopping(request: HttpRequest) -> asyncio.Event | None:
    """The node's HTTP listener's stop signal (:func:`server.node.http.stopping`), when
    the app has one."""
    event = getattr(request.app.state, STOPPING, None)
    return event if isinstance(event, asyncio.Event) else None


class BadPushRequest(ValueError):
    """A push parameter is malformed (answered 400)."""


def parse_types(value: str | None) -> frozenset[str] | None:
    """``types`` (RFC 8620 section 7.3): None for ``*`` (every type)."""
    if value is None or value == "*":
        return None
    names = value.split(",")
    if not all(_TYPE_NAME.fullmatch(n) for n in names):
        raise BadPushRequest(f"types must be '*' or a comma-separated list of type names, "
                             f"not {value[:100]!r}")
    return frozenset(n for n in names if n in TYPES)


def parse_ping(value: str | None, minimum: int) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit() or not value.isascii() or len(value) > 10:
        raise BadPushRequest(f"ping must be a number of seconds, not {value[:100]!r}")
    seconds = int(value)
    return 0 if seconds == 0 else min(max(seconds, minimum), MAX_PING)


def parse_closeafter(value: str | None) -> bool:
    if value is None or value == "no":
        return False
    if value == "state":
        return True
    raise BadPushRequest(f"closeafter must be 'state' or 'no', not {value[:100]!r}")


class Slot:
    """One open push connection's place in :class:`Connections`, given back once
    however often :meth:`release` is called."""

    def __init__(self, places: InFlight, account_id: str) -> None:
        self._places: InFlight | None = places
        self.account_id = account_id

    def release(self) -> None:
        if self._places is not None:
            self._places.release(self.account_id)
            self._places = None


class Connections:
    """Push connections open per account on this process (EventSource and WebSocket),
    at most ``push_max_connections`` each."""

    def __init__(self, limit: int) -> None:
        self._open = InFlight(limit)

    def acquire(self, account_id: str) -> Slot:
        if not self._open.acquire(account_id):
            raise Refused("tooManyConnections", "too many push connections are open for "
                          "this account", {"Retry-After": "30"})
        return Slot(self._open, account_id)


def _event(kind: str, data: Mapping[str, object], event_id: str | None = None) -> bytes:
    head = f"event: {kind}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + encode(dict(data)) + b"\n\n"  # type: ignore[arg-type]


class EventSource:
    def __init__(self, store: MailStore, settings: PushSettings,
                 connections: Connections) -> None:
        self.store, self.settings, self.connections = store, settings, connections

    def route(self) -> HttpRoute:
        return HttpRoute(PATH, "eventsource", self.handle)

    async def handle(self, request: HttpRequest, principal: Principal) -> Response:
        query = request.query_params
        try:
            types = parse_types(query.get("types"))
            close_after_state = parse_closeafter(query.get("closeafter"))
            ping = parse_ping(query.get("ping"), self.settings.ping_min)
        except BadPushRequest as e:
            raise Refused("badRequest", str(e)) from None
        last = decode_token(request.headers.get("last-event-id"))
        slot = self.connections.acquire(principal.id)
        stream = self._stream(StateWatcher(self.store, principal), types, close_after_state,
                              ping, last, _stopping(request), slot)
        # The stream gives its place back as it ends: before the response's last chunk
        # when the server ends it, while it is cancelled when the client goes away.  The
        # background task covers a response that never started its stream.
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache, no-store",
                                          "X-Accel-Buffering": "no"},
                                 background=BackgroundTask(slot.release))

    async def _stream(self, watcher: StateWatcher, types: frozenset[str] | None,
                      close_after_state: bool, ping: int, last: dict[str, str] | None,
                      stopping: asyncio.Event | None, slot: Slot) -> AsyncIterator[bytes]:
        account_id = watcher.principal.id
        OPEN.labels("eventsource").inc()
        try:
            known: dict[str, str] | None = last
            if known is None:
                known = await watcher.current()
                if not close_after_state:
                    yield self._state(account_id, changed_types(None, known, types), known)
            while True:
                change = asyncio.ensure_future(
                    watcher.next_change(known, types, within=ping or None))
                if stopping is not None:
                    stop = asyncio.ensure_future(stopping.wait())
                    try:
                        await asyncio.wait([change, stop], return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        stop.cancel()
                    if not change.done():  # the node stops: the client reconnects elsewhere
                        change.cancel()
                        return
                now = await change
                if now is None:
                    EVENTS.labels("eventsource", "ping").inc()
                    yield _event("ping", {"interval": ping})
                    continue
                changed = changed_types(known, now, types)
                known = now
                yield self._state(account_id, changed, now)
                if close_after_state:
                    return
        finally:
            slot.release()
            OPEN.labels("eventsource").dec()

    @staticmethod
    def _state(account_id: str, changed: dict[str, str], states: dict[str, str]) -> bytes:
        EVENTS.labels("eventsource", "state").inc()
        return _event("state", state_change(account_id, changed), encode_token(states))
