"""A worker process of a node (see :mod:`server.node.pool`):
``python -m server.node.worker <control socket descriptor>``, started by the node's main
process.  It builds the same parts and services as a one-process node and serves the
connections the main process hands it; it knows no protocol."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Callable

from prometheus_client import generate_latest

from server.config import Config, ServerSettings
from server.logs import setup_logging
from server.node.accept import serve_connection
from server.node.http import HttpListener, build_app
from server.node.parts import NodeParts
from server.node.services import http_routes
from server.node.pool import receive, send
from server.node.service import STOP_GRACE, Connection, Listener, Service
from server.node.tuning import tune_gc

log = logging.getLogger("server.worker")

ASK_TIMEOUT = 10.0  # for the main process's answer to /healthz or /metrics


def _publisher(control: socket.socket, service: str) -> Callable[[bytes], None]:
    prefix = b"E" + service.encode() + b"\0"

    def publish(payload: bytes) -> None:
        send(control, prefix + payload)
    return publish


async def run(control: socket.socket) -> int:
    data, fds = await receive(control)
    if not data.startswith(b"I"):
        return 2
    # from our own parent, over a socket pair only it and we hold
    config, commit_socket, index, names, routes = pickle.loads(data[1:])
    assert isinstance(config, Config)
    server = config.get(ServerSettings)
    setup_logging(server.log_level, server.log_format, process=f"worker-{index}")
    parts = await NodeParts.open(config, commit_socket=commit_socket)
    services = await parts.build_services(tuple(names))
    by_service: dict[str, Service] = {s.name: s for s in services}
    listeners: dict[str, Listener] = {}
    for service in services:
        service.connect_peers(_publisher(control, service.name))
        listeners.update((listener.name, listener) for listener in service.listeners())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # the main process decides when we stop
        loop.add_signal_handler(sig, lambda: None)
    tasks: set[asyncio.Task[None]] = set()
    asked: dict[str, asyncio.Future[bytes]] = {}
    ids = itertools.count(1)

    async def ask(kind: bytes) -> bytes:
        """The main process's answer to ``H`` (health) or ``Q`` (merged metrics)."""
        request = str(next(ids))
        waiter = asyncio.get_running_loop().create_future()
        asked[request] = waiter
        try:
            if not send(control, kind + request.encode()):
                raise ConnectionError("the main process is gone")
            return await asyncio.wait_for(waiter, ASK_TIMEOUT)
        finally:
            asked.pop(request, None)

    async def health() -> tuple[int, bytes]:
        try:
            status, _, body = (await ask(b"H")).partition(b" ")
            return int(status), body
        except (TimeoutError, ConnectionError, ValueError) as e:
            return 503, json.dumps({"status": "unhealthy",
                                    "checks": {"main": f"error: {e!r}"}}).encode()

    async def metrics() -> bytes:
        return await ask(b"Q")

    http = None
    if fds:  # the node's HTTP socket: served here too
        http = HttpListener(sock=socket.socket(fileno=fds[0]))
        for extra in fds[1:]:
            os.close(extra)
        await http.start(build_app(health, http_routes(parts, tuple(routes)), metrics))

    def serve(name: str, conn_id: str, ip: str, fd: int) -> None:
        done = False

        def ended() -> None:
            nonlocal done
            if not done:
                done = True
                send(control, b"X" + conn_id.encode())

        listener = listeners.get(name)
        if listener is None:
            os.close(fd)
            ended()
            return
        task = loop.create_task(serve_connection(
            listener, Connection(name, conn_id, ip, ended), socket.socket(fileno=fd)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    tune_gc()
    send(control, b"R")
    log.info("worker %d ready (pid %d)", index, os.getpid())
    while True:
        data, fds = await receive(control)
        if not data or data == b"S":
            break
        kind, body = data[:1], data[1:]
        if kind == b"C" and fds:
            name, conn_id, ip = (body.decode().split(" ", 2) + ["", ""])[:3]
            serve(name, conn_id, ip, fds[0])
            for extra in fds[1:]:
                os.close(extra)
        elif kind == b"M":
            send(control, b"m" + body + b" " + generate_latest())
        elif kind in (b"h", b"q"):
            request, _, answer = body.partition(b" ")
            waiter = asked.get(request.decode())
            if waiter is not None and not waiter.done():
                waiter.set_result(answer)
        elif kind == b"E":
            service_name, _, payload = body.partition(b"\0")
            peer = by_service.get(service_name.decode("utf-8", "replace"))
            if peer is not None:
                peer.from_peer(payload)
        else:
            for fd in fds:
                os.close(fd)
    if http is not None:
        await http.stop()
    await asyncio.gather(*(s.close(STOP_GRACE) for s in services))
    await parts.close()
    log.info("worker %d stopped", index)
    return 0


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[1]))
    control.setblocking(False)
    with contextlib.closing(control):
        return asyncio.run(run(control))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
