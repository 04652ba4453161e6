#!/usr/bin/env python3
"""CPU per command of ops/bench/imap.py's ``UID FETCH 1:* (FLAGS ENVELOPE)``, through the
node's own IMAP connection and session code in this process: no socket, no client, no
other process, so a step's effect on the node's work shows above the noise of a shared
machine (the bench's server CPU per command varies between runs more than most steps
move it).

A node (sqlite engine, embedded defaults, no worker processes) is started in this
process; a connection of its IMAP listener is made on a transport that keeps what it is
sent in memory (``_Sink``); the account's INBOX is filled with ``messages`` messages by
APPEND on that connection, as the bench fills it (the same messages); the session then
SELECTs INBOX and sends the command ``commands`` times per round (each answered whole
before the next).  The first answer's size and digest are printed: a change that should
not alter the wire form must leave them as they were.  The best round's CPU per command
is printed beside every round's.  ``--profile FILE`` writes cProfile's stats of the
rounds.

    .venv/bin/python ops/bench/imap_cpu.py [--messages 2000] [--commands 20]
        [--rounds 7] [--command "UID FETCH 1:* (FLAGS ENVELOPE)"] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import imap as bench
from cpu_rounds import cpu_per_call, report

from server.config import load_config
from server.imap.connection import ImapConnection, ListenerContext
from server.imap.service import ImapNodeService
from server.node.node import Node


class _Sink(asyncio.Transport):
    """A transport that keeps the octets written to it and tells when a tagged answer
    arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []
        self.tag = b""
        self.answered = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        chunk = bytes(data)
        self.chunks.append(chunk)
        if self.tag and (chunk.startswith(self.tag) or b"\r\n" + self.tag in chunk):
            self.answered.set()

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


class _Client:
    """Commands fed to a connection of the node, answered through :class:`_Sink`."""

    def __init__(self, ctx: ListenerContext) -> None:
        self.sink = _Sink()
        self.conn = ImapConnection(ctx)
        self.conn.connection_made(self.sink)
        self.n = 0

    async def command(self, text: bytes, literal: bytes | None = None) -> bytes:
        self.n += 1
        tag = b"c%d " % self.n
        self.sink.tag, self.sink.chunks = tag, []
        self.sink.answered.clear()
        if literal is None:
            self.conn.data_received(tag + text + b"\r\n")
        else:
            self.conn.data_received(b"%s%s {%d+}\r\n%s\r\n" % (tag, text, len(literal),
                                                               literal))
        await self.sink.answered.wait()
        answer = b"".join(self.sink.chunks)
        if not answer.startswith(tag + b"OK") and b"\r\n" + tag + b"OK" not in answer:
            raise SystemExit(f"{text[:60]!r} failed: {answer[-300:]!r}")
        return answer


async def run(messages: int, commands: int, rounds: int, command: bytes,
              profile: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = bench.write_config(Path(tmp), None, 0)
        bench.add_users(cfg, [bench.USER])
        node = Node(load_config(cfg, env={}))
        await node.start()
        try:
            service = next(s for s in node.services if isinstance(s, ImapNodeService))
            client = _Client(service.contexts["imap"][1])
            await client.command(f'LOGIN {bench.USER} "{bench.PASSWORD}"'.encode())
            for i in range(messages):
                await client.command(b"APPEND INBOX", bench.message(i, 10 * 1024))
            await client.command(b"SELECT INBOX")
            first = await client.command(command)
            print(f"{command.decode()}: {len(first):,} octets, "
                  f"{first.count(b' FETCH ('):,} FETCH responses, sha256 "
                  f"{hashlib.sha256(first).hexdigest()[:16]} (the same messages each run: "
                  "a step that changes no octet keeps it)")
            for _ in range(3):   # the caches warm, as after the bench's first session
                await client.command(command)
            per_round = await cpu_per_call(lambda: client.command(command), commands,
                                           rounds, profile)
            print(f"{messages:,} messages, {commands} commands x {rounds} rounds: CPU per "
                  f"command {report(per_round, 2)}")
            await client.command(b"LOGOUT")
        finally:
            await node.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--commands", type=int, default=20, help="commands per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--command", default="UID FETCH 1:* (FLAGS ENVELOPE)")
    ap.add_argument("--profile", metavar="FILE")
    args = ap.parse_args()
    asyncio.run(run(args.messages, args.commands, args.rounds, args.command.encode(),
                    args.profile))


if __name__ == "__main__":
    main()
