"""The node's HTTP listener: /healthz, /metrics and the routes of the node's packages
(JMAP, /crypto), registered in :data:`server.node.services.HTTP_ROUTES`.  With worker
processes, each worker serves a listening socket of its own on the node's port and the
main process serves none (README, "HTTP with worker processes")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from server.net.listen import bind, bind_shared, parse_listen
from server.node.service import STOP_GRACE

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[None]]
# The health of the node: the HTTP status (200 or 503) and the JSON body of /healthz.
Health = Callable[[], Awaitable[tuple[int, bytes]]]
MetricsText = Callable[[], Awaitable[bytes]]


def health_of(checks: dict[str, HealthCheck]) -> Health:
    """Runs ``checks`` (each bounded to 5 s); unhealthy if any raises."""
    async def health() -> tuple[int, bytes]:
        results: dict[str, str] = {}
        ok = True
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=5.0)
                results[name] = "ok"
            except Exception as e:  # reported, not raised: this is the health endpoint
                ok = False
                results[name] = f"error: {type(e).__name__}: {e}"
        body = {"status": "ok" if ok else "unhealthy", "checks": results}
        return (200 if ok else 503), json.dumps(body).encode()
    return health


async def this_process_metrics() -> bytes:
    return generate_latest()


def stopping(app: Starlette) -> asyncio.Event:
    """Set when the listener stops: a long-lived response (a JMAP EventSource) ends
    then, instead of holding the stop up for STOP_GRACE."""
    event = getattr(app.state, STOPPING, None)
    if not isinstance(event, asyncio.Event):
        event = asyncio.Event()
        setattr(app.state, STOPPING, event)
    return event


STOPPING = "fdbmail_stopping"


def build_app(health: Health, routes: Sequence[BaseRoute] = (),
              metrics_text: MetricsText = this_process_metrics) -> Starlette:
    """/healthz, /metrics and the routes of the registered HTTP packages.  In a worker
    process ``health`` and ``metrics_text`` ask the main process (the node's health and
    every process's metrics)."""
    async def healthz(request: Request) -> Response:
        status, body = await health()
        return Response(body, status_code=status, media_type="application/json")

    async def metrics(request: Request) -> Response:
        return Response(await metrics_text(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics), *routes])


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the node owns SIGINT/SIGTERM and
    stops every listener in order.  ``capture_signals`` is the public method
    ``Server.serve`` wraps the serving in (uvicorn >= 0.29); a no-op here."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpListener:
    """uvicorn (its public ``Server.serve``) on a socket bound by the node's main process,
    so that port 0 works; the node owns signal handling.  With ``workers`` the main
    process binds one socket per worker on the same port (SO_REUSEPORT with more than one:
    the kernel spreads the connections, :func:`server.net.listen.bind_shared`), serves
    none and keeps them all (:attr:`shared`) open for the workers, so that a worker's
    queue outlives the worker and its replacement serves it.  (The main process keeps the
    embedded store's writer and accepts the other services' connections; serving HTTP
    beside them made one process more than there are cores: README, "HTTP with worker
    processes".)"""

    def __init__(self, listen: str = "", *, sock: socket.socket | None = None,
                 workers: int = 0) -> None:
        self.shared: list[socket.socket] = []
        if sock is None:
            where = parse_listen(listen, default_host="127.0.0.1")
            if where is None:
                raise ValueError("[server] http_listen is empty")
            socks = bind_shared(where, workers) if workers > 1 else [bind(where)]
            sock = socks[0]
            if workers:
                self.shared = socks
        self.socket = sock
        self._server: _Server | None = None
        self._app: Starlette | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    async def start(self, app: Starlette) -> None:
        # A stop waits STOP_GRACE for responses in progress, then cancels them: a
        # long-lived one (a JMAP EventSource, a slow download) cannot hold the node up.
        config = uvicorn.Config(app, log_config=None, access_log=False, date_header=False,
                                server_header=False, lifespan="off",
                                timeout_graceful_shutdown=int(STOP_GRACE))
        self._app = app
        stopping(app)  # created now, so that responses find it
        server = self._server = _Server(config)
        self._task = task = asyncio.create_task(server.serve(sockets=[self.socket]))
        while not server.started:
            if task.done():
                task.result()  # raises the startup error
                raise RuntimeError("HTTP listener stopped during startup")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._app is not None:  # long-lived responses end now (see STOPPING)
            stopping(self._app).set()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task
        self.socket.close()
        for sock in self.shared:
            sock.close()
