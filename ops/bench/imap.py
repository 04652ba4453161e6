#!/usr/bin/env python3
"""IMAP benchmark, the parts of issue 12 about the selected mailbox's view:

1. SELECT / EXAMINE / STATUS p50 and p99 on mailboxes of 1,000 / 100,000 / 1,000,000
   messages (index-only fill: appends through the mail layer in batches of 500 per
   transaction, no blobs), over a real node's IMAP port with imaplib; goal: within 2x of
   each other and under 20 ms.
2. Memory per authenticated connection in IDLE (with INBOX selected), at N connections
   (default 1,000): the growth of the process's RSS divided by N.  The node and the
   asyncio clients share the process, so this is an upper bound of the node's share.

Not here yet: the K-client command workload (LOGIN, SELECT, UID FETCH, UID SEARCH, UID
STORE, BODY[] fetches) and its side-by-side run against Dovecot, and the APPEND rate.

    .venv/bin/python ops/bench/imap.py [--sizes 1000,100000,1000000] [--idle 1000]
        [--repeat 50]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import imaplib
import io
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.mail import find_mailbox, transact
from fdb_layers.mail.messages import NewEmail, append_email
from fdb_layers.mail.threads import ThreadHeaders
from server.cli import main as cli
from server.config import load_config
from server.node.node import Node

PASSWORD = "bench password"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def write_config(root: Path, users: list[str]) -> Path:
    path = root / "fdbmail.toml"
    path.write_text(
        f'[server]\ndata_dir = "{root / "data"}"\nhttp_listen = "127.0.0.1:0"\nworkers = 0\n'
        'log_level = "WARNING"\nhostname = "imap.bench"\n'
        '[smtp]\nmx_listen = ""\nsubmission_listen = ""\nsubmissions_listen = ""\n'
        '[imap]\nlisten = "127.0.0.1:0"\ntls_listen = ""\nauth_require_tls = false\n'
        '[limits]\nmax_connections = 20000\nmax_connections_per_ip = 0\n'
        'connection_rate_per_ip = 0\n')
    for user in users:
        old = sys.stdin
        sys.stdin = io.StringIO(PASSWORD + "\n")
        try:
            assert cli(["-c", str(path), "directory", "add", user, "--email",
                        f"{user}@bench.test", "--password-stdin"]) == 0
        finally:
            sys.stdin = old
    return path


async def fill(engine: Engine, account: str, mailbox_id: str, n: int) -> float:
    """Index-only appends, 500 per transaction; seconds taken."""
    async def batch(tr: Transaction, first: int, count: int) -> None:
        for i in range(first, first + count):
            blob = hashlib.sha256(f"{account}/{i}".encode()).hexdigest()
            email = NewEmail(f"E{i}", blob, 10 * 1024, 1_700_000_000.0 + i, b"",
                             ThreadHeaders(f"<{account}-{i}@x>", (), (), f"subject {i}"),
                             keywords=("$seen",) if i % 2 else ())
            await append_email(tr, account, mailbox_id, email, delivery_id=f"b{i}")

    started = time.perf_counter()
    for first in range(0, n, 500):
        await transact(engine, batch, first, min(500, n - first))
    return time.perf_counter() - started


def time_commands(port: int, user: str, repeat: int) -> dict[str, list[float]]:
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(user, PASSWORD)
    out: dict[str, list[float]] = {"SELECT": [], "EXAMINE": [], "STATUS": []}
    for _ in range(repeat):
        for name, run in (("SELECT", lambda: c.select("INBOX")),
                          ("EXAMINE", lambda: c.select("INBOX", readonly=True)),
                          ("STATUS", lambda: c.status(
                              "INBOX", "(MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)"))):
            started = time.perf_counter()
            typ, _ = run()
            out[name].append(time.perf_counter() - started)
            assert typ == "OK"
        c.unselect()
    c.logout()
    return out


def login_once(port: int, user: str) -> None:
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(user, PASSWORD)
    c.logout()


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def idle_memory(port: int, user: str, n: int) -> tuple[int, float]:
    """(connections in IDLE, KB of RSS per connection)."""
    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        await r.readline()
        w.write(f'a LOGIN {user} "{PASSWORD}"\r\ns SELECT INBOX\r\ni IDLE\r\n'.encode())
        while not (await r.readline()).startswith(b"+ "):
            pass
        return r, w

    before = rss_kb()
    conns = []
    for start in range(0, n, 100):
        conns += await asyncio.gather(*(one() for _ in range(min(100, n - start))))
    await asyncio.sleep(1)
    per = (rss_kb() - before) / n
    for _, w in conns:
        w.write(b"DONE\r\nl LOGOUT\r\n")
        w.close()
    return len(conns), per


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--idle", type=int, default=1000)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, sqlite engine")
    with tempfile.TemporaryDirectory() as tmp:
        users = [f"m{n}" for n in sizes]
        node = Node(load_config(write_config(Path(tmp), users), env={}))
        await node.start()
        try:
            assert node.engine is not None and node.directory is not None
            port = node.ports["imap"]
            results = {}
            for n, user in zip(sizes, users, strict=True):
                principal = await node.directory.get_principal(user)
                assert principal is not None
                await asyncio.to_thread(login_once, port, user)   # creates the account
                box = await transact(node.engine, find_mailbox, principal.id, "INBOX")
                took = await fill(node.engine, principal.id, box.id, n)
                print(f"filled {n:>9,} messages (index only) in {took:7.1f} s")
                results[n] = await asyncio.to_thread(time_commands, port, user, args.repeat)
            print(f"\n{'messages':>10} {'SELECT p50':>12} {'p99':>11} {'EXAMINE p50':>12} "
                  f"{'STATUS p50':>12} {'p99':>11}")
            for n, r in results.items():
                print(f"{n:>10,} {ms(pct(r['SELECT'], 50))} {ms(pct(r['SELECT'], 99))} "
                      f"{ms(pct(r['EXAMINE'], 50))} {ms(pct(r['STATUS'], 50))} "
                      f"{ms(pct(r['STATUS'], 99))}")
            small, large = results[sizes[0]], results[sizes[-1]]
            for cmd in ("SELECT", "EXAMINE", "STATUS"):
                ratio = pct(large[cmd], 50) / pct(small[cmd], 50)
                print(f"{cmd} p50 {sizes[-1]:,} / {sizes[0]:,}: {ratio:.2f}x")
            if args.idle:
                got, per = await idle_memory(port, users[0], args.idle)
                print(f"\nIDLE: {got} connections, {per:.1f} KB RSS each (node and clients in "
                      "one process: an upper bound)")
        finally:
            await node.stop()


if __name__ == "__main__":
    asyncio.run(main())
