#!/usr/bin/env python3
"""Store benchmark: small read-modify-write transactions on the sqlite engine
against plain ``sqlite3`` (the ceiling), side by side, in one run; with
``--foundationdb CLUSTER_FILE`` the same workload on the FoundationDB engine too.

Each transaction reads 2 random keys and writes 3 (the two it read, plus one
new log key).  The engine runs it through the contract (snapshot reads,
conflict checks, group commit) with 1, 16 and 64 concurrent tasks; the ceiling
runs the same transactions one after another on one ``sqlite3`` connection with
the same durability settings (WAL, ``synchronous=FULL``: an fsync per commit).
Every commit is durable in both.

    .venv/bin/python ops/bench/store.py [--transactions N] [--keys K] [--quick]
        [--foundationdb CLUSTER_FILE]

FoundationDB rows need libfdb_c 7.3 on LD_LIBRARY_PATH; the benchmark clears its
own two subspaces (``bench``, ``benchlog``) of that cluster before each row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import RETRIES, transact
from fdb_layers.engine.sqlite import SqliteEngine
from fdb_layers.keys import Subspace

DATA = Subspace(("bench",))
LOG = Subspace(("benchlog",))
VALUE = b"x" * 100


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run_ceiling(path: str, n: int, keys: int, seed: int) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) "
                 "WITHOUT ROWID")
    conn.execute("BEGIN")
    for k in range(keys):
        conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (DATA.pack((k,)), VALUE))
    conn.execute("COMMIT")
    rng = random.Random(seed)
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        a, b = rng.randrange(keys), rng.randrange(keys)
        conn.execute("BEGIN")
        va = conn.execute("SELECT value FROM kv WHERE key=?", (DATA.pack((a,)),)).fetchone()
        vb = conn.execute("SELECT value FROM kv WHERE key=?", (DATA.pack((b,)),)).fetchone()
        conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (DATA.pack((a,)), vb[0]))
        conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (DATA.pack((b,)), va[0]))
        conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (LOG.pack((i,)), VALUE))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    conn.close()
    return {"tps": n / elapsed, "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99)}


async def _open(path: str, cluster_file: str | None) -> Engine:
    if cluster_file is None:
        return await SqliteEngine.open(path)
    from fdb_layers.engine.foundationdb import FoundationDbEngine

    engine = await FoundationDbEngine.open(cluster_file)

    async def clear(tr: Transaction) -> None:
        tr.clear_range(*DATA.range())
        tr.clear_range(*LOG.range())

    await transact(engine, clear)
    return engine


async def run_engine(path: str, n: int, keys: int, concurrency: int,
                     seed: int, cluster_file: str | None = None) -> dict[str, float]:
    engine = await _open(path, cluster_file)

    async def load(tr: Transaction, lo: int, hi: int) -> None:
        for k in range(lo, hi):
            tr.set(DATA.pack((k,)), VALUE)

    for lo in range(0, keys, 5000):
        await transact(engine, load, lo, min(keys, lo + 5000))

    rng = random.Random(seed)
    work = [(i, rng.randrange(keys), rng.randrange(keys)) for i in range(n)]
    latencies: list[float] = []
    commit_latencies: list[float] = []
    retries_before = _retries()

    async def swap(tr: Transaction, i: int, a: int, b: int, marks: dict[str, float]) -> None:
        va = await tr.get(DATA.pack((a,)))
        vb = await tr.get(DATA.pack((b,)))
        tr.set(DATA.pack((a,)), vb or b"")
        tr.set(DATA.pack((b,)), va or b"")
        tr.set(LOG.pack((i,)), VALUE)
        marks["body_end"] = time.perf_counter()

    async def worker(items: list[tuple[int, int, int]]) -> None:
        for i, a, b in items:
            marks: dict[str, float] = {}
            t0 = time.perf_counter()
            await transact(engine, swap, i, a, b, marks)
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            commit_latencies.append(t1 - marks["body_end"])

    chunks = [work[j::concurrency] for j in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in chunks))
    elapsed = time.perf_counter() - started
    retries = _retries() - retries_before
    await engine.close()
    return {"tps": n / elapsed, "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99), "commit_p50": percentile(commit_latencies, 50),
            "commit_p99": percentile(commit_latencies, 99), "retries": retries}


def _retries() -> float:
    return sum(sample.value for metric in RETRIES.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=5000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 16, 64])
    parser.add_argument("--quick", action="store_true", help="1,000 transactions, 10,000 keys")
    parser.add_argument("--dir", help="folder for the database files (default: a temp folder)")
    parser.add_argument("--foundationdb", metavar="CLUSTER_FILE",
                        help="also run the workload on the FoundationDB engine, on this cluster")
    args = parser.parse_args()
    if args.quick:
        args.transactions, args.keys = 1000, 10_000

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, {platform.platform()}, "
          f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    print(f"workload: {args.transactions} transactions, each reads 2 of {args.keys} keys and "
          "writes 3; every commit durable (WAL, synchronous=FULL)")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        ceiling = run_ceiling(f"{d}/ceiling.sqlite3", args.transactions, args.keys, seed=1)
        print(f"\nceiling: plain sqlite3, one connection, sequential: {ceiling['tps']:9.0f} tx/s  "
              f"p50 {ceiling['p50'] * 1e3:6.2f} ms  p99 {ceiling['p99'] * 1e3:6.2f} ms")
        print(f"\n{'engine':>12} {'tasks':>5} {'engine tx/s':>12} {'ceiling tx/s':>13} "
              f"{'ratio':>6} "
              f"{'txn p50 ms':>11} {'txn p99 ms':>11} {'commit p50':>11} {'commit p99':>11} "
              f"{'retries':>8}")
        engines = [("sqlite", None)]
        if args.foundationdb:
            engines.append(("foundationdb", args.foundationdb))
        for name, cluster_file in engines:
            for c in args.concurrency:
                r = asyncio.run(run_engine(f"{d}/engine-{c}.sqlite3", args.transactions,
                                           args.keys, c, seed=1, cluster_file=cluster_file))
                print(f"{name:>12} {c:>5} {r['tps']:>12.0f} {ceiling['tps']:>13.0f} "
                      f"{r['tps'] / ceiling['tps']:>5.2f}x {r['p50'] * 1e3:>11.2f} "
                      f"{r['p99'] * 1e3:>11.2f} {r['commit_p50'] * 1e3:>11.2f} "
                      f"{r['commit_p99'] * 1e3:>11.2f} {int(r['retries']):>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
