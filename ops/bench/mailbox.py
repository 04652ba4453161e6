#!/usr/bin/env python3
"""Mailbox benchmark: deliveries through the pipeline, then the reads and writes
an IMAP session makes on a large mailbox, on the sqlite engine (and, with
``--foundationdb CLUSTER_FILE``, the same run on the FoundationDB engine after it).

1. Deliver N messages of 10 KB (parse, blob put in the fs blob store, one index
   transaction each: the whole ``server.delivery`` pipeline, durable) with 1 and
   16 concurrent deliveries, to one mailbox and spread over 16 mailboxes (of one
   account, and of 16 accounts).
2. Build a mailbox of 100,000 messages (index only: appends through the layer in
   batches of 500 per transaction, no blob writes) and one of 1,000, then time
   on each: open (what SELECT needs), FETCH UID FLAGS of every message, the
   summaries of the newest 50, and a flag set on 1,000 messages.  The
   scan-free operations are printed side by side with their ratio.

    .venv/bin/python ops/bench/mailboxes.py [--quick] [--messages N] [--large N]
        [--foundationdb CLUSTER_FILE]

The FoundationDB run CLEARS THE WHOLE KEY SPACE of that cluster first (its
accounts have fixed names): point it at a test cluster only.  It needs libfdb_c
7.3 on LD_LIBRARY_PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fdb_layers.mail import accounts, mailboxes
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import RETRIES, transact
from fdb_layers.engine.sqlite import SqliteEngine
from fdb_layers.mail.queries import get_summary, list_messages, list_uids
from fdb_layers.mail.messages import NewEmail, append_email, store_keywords
from fdb_layers.mail.threads import ThreadHeaders
from server.blobs.fs import FsBlobStore
from server.delivery import Delivery, DeliveryRequest, Recipient, Source, Stored
from server.mime import parse_message

WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()


_FILLER: dict[int, bytes] = {}


def _filler(size: int) -> bytes:
    if size not in _FILLER:
        rng = random.Random(size)
        text = bytearray()
        while len(text) < size:
            text += (" ".join(rng.choice(WORDS) for _ in range(12)) + "\r\n").encode()
        _FILLER[size] = bytes(text[:size])
    return _FILLER[size]


def message(n: int, size: int = 10 * 1024) -> bytes:
    """A distinct text message of ``size`` bytes (its own blob)."""
    head = (
        f"From: Sender {n % 97} <s{n % 97}@example.org>\r\n"
        f"To: alice@example.org\r\n"
        f"Subject: Report number {n}\r\n"
        f"Message-ID: <bench-{n}@example.org>\r\n"
        f"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode() + f"Message {n}.\r\n".encode()
    return head + _filler(size)[: max(0, size - len(head))]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}"


async def deliveries(
    engine: Engine, blobs: FsBlobStore, n: int, concurrency: int, targets: list[tuple[str, str]],
    tag: str,
) -> tuple[float, list[float], int]:
    """Deliver n messages round-robin over (account, mailbox) targets; rate and latencies."""
    delivery = Delivery(engine, blobs)
    latencies: list[float] = []
    failures = 0
    queue = list(range(n))
    raws = [message(hash((tag, i)) & 0xFFFFFFFF) for i in range(n)]  # not timed

    async def worker() -> None:
        nonlocal failures
        while queue:
            i = queue.pop()
            account, box = targets[i % len(targets)]
            raw = raws[i]
            t = time.perf_counter()
            [out] = await delivery.deliver(DeliveryRequest(
                Source.SMTP, raw, (Recipient(account),), f"{tag}-{i}", mailbox_ids=(box,)))
            latencies.append(time.perf_counter() - t)
            failures += not isinstance(out, Stored)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started), latencies, failures


async def build_mailbox(engine: Engine, account: str, n: int, summary: bytes) -> float:
    """Index-only appends (no blob writes), 500 per transaction; seconds taken."""
    await transact(engine, accounts.ensure_account, account)

    async def batch(tr: Transaction, first: int, count: int) -> None:
        for i in range(first, first + count):
            blob = hashlib.sha256(f"{account}/{i}".encode()).hexdigest()
            email = NewEmail(f"E{i}", blob, 10 * 1024, 1_700_000_000.0 + i, summary,
                             ThreadHeaders(f"<{account}-{i}@x>", (), (), f"subject {i}"))
            await append_email(tr, account, "inbox", email, delivery_id=f"b{i}")

    started = time.perf_counter()
    step = 500
    for first in range(0, n, step):
        await transact(engine, batch, first, min(step, n - first))
    return time.perf_counter() - started


async def timed(fn: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


Op = Callable[[], Awaitable[object]]


def session_ops(engine: Engine, account: str, n: int) -> dict[str, tuple[Op, int]]:
    """The operations timed on one mailbox, with their repeat weight."""
    rng = random.Random(n)

    async def open_box() -> None:
        await transact(engine, mailboxes.get_status, account, "inbox")

    async def fetch_flags() -> None:
        await transact(engine, list_messages, account, "inbox")

    async def uid_map() -> None:
        await transact(engine, list_uids, account, "inbox")

    async def newest_summaries() -> None:
        async def body(tr: Transaction) -> int:
            msgs = await list_messages(tr, account, "inbox", limit=50, reverse=True)
            total = 0
            for m in msgs:
                total += len(await get_summary(tr, account, m.email_id) or b"")
            return total

        await transact(engine, body)

    flip = [False]

    async def store_1000() -> None:
        uids = rng.sample(range(1, n + 1), min(1000, n))
        flip[0] = not flip[0]
        if flip[0]:
            await transact(engine, store_keywords, account, "inbox", uids, add=["$flagged"])
        else:
            await transact(engine, store_keywords, account, "inbox", uids, remove=["$flagged"])

    return {
        "open (SELECT data)": (open_box, 20),
        "summaries of newest 50": (newest_summaries, 5),
        "flag 1,000 messages": (store_1000, 1),
        "FETCH UID FLAGS all": (fetch_flags, 0),
        "UID map (seq numbers)": (uid_map, 0),
    }


async def time_side_by_side(
    small: dict[str, tuple[Op, int]], large: dict[str, tuple[Op, int]], repeat: int
) -> dict[str, dict[str, list[float]]]:
    """Run each operation on both mailboxes in alternation, so that whatever
    else the machine does weighs on both sides alike."""
    out: dict[str, dict[str, list[float]]] = {"small": {}, "large": {}}
    for op, (fn_small, weight) in small.items():
        fn_large = large[op][0]
        n = max(1, repeat * weight) if weight else max(1, repeat // 2)
        out["small"][op], out["large"][op] = [], []
        for _ in range(n):
            out["small"][op] += await timed(fn_small, 1)
            out["large"][op] += await timed(fn_large, 1)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 deliveries, 10,000-message box")
    ap.add_argument("--messages", type=int, default=None, help="deliveries per scenario")
    ap.add_argument("--large", type=int, default=None, help="messages in the large mailbox")
    ap.add_argument("--foundationdb", metavar="CLUSTER_FILE",
                    help="also run on the FoundationDB engine (a test cluster: it is cleared)")
    args = ap.parse_args()
    n = args.messages or (1_000 if args.quick else 10_000)
    large = args.large or (10_000 if args.quick else 100_000)
    small = 1_000
    repeat = 3 if args.quick else 10

    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} "
          f"python={platform.python_version()} {platform.system()} {platform.release()}")
    for kind in ["sqlite"] + (["foundationdb"] if args.foundationdb else []):
        print(f"\n===== engine: {kind}")
        with tempfile.TemporaryDirectory() as tmp:
            engine = await _open(kind, f"{tmp}/store.sqlite3", args.foundationdb)
            blobs = await FsBlobStore.create(f"{tmp}/blobs")
            try:
                await bench_deliveries(engine, blobs, n)
                await bench_session(engine, small, large, repeat)
            finally:
                await engine.close()


async def _open(kind: str, path: str, cluster_file: str | None) -> Engine:
    if kind == "sqlite":
        return await SqliteEngine.open(path)
    from fdb_layers.engine.foundationdb import FoundationDbEngine

    engine = await FoundationDbEngine.open(cluster_file or "")

    async def clear(tr: Transaction) -> None:
        tr.clear_range(b"", b"\xff")

    await transact(engine, clear)
    return engine


async def bench_deliveries(engine: Engine, blobs: FsBlobStore, n: int) -> None:
    print(f"\n== delivery: {n} messages of 10 KB each, parse + blob (fs, synced) + index "
          f"({engine.name}, durable), per scenario")
    await transact(engine, accounts.ensure_account, "one")
    boxes = []
    for i in range(16):
        made = await transact(engine, mailboxes.create_mailbox_path, "one", f"box{i}",
                              mailbox_id=f"box{i}")
        boxes.append(("one", made.id))
    many_accounts = [(f"acct{i}", "inbox") for i in range(16)]
    for account, _ in many_accounts:
        await transact(engine, accounts.ensure_account, account)
    scenarios = [
        ("1 mailbox", [("one", "inbox")]),
        ("16 mailboxes, 1 account", boxes),
        ("16 accounts", many_accounts),
    ]
    print(f"{'target':26} {'conc':>4} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'retries':>8} {'failed':>6}")
    for label, targets in scenarios:
        for conc in (1, 16):
            before = sum(s.samples[0].value for s in RETRIES.collect() if s.samples)
            rate, lat, failed = await deliveries(engine, blobs, n, conc, targets,
                                                 f"{label}-{conc}")
            after = sum(s.samples[0].value for s in RETRIES.collect() if s.samples)
            print(f"{label:26} {conc:4d} {rate:9.0f} {ms(pct(lat, 50))} {ms(pct(lat, 99))} "
                  f"{int(after - before):8d} {failed:6d}")


async def bench_session(engine: Engine, small: int, large: int, repeat: int) -> None:
    summary = parse_message(message(0)).to_bytes()
    print(f"\n== IMAP session on a mailbox of {small:,} and of {large:,} messages "
          f"(built index-only: no blob writes; summary {len(summary)} bytes each)")
    for account, count in (("small", small), ("large", large)):
        took = await build_mailbox(engine, account, count, summary)
        print(f"built {count:,} messages in {took:.1f} s ({count / took:,.0f} appends/s, "
              "500 per transaction)")
    results = await time_side_by_side(
        session_ops(engine, "small", small), session_ops(engine, "large", large), repeat
    )
    print(f"\n{'operation':26} {'p50 ' + format(small, ','):>14} {'p99':>9} "
          f"{'p50 ' + format(large, ','):>16} {'p99':>9} {'ratio':>6}")
    for op in results["small"]:
        s, lg = results["small"][op], results["large"][op]
        ratio = pct(lg, 50) / pct(s, 50) if pct(s, 50) else float("inf")
        scan = op.startswith(("FETCH", "UID map"))
        note = "  (reads every message: O(n))" if scan else ("  OK" if ratio <= 2 else "  >2x!")
        print(f"{op:26} {ms(pct(s, 50))} ms {ms(pct(s, 99))} {ms(pct(lg, 50))} ms   "
              f"{ms(pct(lg, 99))} {ratio:6.2f}{note}")
    for op in ("FETCH UID FLAGS all", "UID map (seq numbers)"):
        took = pct(results["large"][op], 50)
        print(f"{op} on {large:,}: {large / took:,.0f} messages/s")


if __name__ == "__main__":
    asyncio.run(main())
