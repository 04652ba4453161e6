"""The push connection limit's places (``push_max_connections``), at the ASGI level: the
EventSource response driven by hand, so that the test sees each message the server
sends and says when the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from server.directory.base import Principal
from server.jmap.errors import Refused
from server.jmap.mail import MailStore
from server.jmap.push.eventsource import Connections, EventSource
from server.jmap.push.settings import PushSettings
from server.jmap.push.state import encode_token
from tests.support.engines import make_engine

ALICE = Principal("a1", "alice", "individual", ("alice@example.com",))


@pytest.fixture
async def store(tmp_path: Path, node_engine: str) -> AsyncIterator[MailStore]:
    engine = await make_engine(node_engine, tmp_path)
    try:
        yield MailStore(engine)
    finally:
        await engine.close()


def _scope(query: str, last_event_id: str | None = None) -> dict[str, Any]:
    headers = [(b"last-event-id", last_event_id.encode())] if last_event_id else []
    return {"type": "http", "method": "GET", "path": "/eventsource/", "headers": headers,
            "query_string": query.encode(), "asgi": {"spec_version": "2.3"},
            "app": SimpleNamespace(state=SimpleNamespace())}  # no node stopping


def _free(connections: Connections) -> bool:
    """Whether alice has a place left (taking it and giving it back)."""
    try:
        connections.acquire(ALICE.id).release()
    except Refused:
        return False
    return True


async def test_a_stream_the_server_ends_frees_its_place_before_its_last_chunk(
        store: MailStore) -> None:
    """A client that has read the end of a stream (here ``closeafter=state``, RFC 8620
    section 7.3) may open the next one at once: the place is free when the server sends
    the response's last chunk, not later in a task after the response."""
    connections = Connections(1)
    source = EventSource(store, PushSettings(max_connections=1), connections)
    scope = _scope("types=*&closeafter=state&ping=0", encode_token({"Email": "old"}))
    response = await source.handle(Request(scope), ALICE)
    assert not _free(connections)
    seen: list[tuple[bool, bool]] = []  # (more_body, a place is free) per body message

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client stays: the server ends the stream
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            seen.append((message["more_body"], _free(connections)))

    await response(scope, receive, send)
    assert seen[0] == (True, False)  # the state event, the place held
    assert seen[-1] == (False, True)  # the end: already free


async def test_a_stream_the_client_leaves_frees_its_place(store: MailStore) -> None:
    """A client that goes away (``http.disconnect``) while its stream waits for a change
    frees its place; another stream may then open."""
    connections = Connections(1)
    source = EventSource(store, PushSettings(max_connections=1), connections)
    scope = _scope("types=*&closeafter=no&ping=0")
    response = await source.handle(Request(scope), ALICE)
    sent: list[bytes] = []
    first = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await first.wait()  # the first event (the current states) is out
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])
            first.set()

    await response(scope, receive, send)
    assert sent[0].startswith(b"event: state\n")
    assert _free(connections)
    with pytest.raises(Refused):
        connections.acquire(ALICE.id)
        connections.acquire(ALICE.id)
