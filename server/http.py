"""The node's HTTP listener: /healthz and /metrics now, JMAP and /crypto later.

Routes of later packages are added to :func:`build_app`'s ``routes``."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[None]]


def build_app(health_checks: dict[str, HealthCheck], routes: Sequence[BaseRoute] = (),
              metrics_text: Callable[[], Awaitable[bytes]] | None = None) -> Starlette:
    """``metrics_text`` replaces this process's registry on /metrics (a node with
    worker processes serves theirs too)."""
    async def healthz(request: Request) -> Response:
        results: dict[str, str] = {}
        ok = True
        for name, check in health_checks.items():
            try:
                await asyncio.wait_for(check(), timeout=5.0)
                results[name] = "ok"
            except Exception as e:  # reported, not raised: this is the health endpoint
                ok = False
                results[name] = f"error: {type(e).__name__}: {e}"
        return JSONResponse({"status": "ok" if ok else "unhealthy", "checks": results},
                            status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        text = await metrics_text() if metrics_text is not None else generate_latest()
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics), *routes])


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"listen address {value!r} is not host:port")
    return host.strip("[]"), int(port)


def bind_socket(listen: str) -> socket.socket:
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class HttpListener:
    """uvicorn on a socket we bind ourselves (so port 0 works and the node
    owns signal handling)."""

    def __init__(self, app: Starlette, listen: str) -> None:
        self._sock = bind_socket(listen)
        config = uvicorn.Config(app, log_config=None, access_log=False, date_header=False,
                                server_header=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    async def start(self) -> None:
        # Server._serve is serve() without its signal capture: the node owns
        # SIGINT/SIGTERM and stops every listener in order.
        self._task = asyncio.create_task(self._server._serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the startup error
                raise RuntimeError("HTTP listener stopped during startup")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()
