"""What the push tests share: an EventSource reader over httpx's streaming response."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

# A guard against a hang, never a measure: every wait for an event is bounded by it.
PATIENCE = 20.0


@dataclass
class Event:
    kind: str
    data: dict[str, Any]
    id: str | None


class EventReader:
    """Events of a ``text/event-stream`` response, parsed as the HTML living standard's
    "event stream interpretation" says (field lines, a blank line ends an event)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines: AsyncIterator[str] = response.aiter_lines()

    async def next(self) -> Event:
        return await asyncio.wait_for(self._next(), PATIENCE)

    async def _next(self) -> Event:
        kind, data, event_id = "message", [], None
        async for line in self._lines:
            if line == "":
                if data:
                    return Event(kind, json.loads("\n".join(data)), event_id)
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
        raise EOFError("the event stream ended")

    async def ended(self) -> bool:
        """True if the stream ends without another event."""
        try:
            await self.next()
        except EOFError:
            return True
        return False
