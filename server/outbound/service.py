"""The delivery worker as a service of the node (:mod:`server.node.service`): it
has no listeners; every process of the node (the main one and each worker process)
builds it, so each runs a delivery worker, unless ``[outbound] workers`` is off."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence

from server.config import ServerSettings
from server.node.parts import NodeParts
from server.node.service import Listener
from server.outbound.settings import OutboundSettings
from server.outbound.worker import DeliveryWorker, stop_worker

NAME = "outbound"


class OutboundService:
    name = NAME

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker
        self.task = asyncio.create_task(worker.run(), name="outbound")

    def listeners(self) -> Sequence[Listener]:
        return []

    def connect_peers(self, publish: Callable[[bytes], None]) -> None:
        pass

    def from_peer(self, payload: bytes) -> None:
        pass

    async def close(self, grace: float) -> None:
        await stop_worker(self.worker, self.task, grace)


async def build(parts: NodeParts) -> OutboundService | None:
    settings = parts.config.get(OutboundSettings)
    if not settings.workers:
        return None
    hostname = parts.config.get(ServerSettings).hostname
    worker = DeliveryWorker(parts.engine, parts.blobs, parts.directory, parts.delivery,
                            settings, hostname, node=f"{hostname}/{os.getpid()}")
    return OutboundService(worker)
