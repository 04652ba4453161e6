"""The push delivery worker as a service of the node (:mod:`server.node.service`): no
listeners; every process of the node builds it, and the lease in the store lets one
worker in the cluster deliver at a time (:mod:`.worker`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from server.node.parts import NodeParts
from server.node.service import Listener

from .delivery import Pusher
from .settings import PushSettings
from .worker import PushWorker

NAME = "jmap-push"


class PushService:
    name = NAME

    def __init__(self, worker: PushWorker) -> None:
        self.worker = worker
        self.task = asyncio.create_task(worker.run(), name=NAME)

    def listeners(self) -> Sequence[Listener]:
        return []

    def connect_peers(self, publish: Callable[[bytes], None]) -> None:
        pass

    def from_peer(self, payload: bytes) -> None:
        pass

    async def close(self, grace: float) -> None:
        """Stop delivering; a push cut short is pushed again by the next holder (its
        states were not recorded as pushed)."""
        self.worker.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), grace)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.worker.pusher.close()


async def build(parts: NodeParts) -> PushService | None:
    settings = PushSettings.from_settings(parts.config.jmap)
    return PushService(PushWorker(parts.engine, parts.directory, Pusher(settings)))
