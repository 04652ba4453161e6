"""The Service seam: a toy protocol defined here, served by a real node in one process
and in worker processes, with its own over-limit refusal and node-wide events."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from server.config import load_config
from server.net.listen import ListenAddress
from server.node.node import Node
from server.node.parts import NodeParts
from server.node.service import STOP_GRACE, Connection, Listener, TlsMode

TOY = ("tests.server.node.test_service:build",)


class ToyProtocol(asyncio.Protocol):
    """``HELLO <pid>`` on connect; a line ``TELL x`` is published to the other
    processes; ``HEARD`` answers what this process heard from the others; any other
    line is echoed; ``QUIT`` closes."""

    def __init__(self, service: ToyService, conn: Connection) -> None:
        self.service = service
        self.conn = conn
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.service.open.add(self)
        transport.write(f"HELLO {os.getpid()} {self.conn.listener}\r\n".encode())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            line = line.rstrip(b"\r")
            if line == b"QUIT":
                self.transport.write(b"BYE\r\n")
                self.transport.close()
            elif line.startswith(b"TELL "):
                self.service.publish(line[5:])
                self.transport.write(b"TOLD\r\n")
            elif line == b"HEARD":
                self.transport.write(b"HEARD " + b",".join(self.service.heard) + b"\r\n")
            else:
                self.transport.write(line + b"\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.service.open.discard(self)
        self.conn.end()


class ToyService:
    name = "toy"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.open: set[ToyProtocol] = set()
        self.heard: list[bytes] = []
        self.publish: Callable[[bytes], None] = lambda payload: None

    def listeners(self) -> Sequence[Listener]:
        def handler(conn: Connection) -> asyncio.Protocol:
            return ToyProtocol(self, conn)

        def refusal(reason: str) -> bytes:
            return f"BUSY {reason}\r\n".encode()

        return [Listener("toy", ListenAddress("127.0.0.1", 0), TlsMode.NONE, handler,
                         refusal=refusal),
                Listener("toy-local", ListenAddress(path=str(self.data_dir / "toy.sock")),
                         TlsMode.NONE, handler, refusal=refusal)]

    def connect_peers(self, publish: Callable[[bytes], None]) -> None:
        self.publish = publish

    def from_peer(self, payload: bytes) -> None:
        self.heard.append(payload)

    async def close(self, grace: float) -> None:
        for protocol in list(self.open):
            assert protocol.transport is not None
            protocol.transport.write(b"CLOSING\r\n")
            protocol.transport.close()


async def build(parts: NodeParts) -> ToyService:
    return ToyService(parts.config.data_dir)


def _config(tmp_path: Path, workers: int):  # type: ignore[no-untyped-def]
    return load_config(None, env={}).with_overrides({
        "server": {"data_dir": str(tmp_path / "data"), "http_listen": "127.0.0.1:0",
                   "workers": workers, "log_level": "WARNING"},
        "limits": {"max_connections_per_ip": 2},
    })


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return reader, writer, await asyncio.wait_for(reader.readline(), 10)


async def _say(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes],
               line: bytes) -> bytes:
    conn[1].write(line + b"\r\n")
    return await asyncio.wait_for(conn[0].readline(), 10)


@pytest.mark.parametrize("workers", [0, 2])
async def test_a_toy_service_is_served_with_its_own_refusal(tmp_path: Path,
                                                            workers: int) -> None:
    node = Node(_config(tmp_path, workers), services=TOY)
    await node.start()
    try:
        assert set(node.ports) == {"toy"}
        port = node.ports["toy"]
        first, second = await _open(port), await _open(port)
        pids = set()
        for conn in (first, second):
            hello = conn[2].split()
            assert hello[0] == b"HELLO" and hello[2] == b"toy"
            pids.add(int(hello[1]))
            assert await _say(conn, b"ping") == b"ping\r\n"
        if workers:  # served by the workers, one connection each (fewest first)
            assert os.getpid() not in pids and len(pids) == 2
        else:
            assert pids == {os.getpid()}
        # over [limits] max_connections_per_ip: the service's refusal, then closed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.readline(), 10) == \
            b"BUSY max_connections_per_ip\r\n"
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        # a connection that ends gives its place back
        assert await _say(first, b"QUIT") == b"BYE\r\n"
        assert await asyncio.wait_for(first[0].read(), 10) == b""
        for _ in range(200):
            third = await _open(port)
            if third[2].startswith(b"HELLO"):
                break
            third[1].close()
            await asyncio.sleep(0.01)  # the worker's "ended" reaches the main process
        assert third[2].startswith(b"HELLO")
        # the Unix socket listener of the same service
        reader, writer = await asyncio.open_unix_connection(
            str(tmp_path / "data" / "toy.sock"))
        assert (await asyncio.wait_for(reader.readline(), 10)).split()[2] == b"toy-local"
        writer.close()
        if workers:  # an event published by one worker reaches the other (and main)
            assert await _say(second, b"TELL hi") == b"TOLD\r\n"
            for _ in range(200):
                if await _say(third, b"HEARD") == b"HEARD hi\r\n":
                    break
                await asyncio.sleep(0.01)
            assert await _say(third, b"HEARD") == b"HEARD hi\r\n"
        # stopping: the service's close runs on open connections
        await node.stop(grace=STOP_GRACE)
        assert await asyncio.wait_for(second[0].readline(), 10) == b"CLOSING\r\n"
        assert not (tmp_path / "data" / "toy.sock").exists()
    finally:
        await node.stop()


def routes(parts: NodeParts) -> list[BaseRoute]:
    """A toy HTTP package: which process served the request."""
    async def whoami(request: Request) -> Response:
        return PlainTextResponse(str(os.getpid()))
    return [Route("/whoami", whoami)]


async def test_http_is_served_by_the_workers_and_answers_for_the_node(
        tmp_path: Path) -> None:
    """With workers, the workers serve HTTP (JMAP on every core) and the main process
    none; a worker's /metrics and /healthz are the node's (merged, from the main
    process)."""
    node = Node(_config(tmp_path, 2), services=TOY,
                routes=("tests.server.node.test_service:routes",))
    await node.start()
    try:
        assert node.http is not None and node.pool is not None
        url = f"http://127.0.0.1:{node.http.port}"
        workers = set(node.pool.pids())
        seen: set[int] = set()
        for _ in range(40):  # new connections, spread by the kernel over the workers
            async with httpx.AsyncClient() as client:
                seen.add(int((await client.get(f"{url}/whoami")).text))
        assert seen == workers, (seen, workers)  # both, and never the main process
        async with httpx.AsyncClient() as client:
            pid = int((await client.get(f"{url}/whoami")).text)
            health = await client.get(f"{url}/healthz")
            text = (await client.get(f"{url}/metrics")).text
            # the same (kept-alive) connection: the same worker answered for the node
            assert int((await client.get(f"{url}/whoami")).text) == pid
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "checks": {"store": "ok", "workers": "ok"}}
        assert 'process="main"' in text and 'process="worker-0"' in text \
            and 'process="worker-1"' in text
    finally:
        await node.stop()
