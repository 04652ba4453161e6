"""A protocol worker process (see :mod:`server.workers`):
``python -m server.worker <control socket descriptor>``, started by a node's main process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Callable

from prometheus_client import generate_latest

from .app import open_store, tune_gc
from .blobs import open_blob_store
from .config import Config
from .delivery import Delivery
from .directory import open_directory
from .logs import setup_logging
from .smtp.listener import SmtpService, prepare_smtp
from .smtp.session import ListenerContext, SmtpSession
from .workers import receive, send

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

    def _end(self) -> bool:    # also when a TLS handshake failed (no connection_lost)
        try:
            return super()._end()
        finally:
            self.ended()

    def ended(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()


async def run(control: socket.socket) -> int:
    data, _ = await receive(control)
    if not data.startswith(b"I"):
        return 2
    # from our own parent, over a socket pair only it and we hold
    config, commit_socket, index = pickle.loads(data[1:])
    assert isinstance(config, Config)
    setup_logging(config.server.log_level, config.server.log_format, process=f"worker-{index}")
    engine = await open_store(config, commit_socket=commit_socket)
    blobs = await open_blob_store(config)
    directory = await open_directory(config)
    setup = await prepare_smtp(config, directory, Delivery(engine, blobs))
    service = SmtpService({}, setup.limits, contexts=list(setup.contexts.values()))
    # one node, one limit: our AUTH failures go to the main process, which tells the others
    def report_auth_failure(ip: str, login: str) -> None:
        send(control, b"A" + ip.encode() + b"\0" + login.encode("utf-8", "replace")[:1024])

    def report_unknown_recipient(ip: str) -> None:
        send(control, b"U" + ip.encode())

    setup.limits.on_auth_failure = report_auth_failure
    setup.limits.on_unknown_recipient = report_unknown_recipient
    loop = asyncio.get_running_loop()
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
            # no ssl=: the session does an implicit-TLS handshake itself, bounded in time
            await loop.connect_accepted_socket(lambda: session, sock)
        except Exception as e:  # a peer already gone
            log.info("connection on %s not served: %s", kind, e)
            session.ended()

    tune_gc()
    send(control, b"R")
    log.info("worker %d ready (pid %d)", index, os.getpid())
    while True:
        data, fds = await receive(control)
        if not data or data == b"S":
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
        elif kind == b"a":
            ip, _, login = body.decode("utf-8", "replace").partition("\0")
            setup.limits.auth_failed_elsewhere(ip, login)
        elif kind == b"u":
            setup.limits.unknown_recipient_elsewhere(body.decode())
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
