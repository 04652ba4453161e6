#!/usr/bin/env python3
"""CPU per request of ops/bench/jmap.py's query+get, through the node's ASGI app in this
process: no sockets, no HTTP parser, no other process, so a step's effect on the node's
own work shows above the noise of a shared machine (the bench's node CPU per request,
summed over processes that the scheduler interleaves with everything else, varies more
between runs than most steps move it).

A node (sqlite engine, embedded defaults, no worker processes) is started in this
process, one account filled with ``messages`` (as the bench fills them), and the request
sent ``requests`` times per round; the best round's CPU per request is printed beside
every round's.  ``--profile FILE`` writes cProfile's stats of the rounds.

    .venv/bin/python ops/bench/jmap_cpu.py [--messages 1000] [--requests 300]
        [--rounds 7] [--profile FILE] [--echo]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
import jmap as bench
from cpu_rounds import cpu_per_call, report

from fdb_layers.mail import find_mailbox, transact
from server.config import load_config
from server.node.node import Node

Message = MutableMapping[str, Any]


def _scope(port: int, user: str, body: bytes) -> dict[str, Any]:
    auth = base64.b64encode(f"{user}:{bench.PASSWORD}".encode())
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": bench.API,
            "raw_path": bench.API.encode(), "root_path": "", "query_string": b"",
            "headers": [(b"host", f"127.0.0.1:{port}".encode()),
                        (b"authorization", b"Basic " + auth),
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", port)}


async def run(messages: int, requests: int, rounds: int, profile: str | None,
              echo: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = bench.free_port()
        cfg = bench.write_config(Path(tmp), port, ["cpu"], 0)
        node = Node(load_config(cfg, env={}))
        await node.start()
        try:
            assert node.directory is not None and node.engine is not None
            assert node.http is not None
            principal = await node.directory.get_principal("cpu")
            assert principal is not None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                         auth=("cpu", bench.PASSWORD)) as c:
                await bench.call(c, ["Mailbox/get", {"accountId": principal.id,
                                                     "ids": []}, "m"])
            box = await transact(node.engine, find_mailbox, principal.id, "INBOX")
            await bench.fill(node.engine, principal.id, box.id, messages)
            app = node.http._app  # the node's own app, as its listener serves it
            assert app is not None
            calls = ([["Core/echo", {"hello": True}, "e"]] if echo
                     else bench.query_and_get(principal.id, box.id))
            body = json.dumps({"using": bench.USING, "methodCalls": calls}).encode()
            scope = _scope(port, "cpu", body)

            async def one() -> bytes:
                sent = False
                chunks: list[bytes] = []

                async def receive() -> Message:
                    nonlocal sent
                    if sent:  # the client stays connected until the answer is sent
                        await asyncio.Event().wait()
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}

                async def send(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        if message["status"] != 200:
                            raise SystemExit(f"status {message['status']}")
                    else:
                        chunks.append(message.get("body", b""))

                await app(dict(scope), receive, send)
                return b"".join(chunks)

            first = await one()
            if not echo:
                bench.check_query_and_get(first)
            for _ in range(50):  # the caches warm, as after a list view's first refresh
                await one()
            per_round = await cpu_per_call(one, requests, rounds, profile)
            print(f"{messages:,} messages, {requests} requests x {rounds} rounds: CPU per "
                  f"request {report(per_round, 3)}")
        finally:
            await node.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=300, help="requests per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--profile", metavar="FILE")
    ap.add_argument("--echo", action="store_true",
                    help="Core/echo instead of the query+get: the HTTP path, authentication "
                         "and the request's parsing alone")
    args = ap.parse_args()
    asyncio.run(run(args.messages, args.requests, args.rounds, args.profile, args.echo))


if __name__ == "__main__":
    main()
