"""Protocol worker processes: every core of a machine for one node.

CPython runs one thread of Python at a time, so a node in one process uses one
core for its protocol work however many the machine has.  With ``[server]
workers = N`` the node's main process keeps what there is one of per node (the
embedded store's writer, the blob GC, maintenance, HTTP) and N worker processes
serve the connections of every service:

* The main process listens and accepts (:mod:`.accept`).  It applies the connection
  limits (``[limits]``: max_connections, per IP, rate per IP) to the whole node,
  then hands the socket to the worker with the fewest open connections over a Unix socket pair
  (SCM_RIGHTS); the worker tells it when the connection ends.
* A worker opens the store itself: FoundationDB directly, the embedded engine
  by reading the file and sending its commits to the main process
  (:mod:`fdb_layers.engine.sqlite.remote`).  It opens the blob store and the
  directory itself, and runs the same services and delivery pipeline as a
  single-process node; its metrics are served by the main process's /metrics
  with a ``process`` label.  Workers write blobs themselves, the local folder's
  pack file included (SQLite serializes its writers; sending the blobs to the
  main process to write instead was measured slower: a round trip per put cost
  more than waiting for the other worker's lock).
* A worker that dies is started again; the connections it held are gone (their
  clients retry, as after any dropped connection) and nothing acknowledged is
  lost, since a worker answers 250 only after the store committed.
* Limits that hold for the node and are counted in the sessions (SMTP's failed AUTH
  and unknown recipients) are shared by the services themselves: a worker's service
  publishes each event, the main process passes it to the other workers' instance of
  the same service (:meth:`server.node.service.Service.connect_peers`).
* Connections are counted when the main process accepts them, before any TLS
  handshake; the worker's handler does the implicit-TLS handshake itself.
* The pool knows no protocol: the listeners and their over-limit replies come from the
  services (:mod:`server.node.service`), which each worker builds from the same
  registered names as the main process.

Control messages (SOCK_SEQPACKET, one message each): to a worker ``I``+pickled
start-up data, ``C<listener> <id> <peer ip>`` with the connection's descriptor,
``M<id>`` (send your metrics), ``E<service>NUL<payload>`` (another worker's service
published it), ``h<id> <status> <JSON>`` and ``q<id> <exposition text>`` (the answers
to ``H`` and ``Q``), ``S`` (stop); from a worker ``R`` (ready), ``X<id>`` (a connection
ended), ``m<id> <exposition text>``, ``E<service>NUL<payload>`` (pass it to the others),
``H<id>`` and ``Q<id>`` (the node's health and merged metrics, for its HTTP server).
The first message, ``I``, carries the HTTP listening socket: every process of the node
serves it (README, "HTTP with worker processes").
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from server.config import Config
from server.net.limits import ConnectionLimits
from server.node.accept import Acceptor
from server.node.http import Health, MetricsText
from server.node.service import Listener, Service

log = logging.getLogger(__name__)

RESTARTS = Counter("fdbmail_worker_restarts_total",
                   "Worker processes that exited unexpectedly and were started again.")
HANDED = Gauge("fdbmail_worker_connections",
               "Connections open on each worker process, as the main process counts them.",
               ("worker",))

SOCKET_BUFFER = 1024 * 1024  # a worker's metrics text is the largest control message
RESTART_DELAY = 1.0
READY_TIMEOUT = 60.0
METRICS_TIMEOUT = 5.0


def control_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        s.setblocking(False)
    return a, b


_BUFFERS: dict[int, bytearray] = {}  # a receive buffer per control socket, reused


async def receive(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One control message and the descriptors sent with it; b"" when the peer is gone."""
    loop = asyncio.get_running_loop()
    buf = _BUFFERS.get(sock.fileno())
    if buf is None:
        buf = _BUFFERS[sock.fileno()] = bytearray(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    while True:
        try:
            fds = array.array("i")
            size, ancdata, _, _ = sock.recvmsg_into(
                [buf], socket.CMSG_SPACE(4 * fds.itemsize))
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_reader(sock.fileno(), ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())
            continue
        except ConnectionError:
            return b"", []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
        return bytes(buf[:size]), list(fds)


def send(sock: socket.socket, data: bytes, fds: Iterable[int] = ()) -> bool:
    """Send one control message; False if the peer is gone or cannot take it now."""
    fds = list(fds)
    try:
        if fds:
            sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            sock.send(data)
        return True
    except OSError:
        return False


@dataclass(eq=False)
class _Worker:
    index: int
    control: socket.socket
    process: asyncio.subprocess.Process
    # connection id -> (listener, peer IP)
    connections: dict[str, tuple[str, str]] = field(default_factory=dict)
    ready: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop()
                                        .create_future())
    metrics: dict[str, asyncio.Future[bytes]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None


class WorkerPool:
    """The main process's side: accepting (through the node's :class:`Acceptor`) and
    the workers' lives."""

    def __init__(self, config: Config, count: int, commit_socket: str | None,
                 acceptor: Acceptor, services: tuple[str, ...],
                 local: Sequence[Service] = (), *,
                 http_sockets: Sequence[socket.socket] = (),
                 routes: tuple[str, ...] = ()) -> None:
        self.config = config
        self.count = count
        self.commit_socket = commit_socket
        self.acceptor = acceptor
        self.services = services      # the registered names each worker builds
        # this process's instances: told the workers' events too (node-wide state here)
        self.local = {s.name: s for s in local}
        self.http_sockets = http_sockets  # worker i serves the i-th (the node's HTTP port)
        self.routes = routes              # with these registered routes
        # the answers to a worker's /healthz and /metrics (the node's, not the worker's)
        self.http_answers: tuple[Health, MetricsText] | None = None
        self._answering: set[asyncio.Task[None]] = set()
        self._workers: list[_Worker | None] = [None] * count
        self._readers: set[asyncio.Task[None]] = set()  # one per worker, restarts included
        self._ids = itertools.count(1)
        self._closing = False

    @property
    def ports(self) -> dict[str, int]:
        """Each TCP listener's bound port, by listener name."""
        return {name: port for name, (_, port) in self.acceptor.addresses.items()}

    @property
    def limits(self) -> ConnectionLimits:
        """The node-wide connection limits the main process admits by."""
        return self.acceptor.limits

    async def check(self) -> None:
        """Health: every worker is running (one being replaced makes the node unhealthy
        for the second or so it takes)."""
        running = sum(1 for w in self._workers if w is not None and w.ready.done()
                      and w.ready.exception() is None and w.process.returncode is None)
        if running < self.count:
            raise RuntimeError(f"{running} of {self.count} worker processes running")

    def pids(self) -> list[int]:
        """The live workers' process ids."""
        return [w.process.pid for w in self._workers if w is not None]

    async def start(self) -> None:
        """Start the workers, then accept on the acceptor's (bound) listeners."""
        try:
            await asyncio.gather(*(self._spawn(i) for i in range(self.count)))
        except BaseException:
            await self.close()
            raise
        self.acceptor.start(self._hand_over,
                            served_by=f", served by {self.count} worker processes")

    async def _spawn(self, index: int) -> None:
        mine, theirs = control_pair()
        # the same code as this process, wherever it was imported from
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.node.worker", str(theirs.fileno()),
            pass_fds=[theirs.fileno()], env=env)
        theirs.close()
        worker = _Worker(index, mine, process)
        self._workers[index] = worker
        send(mine, b"I" + pickle.dumps((self.config, self.commit_socket, index,
                                        self.services, self.routes)),
             [self.http_sockets[index].fileno()] if self.http_sockets else [])
        worker.reader = asyncio.create_task(self._listen(worker), name=f"worker-{index}")
        self._readers.add(worker.reader)
        worker.reader.add_done_callback(self._readers.discard)
        try:
            await asyncio.wait_for(asyncio.shield(worker.ready), READY_TIMEOUT)
        except (TimeoutError, ConnectionError) as e:
            if process.returncode is None:  # its listener sees it exit; the caller retries
                process.kill()
            raise RuntimeError(f"worker {index} did not start: {e or 'timeout'}") from e
        log.info("worker %d started (pid %d)", index, process.pid)

    async def _listen(self, worker: _Worker) -> None:
        """Messages from one worker until it is gone; then start another in its place."""
        while True:
            data, fds = await receive(worker.control)
            for fd in fds:  # never expected from a worker
                os.close(fd)
            if not data:
                break
            kind, body = data[:1], data[1:]
            if kind == b"R":
                if not worker.ready.done():
                    worker.ready.set_result(None)
            elif kind == b"X":
                ended = worker.connections.pop(body.decode(), None)
                if ended is not None:
                    self.acceptor.release(*ended)
                    HANDED.labels(str(worker.index)).set(len(worker.connections))
            elif kind == b"E":  # a service's node-wide event: every other worker's too
                name, _, payload = body.partition(b"\0")
                here = self.local.get(name.decode("utf-8", "replace"))
                if here is not None:
                    here.from_peer(payload)
                for other in self._workers:
                    if other is not None and other is not worker:
                        send(other.control, data)
            elif kind in (b"H", b"Q"):  # a worker's /healthz or /metrics request
                task = asyncio.create_task(self._answer(worker, kind, body))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
            elif kind == b"m":
                request, _, text = body.partition(b" ")
                waiter = worker.metrics.pop(request.decode(), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(text)
        code = await worker.process.wait()
        served = worker.ready.done() and worker.ready.exception() is None
        for ended in worker.connections.values():
            self.acceptor.release(*ended)
        worker.connections.clear()
        HANDED.labels(str(worker.index)).set(0)
        for waiter in worker.metrics.values():
            waiter.cancel()
        _BUFFERS.pop(worker.control.fileno(), None)
        worker.control.close()
        if not worker.ready.done():
            worker.ready.set_exception(ConnectionError(f"exited with {code}"))
        if self._closing or not served:  # one that never started: its _spawn's caller retries
            return
        log.error("worker %d exited with %s; starting another", worker.index, code)
        RESTARTS.inc()
        self._workers[worker.index] = None
        while not self._closing:
            await asyncio.sleep(RESTART_DELAY)
            if self._closing:  # close() began while we waited: start nothing
                return
            try:
                await self._spawn(worker.index)
                return
            except Exception as e:
                log.error("worker %d could not be started again: %s", worker.index, e)

    def _hand_over(self, listener: Listener, conn_id: str, ip: str,
                   conn: socket.socket) -> bool:
        live = [w for w in self._workers if w is not None and w.ready.done()
                and not w.ready.exception()]
        if not live:
            return False
        worker = min(live, key=lambda w: len(w.connections))
        if not send(worker.control, f"C{listener.name} {conn_id} {ip}".encode(),
                    [conn.fileno()]):
            return False
        worker.connections[conn_id] = (listener.name, ip)
        HANDED.labels(str(worker.index)).set(len(worker.connections))
        return True

    async def _answer(self, worker: _Worker, kind: bytes, request: bytes) -> None:
        if self.http_answers is None:
            return
        health, metrics = self.http_answers
        if kind == b"H":
            status, body = await health()
            send(worker.control, b"h" + request + b" " + str(status).encode() + b" " + body)
        else:
            send(worker.control, b"q" + request + b" " + await metrics())

    async def metrics_texts(self) -> dict[str, bytes]:
        """Each live worker's metrics (exposition text), by worker name."""
        asked: dict[str, asyncio.Future[bytes]] = {}
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            if worker is None or not worker.ready.done() or worker.ready.exception():
                continue
            request = str(next(self._ids))
            waiter: asyncio.Future[bytes] = loop.create_future()
            worker.metrics[request] = waiter
            if send(worker.control, f"M{request}".encode()):
                asked[f"worker-{worker.index}"] = waiter
        if asked:
            await asyncio.wait(asked.values(), timeout=METRICS_TIMEOUT)
        return {name: f.result() for name, f in asked.items()
                if f.done() and not f.cancelled() and f.exception() is None}

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting; each worker answers the deliveries in progress (up to
        ``grace`` seconds) and closes its connections, then exits."""
        self._closing = True
        await self.acceptor.close()
        workers = [w for w in self._workers if w is not None]
        for worker in workers:
            send(worker.control, b"S")
        for worker in workers:
            try:
                await asyncio.wait_for(worker.process.wait(), grace + 5)
            except TimeoutError:
                log.error("worker %d did not stop; killing it", worker.index)
                worker.process.kill()
                await worker.process.wait()
        # the readers of these workers end with them (and close their sockets)...
        ended = [w.reader for w in workers if w.reader is not None]
        if ended:
            await asyncio.wait(ended, timeout=grace)
        # ...while a dead worker's may be waiting to start another: it must not
        for task in list(self._readers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = [None] * self.count


class MergedMetrics:
    """A collector of this process's metrics and the workers' (parsed from their
    exposition text), each sample labelled with the process it came from; the
    ``*_created`` series are left out."""

    def __init__(self, workers: dict[str, bytes]) -> None:
        self.workers = workers

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        sources: list[tuple[str, Iterable[Metric]]] = [("main", REGISTRY.collect())]
        for name, text in self.workers.items():
            sources.append((name, text_string_to_metric_families(text.decode())))
        for process, families in sources:
            for family in families:
                # Counters' and histograms' optional *_created series: the text a
                # worker sends parses them as families of their own, which would
                # clash with this process's; they are left out.
                if family.name.endswith("_created"):
                    continue
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(family.name, family.documentation,
                                                       family.type, family.unit)
                for sample in family.samples:
                    if sample.name.endswith("_created"):
                        continue
                    out.add_sample(sample.name, {**sample.labels, "process": process},
                                   sample.value, sample.timestamp, sample.exemplar)
        return merged.values()
