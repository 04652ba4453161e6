"""The node's HTTP listener: /healthz and /metrics now, JMAP and /crypto later.

Routes of later packages are added to :func:`build_app`'s ``routes``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from server.net.listen import bind, parse_listen

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


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the node owns SIGINT/SIGTERM and
    stops every listener in order.  ``capture_signals`` is the public method
    ``Server.serve`` wraps the serving in (uvicorn >= 0.29); a no-op here."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpListener:
    """uvicorn (its public ``Server.serve``) on a socket we bind ourselves, so that port
    0 works; the node owns signal handling."""

    def __init__(self, app: Starlette, listen: str) -> None:
        where = parse_listen(listen, default_host="127.0.0.1")
        if where is None:
            raise ValueError("[server] http_listen is empty")
        self._sock = bind(where)
        config = uvicorn.Config(app, log_config=None, access_log=False, date_header=False,
                                server_header=False, lifespan="off")
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
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
