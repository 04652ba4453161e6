"""A small HTTPS server on 127.0.0.1 for tests (asyncio streams, HTTP/1.1, one request
per connection): every GET gets the scripted status, headers and body; it records the
requests' first lines and Host headers."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/plain"})


class HttpsServer:
    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.response = Response()
        self.requests: list[tuple[str, str]] = []      # (request line, Host)
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def _handle(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode("latin-1").strip()
            host = ""
            while True:
                header = (await reader.readline()).decode("latin-1")
                if header in ("\r\n", "\n", ""):
                    break
                name, _, value = header.partition(":")
                if name.strip().lower() == "host":
                    host = value.strip()
            self.requests.append((line, host))
            r = self.response
            head = [f"HTTP/1.1 {r.status} X", f"Content-Length: {len(r.body)}",
                    "Connection: close", *(f"{k}: {v}" for k, v in r.headers.items())]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + r.body)
            await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0,
                                                  ssl=self.context)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
