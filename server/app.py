"""Wires a node together: store, HTTP (health, metrics), and the protocol
listeners as they are built.  Tests start a :class:`Node` on port 0."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import tempfile
from pathlib import Path

from prometheus_client import generate_latest

from fdb_layers.engine import open_engine
from fdb_layers.engine.base import Engine, LayoutVersionError
from fdb_layers.engine.faults import FaultyEngine
from fdb_layers.engine.sqlite import SqliteEngine
from fdb_layers.engine.sqlite import CommitServer
from fdb_layers.engine.run import transact
from fdb_layers.layout import check_store_layouts

from . import __version__
from .blobs import BlobStore, open_blob_store
from .blobs.gc import BlobGcWorker
from .config import Config
from .delivery import Delivery
from .directory import Directory, open_directory
from .maintenance import MaintenanceWorker
from .smtp import SmtpService, start_smtp
from .smtp.lmtp import LmtpConfigError, LmtpService, start_lmtp
from .http import HealthCheck, HttpListener, build_app
from .logs import setup_logging
from .workers import MergedMetrics, WorkerPool

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The node cannot start; the message says why and what to do."""


def store_path(config: Config) -> str:
    return config.store.sqlite_path or str(config.data_dir / "store.sqlite3")


async def open_store(config: Config, *, commit_socket: str | None = None) -> Engine:
    """The configured store, its layout checked.  ``commit_socket``: a worker's
    embedded store, whose commits the main process makes (see server.workers)."""
    store = config.store
    path = store_path(config)
    try:
        engine = await open_engine(
            store.engine,
            sqlite_path=path,
            cluster_file=store.cluster_file,
            api_version=store.fdb_api_version,
            not_committed_rate=store.fault_not_committed_rate,
            unknown_result_rate=store.fault_unknown_result_rate,
            commit_socket=commit_socket,
        )
    except Exception as e:
        from fdb_layers.engine.foundationdb import ClientLibraryError

        if isinstance(e, ClientLibraryError):
            raise StartupError(str(e)) from e
        raise
    try:
        await transact(engine, check_store_layouts)  # every layer's layout version
    except LayoutVersionError as e:
        await engine.close()
        raise StartupError(str(e)) from e
    return engine


class Node:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.engine: Engine | None = None
        self.blobs: BlobStore | None = None
        self.directory: Directory | None = None
        self.delivery: Delivery | None = None
        self.smtp: SmtpService | WorkerPool | None = None
        self.http: HttpListener | None = None
        self.lmtp: LmtpService | None = None  # LMTP: see start(); moves onto the Service seam
        self.commit_server: CommitServer | None = None
        self._socket_dir: str | None = None  # made for the commit socket, removed at stop
        self._workers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = await open_store(self.config)
        self.blobs = await open_blob_store(self.config)
        self.directory = await open_directory(self.config)
        self.delivery = Delivery(self.engine, self.blobs)
        gc = BlobGcWorker.from_config(self.config, self.engine, self.blobs)
        if gc is not None:  # every node tries; the store lease lets one collect at a time
            self._workers.append(asyncio.create_task(gc.run(), name="blob-gc"))
        worker = MaintenanceWorker.from_config(self.config, self.engine)
        if worker is not None:  # likewise leased: one node at a time does a pass
            self._workers.append(asyncio.create_task(worker.run(), name="maintenance"))
        metrics_text = None
        checks: dict[str, HealthCheck] = {"store": self._check_store}
        if self.config.server.workers:
            pool = WorkerPool(self.config, self.config.server.workers,
                              await self._serve_commits())
            self.smtp = pool
            await pool.start()

            async def metrics_text() -> bytes:
                return generate_latest(MergedMetrics(await pool.metrics_texts()))
            checks["workers"] = pool.check
        else:
            self.smtp = await start_smtp(self.config, self.directory, self.delivery)
        # -- LMTP ([lmtp] listen; off by default), in this process also with workers: its
        # client is one local MTA.  To move onto the node's Service seam at merge.
        try:
            self.lmtp = await start_lmtp(self.config, self.directory, self.delivery)
        except LmtpConfigError as e:
            raise StartupError(str(e)) from e
        # -- end LMTP
        app = build_app(checks, metrics_text=metrics_text)
        self.http = HttpListener(app, self.config.server.http_listen)
        await self.http.start()
        log.info("node started", extra={"version": __version__, "http_port": self.http.port,
                                        "smtp_ports": str(self.smtp.ports),
                                        "store": self.engine.name,
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

    async def stop(self) -> None:
        if self.smtp is not None:  # first: answers deliveries in progress, then 421
            await self.smtp.close()
            self.smtp = None
        if self.lmtp is not None:  # LMTP (to move onto the Service seam): as SMTP above
            await self.lmtp.close()
            self.lmtp = None
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._workers.clear()
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
        if self.directory is not None:
            await self.directory.close()
            self.directory = None
        if self.blobs is not None:
            await self.blobs.close()
            self.blobs = None
        if self.engine is not None:
            await self.engine.close()
            self.engine = None
        log.info("node stopped")


def tune_gc() -> None:
    """Call once a server process has started.  Reference counting frees almost
    every object a message makes; the cyclic collector only finds cycles, yet at
    CPython's default threshold (700 allocations) it ran every few messages and
    took ~50 us per delivery, ~5% of its CPU (measured: 214 ms of collections
    for 4,000 deliveries, 18 ms with this).  What start-up made (modules, config,
    connections) is frozen out of its scans; the young generation is collected
    every 20,000 allocations."""
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


async def serve(config: Config) -> int:
    setup_logging(config.server.log_level, config.server.log_format)
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
