#!/usr/bin/env python3
"""SMTP benchmark: durable delivery through the MX listener against a bare aiosmtpd server
that discards mail (the ceiling), side by side, in one run.  Both run --repeat times,
alternately, and the ratio is that of their medians (a shared VM's CPU and disk vary a lot from
one run to the next).  On ext4, creating files is slower for a minute or more after many were
deleted (the allocator skips recently freed inodes): leave a minute after deleting a lot, this
script's own clean-up of a previous run included, for steady figures.

N messages of SIZE octets over C concurrent connections (each connection pipelines
MAIL/RCPT/DATA, RFC 2920), each message to one of U local users.  fdbmail answers 250 only
after the blob (fs store, synced to disk) and the index (sqlite engine) are durable; the ceiling
answers 250 as soon as the data is read.  fdbmail runs as one process and, with
--workers N (default 2), as a node whose SMTP sessions run in N worker processes
([server] workers; its CPU and peak RSS are those of all its processes).  Each server runs in
its own process (its peak RSS is its own), every run on a fresh store and blob folder; the
client load runs in this process.

    .venv/bin/python ops/bench/smtp.py [--messages 2000] [--size 10240] [--connections 20]
                                       [--users 100] [--repeat 3] [--workers 2] [--quick]
                                       [--breakdown]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing as mp
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

if TYPE_CHECKING:
    from server.delivery import DeliveryRequest, DeliveryResult

DOMAIN = "bench.example"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def write_config(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / "fdbmail.toml"
    cfg.write_text(f"""
[server]
data_dir = "{root / 'data'}"
hostname = "mx.bench.example"
[smtp]
mx_listen = "127.0.0.1:0"
submission_listen = ""
submissions_listen = ""
mx_starttls = false
[limits]
max_connections_per_ip = 0
connection_rate_per_ip = 0
""")
    return cfg


def create_users(cfg: Path, users: int) -> None:
    from server.cli import main as cli
    quiet = io.StringIO()
    old = sys.stdout
    sys.stdout = quiet
    try:
        assert cli(["-c", str(cfg), "directory", "add-domain", DOMAIN]) == 0
        for i in range(users):
            assert cli(["-c", str(cfg), "directory", "add", f"user{i}",
                        "--email", f"user{i}@{DOMAIN}"]) == 0
    finally:
        sys.stdout = old


# -- servers (each in a child process) ---------------------------------------------------

def serve(mode: str, cfg: str, conn: Connection) -> None:
    asyncio.run(_serve(mode, Path(cfg), conn))


async def _serve(mode: str, cfg: Path, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    closers = []
    worker_pids: list[int] = []
    if mode == "ceiling":
        from aiosmtpd.smtp import SMTP

        class Discard:
            async def handle_DATA(self, server: object, session: object,
                                  envelope: object) -> str:
                return "250 OK"

        server = await loop.create_server(lambda: SMTP(Discard(), hostname="ceiling"),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def close_ceiling() -> None:
            server.close()
            await server.wait_closed()
        closers.append(close_ceiling)
    elif mode == "discard":
        from server.config import load_config
        from server.delivery import Discarded
        from server.directory import open_directory
        from server.smtp import start_smtp

        class Null:
            async def deliver(self, request: DeliveryRequest) -> Sequence[DeliveryResult]:
                return [Discarded(a) for a in request.account_ids]

        config = load_config(cfg, env={})
        directory = await open_directory(config)
        service = await start_smtp(config, directory, Null())
        port = service.ports["mx"]
        closers += [service.close, directory.close]
    elif mode.startswith("workers="):
        from server.node.node import Node
        from server.config import load_config

        workers = int(mode.split("=", 1)[1])
        node = Node(load_config(cfg, env={"FDBMAIL_SERVER_WORKERS": str(workers),
                                          "FDBMAIL_SERVER_LOG_LEVEL": "WARNING"}))
        await node.start()
        assert node.pool is not None
        port = node.ports["mx"]
        worker_pids = node.pool.pids()
        closers.append(node.stop)
    else:
        from fdb_layers.engine.sqlite import SqliteEngine
        from server.blobs import open_blob_store
        from server.config import load_config
        from server.delivery import Delivery
        from server.directory import open_directory
        from server.smtp import start_smtp

        config = load_config(cfg, env={})
        engine = await SqliteEngine.open(config.data_dir / "store.sqlite3")
        blobs = await open_blob_store(config)
        directory = await open_directory(config)
        service = await start_smtp(config, directory, Delivery(engine, blobs))
        port = service.ports["mx"]
        closers += [service.close, directory.close, blobs.close, engine.close]
    if mode != "ceiling":
        from server.node.tuning import tune_gc
        tune_gc()  # as `fdbmail serve` does once started
    conn.send(port)
    before, cpu_before = thread_cpu(), process_cpu(worker_pids)
    await loop.run_in_executor(None, conn.recv)            # until told to stop
    after, cpu = thread_cpu(), process_cpu(worker_pids) - cpu_before  # the load's CPU only
    workers_rss = sum(peak_rss_kib(pid) for pid in worker_pids)
    for close in closers:
        await close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    threads = {k: v - before.get(k, 0.0) for k, v in after.items()}
    conn.send((usage.ru_maxrss + workers_rss, cpu, threads))  # KiB on Linux, s


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of this process and of ``pids`` so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def peak_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# -- the client load ---------------------------------------------------------------------

def message(i: int, size: int) -> bytes:
    head = (f"From: load@client.test\r\nTo: user@{DOMAIN}\r\nSubject: bench {i}\r\n"
            f"Message-ID: <bench-{i}-{time.time_ns()}@client.test>\r\n"
            "Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n\r\n").encode()
    line = b"The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnop\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def connection(port: int, jobs: list[int], size: int, users: int,
                     latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO client.test\r\n")
    await _reply(reader)
    for i in jobs:
        data = message(i, size).replace(b"\r\n.", b"\r\n..") + b".\r\n"
        started = time.perf_counter()
        writer.write(b"MAIL FROM:<load@client.test>\r\nRCPT TO:<user%d@%s>\r\nDATA\r\n"
                     % (i % users, DOMAIN.encode()))
        for expect in (b"250", b"250", b"354"):
            got = await _reply(reader)
            assert got.startswith(expect), got
        writer.write(data)
        got = await _reply(reader)
        assert got.startswith(b"250"), got
        latencies.append(time.perf_counter() - started)
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


async def load(port: int, messages: int, size: int, conns: int, users: int
               ) -> tuple[float, list[float]]:
    latencies: list[float] = []
    jobs = [list(range(c, messages, conns)) for c in range(conns)]
    started = time.perf_counter()
    await asyncio.gather(*(connection(port, j, size, users, latencies) for j in jobs))
    return time.perf_counter() - started, latencies


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process's live threads, by kind: the event
    loop, the default executor (blob puts), the store's commit thread (Linux only)."""
    import threading
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "other")
        kind = ("event loop" if name == "MainThread" else
                "executor" if name.startswith("asyncio") else
                "store commit" if name.startswith("sqlite-commit") else "other")
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def pipeline_alone(cfg: str, args: argparse.Namespace, conn: Connection) -> None:
    """The delivery pipeline called directly, as many at a time as there are connections."""
    async def go() -> None:
        from fdb_layers.engine.sqlite import SqliteEngine
        from server.blobs import open_blob_store
        from server.config import load_config
        from server.delivery import Delivery, DeliveryRequest, Recipient, Source

        config = load_config(Path(cfg), env={})
        engine = await SqliteEngine.open(config.data_dir / "pipeline.sqlite3")
        blobs = await open_blob_store(config)
        delivery = Delivery(engine, blobs)
        gate = asyncio.Semaphore(args.connections)
        latencies: list[float] = []

        async def one(i: int) -> None:
            async with gate:
                started = time.perf_counter()
                await delivery.deliver(DeliveryRequest(
                    Source.SMTP, message(i, args.size), (Recipient(f"user{i % args.users}"),),
                    f"bench-{i}-{time.time_ns()}"))
                latencies.append(time.perf_counter() - started)
        before, cpu_before = thread_cpu(), process_cpu([])
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(args.messages)))
        elapsed = time.perf_counter() - started
        after, cpu = thread_cpu(), process_cpu([]) - cpu_before
        threads = {k: v - before.get(k, 0.0) for k, v in after.items()}
        await blobs.close()
        await engine.close()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send((elapsed, latencies, usage.ru_maxrss, cpu, threads))
    asyncio.run(go())


def run_pipeline(cfg: Path, args: argparse.Namespace) -> dict[str, float]:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=pipeline_alone, args=(str(cfg), args, child))
    proc.start()
    child.close()   # the child's end: a child that dies makes recv() raise, not hang
    elapsed, latencies, rss_kib, cpu, threads = parent.recv()
    proc.join(30)
    return _with_threads(_stats(elapsed, latencies, rss_kib, cpu), threads, len(latencies))


def _with_threads(stats: dict[str, float], threads: dict[str, float], messages: int
                  ) -> dict[str, float]:
    for kind, seconds in threads.items():
        stats["threads:" + kind] = seconds / messages * 1000
    return stats


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median rate (its latencies and CPU with it)."""
    return sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]


def _stats(elapsed: float, latencies: list[float], rss_kib: int, cpu: float
           ) -> dict[str, float]:
    return {
        "rate": len(latencies) / elapsed,
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "rss_mib": rss_kib / 1024,
        "cpu_ms": cpu / len(latencies) * 1000,
    }


def run(mode: str, cfg: Path, args: argparse.Namespace) -> dict[str, float]:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=serve, args=(mode, str(cfg), child))
    proc.start()
    child.close()   # the child's end: a child that dies makes recv() raise, not hang
    port = parent.recv()
    elapsed, latencies = asyncio.run(load(port, args.messages, args.size, args.connections,
                                          args.users))
    parent.send("stop")
    rss_kib, cpu, threads = parent.recv()
    proc.join(30)
    return _with_threads(_stats(elapsed, latencies, rss_kib, cpu), threads, len(latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="run the ceiling and fdbmail "
                        "this many times, alternately (both vary from run to run on a shared "
                        "VM); the ratio is that of their medians")
    parser.add_argument("--workers", type=int, default=2, help="also run fdbmail as a node "
                        "with this many worker processes ([server] workers; 0: not)")
    parser.add_argument("--quick", action="store_true", help="200 messages once, for CI")
    parser.add_argument("--breakdown", action="store_true", help="also run fdbmail's SMTP "
                        "with a delivery that discards ('discard') and the delivery pipeline "
                        "without SMTP ('pipeline'), to see where the time goes")
    args = parser.parse_args()
    if args.quick:
        args.messages = 200
        args.repeat = 1
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {args.messages} messages of {args.size} B over "
          f"{args.connections} connections to {args.users} users")
    with tempfile.TemporaryDirectory(prefix="fdbmail-bench-") as tmp:
        template = write_config(Path(tmp) / "template")
        create_users(template, args.users)
        fresh = iter(range(1, 1_000_000))

        def cfg() -> Path:
            """A copy of the template's data folder (the directory with its users):
            each run starts on an empty store and blob folder, as the first did."""
            root = Path(tmp) / f"run{next(fresh)}"
            shutil.copytree(Path(tmp) / "template" / "data", root / "data")
            return write_config(root)

        runs: dict[str, list[dict[str, float]]] = {"ceiling": [], "fdbmail": []}
        if args.workers:
            runs[f"workers={args.workers}"] = []
        for _ in range(max(1, args.repeat)):
            for mode in runs:
                runs[mode].append(run(mode, cfg(), args))
        results = {mode: median_run(r) for mode, r in runs.items()}
        if args.repeat > 1:
            for mode, r in runs.items():
                print(f"{mode} msg/s, run by run: " + ", ".join(f"{x['rate']:.0f}" for x in r))
        if args.breakdown:
            results["discard"] = run("discard", cfg(), args)
            results["pipeline"] = run_pipeline(cfg(), args)
    print(f"{'server':<10} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'peak RSS MiB':>13} "
          f"{'server CPU ms/msg':>18} {'/ceiling':>9}")
    for mode, row in results.items():
        print(f"{mode:<10} {row['rate']:>8.0f} {row['p50']:>8.1f} {row['p99']:>8.1f} "
              f"{row['rss_mib']:>13.0f} {row['cpu_ms']:>18.2f} "
              f"{row['rate'] / results['ceiling']['rate']:>8.2f}x")
    print("fdbmail: one process; workers=N: a node with N worker processes for SMTP "
          "(peak RSS and CPU: all its processes); the ceiling is one process")
    for mode in [m for m in results if m != "ceiling" and m in runs]:
        ratio = results[mode]["rate"] / results["ceiling"]["rate"]
        print(f"ratio {mode}/ceiling: {ratio:.2f} (goal >= 0.5)"
              + (f", medians of {args.repeat} runs each" if args.repeat > 1 else ""))
    if args.breakdown:
        print("discard: fdbmail's SMTP, delivery discards; pipeline: server.delivery alone "
              "(no SMTP), same concurrency")
        for mode in ("fdbmail", "pipeline"):
            by_thread = {k.split(":", 1)[1]: v for k, v in results[mode].items()
                         if k.startswith("threads:")}
            if by_thread:
                print(f"{mode} CPU ms/msg by thread: " + ", ".join(
                    f"{k} {v:.2f}" for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
