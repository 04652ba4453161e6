"""A protocol worker process (see :mod:`server.workers`):
``python -m server.worker <control socket descriptor>``, started by a node's main process."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Callable

from prometheus_client import generate_latest

from .app import open_store, tune_gc
from .blobs import BlobRef, open_blob_store
from .blobs.fs import FsBlobStore
from .config import Config
from .delivery import Delivery
from .directory import open_directory
from .logs import setup_logging
from .smtp.listener import SmtpService, prepare_smtp
from .smtp.session import ListenerContext, SmtpSession
from .workers import max_message, receive, send, send_wait

log = logging.getLogger("server.worker")


class _WorkerSession(SmtpSession):
    """An SMTP session that tells the main process when its connection ends."""

    def __init__(self, ctx: ListenerContext, on_end: Callable[[], None]) -> None:
        super().__init__(ctx)
        self._on_end: Callable[[], None] | None = on_end

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self.ended()

    def ended(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()


class _PackedByMain:
    """Small blob puts sent to the main process, which packs them (see server.workers)."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.waiting: dict[bytes, asyncio.Future[BlobRef]] = {}
        self.ids = itertools.count(1)

    async def put_many(self, blobs: list[bytes]) -> list[BlobRef]:
        loop = asyncio.get_running_loop()
        asked: list[tuple[bytes, asyncio.Future[BlobRef]]] = []
        try:
            for blob in blobs:
                request = str(next(self.ids)).encode()
                future: asyncio.Future[BlobRef] = loop.create_future()
                self.waiting[request] = future
                asked.append((request, future))
                await send_wait(self.control, b"P" + request + b" " + blob)
            return list(await asyncio.gather(*(f for _, f in asked)))
        finally:
            for request, future in asked:
                self.waiting.pop(request, None)
                if not future.done():
                    future.cancel()

    def answer(self, kind: bytes, body: bytes) -> None:
        request, _, rest = body.partition(b" ")
        future = self.waiting.pop(request, None)
        if future is None or future.done():
            return
        if kind == b"p":
            blob_id, _, size = rest.partition(b" ")
            future.set_result(BlobRef(blob_id.decode(), int(size)))
        else:
            future.set_exception(OSError(f"the main process could not store a blob: "
                                         f"{rest.decode('utf-8', 'replace')}"))

    def fail_all(self, why: str) -> None:
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(OSError(why))
        self.waiting.clear()


async def run(control: socket.socket) -> int:
    data, _ = await receive(control)
    if not data.startswith(b"I"):
        return 2
    # from our own parent, over a socket pair only it and we hold
    config, commit_socket, index, main_packs = pickle.loads(data[1:])
    assert isinstance(config, Config)
    setup_logging(config.server.log_level, config.server.log_format)
    engine = await open_store(config, commit_socket=commit_socket)
    blobs = await open_blob_store(config)
    packing = _PackedByMain(control)
    local = getattr(blobs, "inner", blobs)
    if main_packs and isinstance(local, FsBlobStore) and local.pack_max <= (
            max_message(control) - 64):  # a blob and its request id in one message
        local.pack_via = packing.put_many
    directory = await open_directory(config)
    setup = await prepare_smtp(config, directory, Delivery(engine, blobs))
    service = SmtpService({}, setup.limits, contexts=list(setup.contexts.values()))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # the main process decides when we stop
        loop.add_signal_handler(sig, lambda: None)
    tasks: set[asyncio.Task[None]] = set()

    async def serve(kind: str, conn_id: str, fd: int) -> None:
        def ended() -> None:
            send(control, b"X" + conn_id.encode())

        ctx = setup.contexts.get(kind)
        if ctx is None:
            os.close(fd)
            ended()
            return
        session = _WorkerSession(ctx, ended)
        try:
            sock = socket.socket(fileno=fd)
            await loop.connect_accepted_socket(
                lambda: session, sock,
                ssl=setup.tls_context if kind == "submissions" else None)
        except Exception as e:  # a failed TLS handshake, a peer already gone
            log.info("connection on %s not served: %s", kind, e)
            session.ended()

    tune_gc()
    send(control, b"R")
    log.info("worker %d ready (pid %d)", index, os.getpid())
    while not stop.is_set():
        data, fds = await receive(control)
        if not data or data == b"S":
            packing.fail_all("the main process is gone" if not data else "stopping")
            break
        kind, body = data[:1], data[1:]
        if kind == b"C" and fds:
            listener, _, conn_id = body.decode().partition(" ")
            task = loop.create_task(serve(listener, conn_id, fds[0]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            for extra in fds[1:]:
                os.close(extra)
        elif kind == b"M":
            send(control, b"m" + body + b" " + generate_latest())
        elif kind in (b"p", b"e"):
            packing.answer(kind, body)
        else:
            for fd in fds:
                os.close(fd)
    await service.close()
    await directory.close()
    await blobs.close()
    await engine.close()
    log.info("worker %d stopped", index)
    return 0


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[1]))
    control.setblocking(False)
    with contextlib.closing(control):
        return asyncio.run(run(control))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
