"""A node: its parts (:mod:`.parts`), the registered services served in this process or
in worker processes, the leased periodic jobs, and HTTP (health, metrics).  Tests start
a :class:`Node` on port 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.faults import FaultyEngine
from fdb_layers.engine.run import transact
from fdb_layers.engine.sqlite import SqliteEngine
from fdb_layers.engine.sqlite import CommitServer

from server import __version__
from server.blobs import BlobStore
from server.blobs.gc import BlobGcWorker
from server.config import Config, ServerSettings
from server.delivery import Delivery
from server.directory import Directory
from server.logs import setup_logging
from server.maintenance import MaintenanceWorker
from server.net.limits import ConnectionLimits
from server.net.settings import connection_limit_settings
from server.node.accept import Acceptor, LocalServer
from server.node.jobs import LeasedJob
from server.node.http import HealthCheck, HttpListener, build_app, health_of
from server.node.parts import NodeParts, StartupError
from server.node.pool import MergedMetrics, WorkerPool
from server.node.service import STOP_GRACE, Service
from server.node.services import HTTP_ROUTES, SERVICES, http_routes
from server.node.tuning import tune_gc

__all__ = ["Node", "StartupError", "serve"]

log = logging.getLogger(__name__)


class Node:
    """``services``, ``routes``: the registered service factories and HTTP routes to
    serve (``module:function``; tests serve toy ones)."""

    def __init__(self, config: Config, services: tuple[str, ...] = SERVICES,
                 routes: tuple[str, ...] = HTTP_ROUTES) -> None:
        self.config = config
        self.service_names = services
        self.route_names = routes
        self.parts: NodeParts | None = None
        self.services: list[Service] = []
        self.acceptor: Acceptor | None = None
        self.pool: WorkerPool | None = None
        self.http: HttpListener | None = None
        self.commit_server: CommitServer | None = None
        self._socket_dir: str | None = None  # made for the commit socket, removed at stop
        self.jobs: list[LeasedJob[Any]] = []     # leased periodic jobs (GC, maintenance)
        self._job_tasks: list[asyncio.Task[None]] = []

    # the shared parts, for tests and tools
    @property
    def engine(self) -> Engine | None:
        return self.parts.engine if self.parts is not None else None

    @property
    def blobs(self) -> BlobStore | None:
        return self.parts.blobs if self.parts is not None else None

    @property
    def directory(self) -> Directory | None:
        return self.parts.directory if self.parts is not None else None

    @property
    def delivery(self) -> Delivery | None:
        return self.parts.delivery if self.parts is not None else None

    @property
    def ports(self) -> dict[str, int]:
        """Each TCP listener's bound port, by listener name (mx, submission...)."""
        return {} if self.acceptor is None else \
            {name: port for name, (_, port) in self.acceptor.addresses.items()}

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.parts = parts = await NodeParts.open(self.config)
        # every node tries; the store's lease lets one at a time work
        gc = BlobGcWorker.from_config(self.config, parts.engine, parts.blobs)
        maintenance = MaintenanceWorker.from_config(self.config, parts.engine)
        self.jobs = [w.job for w in (gc, maintenance) if w is not None]
        self._job_tasks = [asyncio.create_task(job.run(), name=job.name) for job in self.jobs]
        self.services = await parts.build_services(self.service_names)
        self.acceptor = Acceptor(ConnectionLimits(connection_limit_settings(self.config)))
        self.acceptor.bind([listener for service in self.services
                            for listener in service.listeners()])
        checks: dict[str, HealthCheck] = {"store": self._check_store}
        workers = self.config.get(ServerSettings).workers
        self.http = HttpListener(self.config.get(ServerSettings).http_listen,
                                 workers=workers)
        if workers:
            pool = WorkerPool(self.config, workers, await self._serve_commits(),
                              self.acceptor, self.service_names, self.services,
                              http_sockets=self.http.shared, routes=self.route_names)

            async def merged_metrics() -> bytes:
                return generate_latest(MergedMetrics(await pool.metrics_texts()))
            checks["workers"] = pool.check
            # the workers serve HTTP; their /healthz and /metrics are answered here
            pool.http_answers = (health_of(checks), merged_metrics)
            self.pool = pool
            await pool.start()
        else:
            LocalServer(self.acceptor).start()
            await self.http.start(build_app(health_of(checks),
                                            http_routes(parts, self.route_names)))
        log.info("node started", extra={"version": __version__, "http_port": self.http.port,
                                        "ports": str(self.ports),
                                        "store": parts.engine.name,
                                        "data_dir": str(Path(self.config.data_dir).resolve())})

    async def _serve_commits(self) -> str | None:
        """The embedded store's commit socket for worker processes (FoundationDB
        needs none: every process is a client of the cluster)."""
        engine = self.engine
        if isinstance(engine, FaultyEngine):
            engine = engine.inner
        if not isinstance(engine, SqliteEngine):
            return None
        path = os.path.join(os.path.abspath(self.config.data_dir), "commit.sock")
        if len(path.encode()) > 100:  # a Unix socket's path has room for 107 bytes
            self._socket_dir = tempfile.mkdtemp(prefix="fdbmail-")  # 0700
            path = os.path.join(self._socket_dir, "commit.sock")
        self.commit_server = CommitServer(engine, path)
        await self.commit_server.start()
        return path

    async def _check_store(self) -> None:
        assert self.engine is not None
        engine = self.engine.inner if isinstance(self.engine, FaultyEngine) else self.engine
        if isinstance(engine, SqliteEngine):
            await engine.check_writable()  # raises StoreFull while the disk is full

        async def read(tr):  # type: ignore[no-untyped-def]
            return await tr.get_read_version()

        await transact(self.engine, read)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        # first: answer deliveries in progress, then close connections (SMTP: 421)
        if self.pool is not None:
            await self.pool.close(grace)
            self.pool = None
        elif self.acceptor is not None:
            await self.acceptor.close()
        self.acceptor = None
        if self.services:
            await asyncio.gather(*(s.close(grace) for s in self.services))
            self.services = []
        for task in self._job_tasks:
            task.cancel()
        for task in self._job_tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._job_tasks.clear()
        self.jobs = []
        if self.http is not None:
            await self.http.stop()
            self.http = None
        if self.commit_server is not None:  # after the workers, before the store
            await self.commit_server.close()
            self.commit_server = None
            if self._socket_dir is not None:
                with contextlib.suppress(OSError):
                    os.rmdir(self._socket_dir)
                self._socket_dir = None
        if self.parts is not None:
            await self.parts.close()
            self.parts = None
        log.info("node stopped")


async def serve(config: Config) -> int:
    server = config.get(ServerSettings)
    setup_logging(server.log_level, server.log_format)
    node = Node(config)
    try:
        await node.start()
    except StartupError as e:
        log.error("cannot start: %s", e)
        await node.stop()
        return 1
    tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await node.stop()
    return 0
