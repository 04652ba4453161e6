#!/usr/bin/env python3
"""JMAP benchmark, the figures issue 13 asks for:

1. On accounts of 1,000 and 100,000 messages (one inbox each): Email/query (inbox, sort
   receivedAt descending, limit 50, collapseThreads) and Email/get of those 50 with the
   properties a mail list view shows, in one request (a back-reference), with 1 and 16
   concurrent clients: requests/s, p50 and p99.  Goal: p99 under 50 ms at 16 clients,
   and flat between 1,000 and 100,000 messages.  A third row runs the 16 clients while
   one more client changes a keyword ``--changes`` times a second (Email/set): the node
   keeps some answers per account state (README), and each change makes it compute them
   anew, so that row is the figure for an account that changes while it is read.
2. Email/changes after 1,000 changes (keyword updates by Email/set): p50 and p99.
3. Download of a 10 MB attachment (of a message imported by Email/import): MB/s.

The accounts are filled through the mail layer (index and the summary that delivery
computes, in batches of 500 per transaction, no blob per message: Email/get of the
list-view properties reads only the summary), 4 messages per thread.  The node runs in
its own processes as a user would run it on this machine: ``[server] workers`` = the
number of CPUs (the settings' advice, one per core), so every worker serves HTTP (the
main process none: README, "HTTP with worker processes"); sqlite engine, local blob folder.
``--workers 0`` runs it in one process (``--profile`` does: cProfile sees one process).
Node CPU per request is summed over the main process and its workers.  The load's clients
run in this process, a lean raw HTTP/1.1 client each (one kept-alive connection, the
request's bytes built once, Content-Length framing; the first responses are checked
whole): httpx's clients burnt 2.2-3.0 ms of CPU per request on the node's two cores.
Their CPU per request is printed too.  The other steps (setup, changes, download) use
httpx.  Every request
authenticates with Basic: the bench users' bcrypt hashes are of cost 4 (the time of one
check at the default cost 12 is printed at the end).  The account's
``maxConcurrentRequests`` is raised to 16 for the 16-client run.

    .venv/bin/python ops/bench/jmap.py [--sizes 1000,100000] [--requests 1920]
        [--changes 20] [--attachment-mb 10] [--quick] [--profile FILE] [--workers N] [--h11]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx

from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.mail import find_mailbox, transact
from fdb_layers.mail.messages import NewEmail, append_email
from fdb_layers.mail.threads import ThreadHeaders
from server.cli import main as cli
from server.config import load_config
from server.directory import passwords
from server.mime.summary import parse_message
from server.node.node import Node

PASSWORD = "bench password"
API = "/jmap/api"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
LIST_VIEW = ["id", "threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt",
             "size", "preview", "hasAttachment"]
THREAD_LENGTH = 4
# Every request authenticates (Basic, checked against the directory each time): the
# bench users' bcrypt hashes are of the lowest cost so the figures are JMAP's, not
# bcrypt's; the cost of the default is printed beside them.
BENCH_BCRYPT_ROUNDS = 4


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the node's workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass  # gone meanwhile
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of a process and its live children
    (/proc/PID/stat), i.e. of the node's main process and its workers."""
    total = 0
    for p in [pid, *children(pid)]:
        fields = _stat(p)
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def has_httptools() -> bool:
    import importlib.util
    return importlib.util.find_spec("httptools") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bcrypt_cost(rounds: int) -> float:
    """Seconds of one bcrypt check at ``rounds`` (what Basic auth costs per request)."""
    import bcrypt
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds))
    started = time.perf_counter()
    bcrypt.checkpw(PASSWORD.encode(), hashed)
    return time.perf_counter() - started


def write_config(root: Path, port: int, users: list[str], workers: int) -> Path:
    path = root / "fdbmail.toml"
    path.write_text(
        f'[server]\ndata_dir = "{root / "data"}"\nhttp_listen = "127.0.0.1:{port}"\n'
        f'workers = {workers}\nlog_level = "WARNING"\nhostname = "jmap.bench"\n'
        '[smtp]\nmx_listen = ""\nsubmission_listen = ""\nsubmissions_listen = ""\n'
        '[imap]\nlisten = ""\ntls_listen = ""\n'
        '[jmap]\nauth_require_tls = false\nmax_concurrent_requests = 16\n')
    passwords.BCRYPT_ROUNDS = BENCH_BCRYPT_ROUNDS
    for user in users:
        old = sys.stdin
        sys.stdin = io.StringIO(PASSWORD + "\n")
        try:
            assert cli(["-c", str(path), "directory", "add", user, "--email",
                        f"{user}@bench.test", "--password-stdin"]) == 0
        finally:
            sys.stdin = old
    return path


def _summaries() -> list[bytes]:
    """A few list-view-like messages, parsed as delivery parses them."""
    out = []
    for n in range(16):
        raw = (f"From: Sender {n} <sender{n}@remote.test>\r\nTo: user@bench.test\r\n"
               f"Subject: Report number {n}\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
               f"Message-ID: <m{n}@remote.test>\r\n\r\n"
               + f"Line {n} of a message body that the preview shows.\r\n" * 40).encode()
        out.append(parse_message(raw).to_bytes())
    return out


async def fill(engine: Engine, account: str, mailbox_id: str, n: int) -> float:
    """n messages, 500 per transaction, THREAD_LENGTH per thread; seconds taken."""
    summaries = _summaries()

    async def batch(tr: Transaction, first: int, count: int) -> None:
        for i in range(first, first + count):
            root = i - i % THREAD_LENGTH
            refs = (f"<{account}-{root}@x>",) if i != root else ()
            email = NewEmail(f"E{i}", f"{i:064x}", 4 * 1024, 1_700_000_000.0 + i,
                             summaries[i % len(summaries)],
                             ThreadHeaders(f"<{account}-{i}@x>", refs, refs,
                                           f"Report number {root}"),
                             keywords=("$seen",) if i % 3 else ())
            await append_email(tr, account, mailbox_id, email, delivery_id=f"b{i}")

    started = time.perf_counter()
    for first in range(0, n, 500):
        await transact(engine, batch, first, min(500, n - first))
    return time.perf_counter() - started


def attachment_message(megabytes: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@remote.test", "user@bench.test", "big"
    msg.set_content("The attachment.\n")
    msg.add_attachment(os.urandom(megabytes * 1_000_000), maintype="application",
                       subtype="octet-stream", filename="big.bin")
    return msg.as_bytes()


async def call(c: httpx.AsyncClient, *calls: list[Any]) -> list[Any]:
    r = await c.post(API, json={"using": USING, "methodCalls": list(calls)})
    r.raise_for_status()
    responses: list[Any] = r.json()["methodResponses"]
    for name, result, _ in responses:
        assert name != "error", result
    return responses


async def import_attachment(base: str, user: str, account: str, inbox: str,
                            megabytes: int) -> str:
    """Upload and import the message; the attachment's blob id."""
    async with httpx.AsyncClient(base_url=base, auth=(user, PASSWORD), timeout=120) as c:
        r = await c.post(f"/upload/{account}/", content=attachment_message(megabytes),
                         headers={"Content-Type": "message/rfc822"})
        r.raise_for_status()
        blob = r.json()["blobId"]
        [[_, imported, _]] = await call(c, ["Email/import", {
            "accountId": account, "emails": {
                "big": {"blobId": blob, "mailboxIds": {inbox: True}}}}, "i"])
        [[_, got, _]] = await call(c, ["Email/get", {
            "accountId": account, "ids": [imported["created"]["big"]["id"]],
            "properties": ["attachments"]}, "g"])
        attachment: str = got["list"][0]["attachments"][0]["blobId"]
        return attachment


def query_and_get(account: str, inbox: str) -> list[list[Any]]:
    return [["Email/query", {"accountId": account, "filter": {"inMailbox": inbox},
                             "sort": [{"property": "receivedAt", "isAscending": False}],
                             "collapseThreads": True, "limit": 50}, "q"],
            ["Email/get", {"accountId": account, "#ids": {
                "resultOf": "q", "name": "Email/query", "path": "/ids"},
                "properties": LIST_VIEW}, "g"]]


async def first_email(base: str, user: str, account: str, inbox: str) -> str:
    """The id of the newest email in ``inbox``."""
    async with httpx.AsyncClient(base_url=base, auth=(user, PASSWORD), timeout=60) as c:
        [[_, got, _]] = await call(c, ["Email/query", {
            "accountId": account, "filter": {"inMailbox": inbox},
            "sort": [{"property": "receivedAt", "isAscending": False}], "limit": 1}, "q"])
    email: str = got["ids"][0]
    return email


class HttpError(Exception):
    pass


class RawClient:
    """A lean HTTP/1.1 client for the load (as ops/bench/imap.py's raw IMAP client): one
    kept-alive connection, the request's bytes built once, responses framed by their
    Content-Length.  httpx spent 2.2-3.0 ms of CPU per request on the cores the node
    runs on; this spends a fraction of that, so the figures are the node's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(r, w)

    @staticmethod
    def request(port: int, user: str, body: bytes) -> bytes:
        """The bytes of a POST to the API (built once per distinct request)."""
        auth = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        return (f"POST {API} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def send(self, request: bytes) -> bytes:
        """One request and its response's body; HttpError unless status 200."""
        self.w.write(request)
        head = await self.r.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 "):
            raise HttpError(head.split(b"\r\n", 1)[0])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            raise HttpError(b"no Content-Length: " + head)
        end = lower.index(b"\r\n", at + 2)
        return await self.r.readexactly(int(head[at + 17:end]))

    async def close(self) -> None:
        self.w.close()
        try:
            await self.w.wait_closed()
        except OSError:
            pass


def check_query_and_get(body: bytes) -> None:
    """The answer is a query+get's: no error, one email per id, 50 ids or fewer."""
    responses = json.loads(body)["methodResponses"]
    assert [r[0] for r in responses] == ["Email/query", "Email/get"], responses
    ids = responses[0][1]["ids"]
    assert 0 < len(ids) <= 50, responses[0]
    assert [e["id"] for e in responses[1][1]["list"]] == ids, responses[1]
    assert set(responses[1][1]["list"][0]) == set(LIST_VIEW), responses[1]


def keyword_toggles(account: str, email: str) -> list[bytes]:
    """Email/set bodies that mark ``email`` read and unread: each a change of the account
    (a new state), as a client marking mail read or flagged makes."""
    return [json.dumps({"using": USING, "methodCalls": [["Email/set", {
        "accountId": account, "update": {email: {"keywords/$seen": value}}}, "s"]]}
    ).encode() for value in (True, None)]


async def change_steadily(port: int, user: str, bodies: list[bytes], per_second: float,
                          stop: asyncio.Event) -> int:
    """One more client that sends ``bodies`` in turn, ``per_second`` a second, until
    ``stop``: the account's state changes under the load, so every answer the node keeps
    per state (Email/query's listing, Email/get's records and answer) is computed anew
    after each change.  The number of changes made."""
    requests = [RawClient.request(port, user, body) for body in bodies]
    c = await RawClient.connect(port)
    made = 0
    try:
        while not stop.is_set():
            answer = json.loads(await c.send(requests[made % len(requests)]))
            [[name, result, _]] = answer["methodResponses"]
            assert name == "Email/set" and not result.get("notUpdated"), result
            made += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / per_second)
    finally:
        await c.close()
    return made


async def load(port: int, user: str, calls: list[list[Any]], clients: int, requests: int,
               changes: list[bytes] | None = None, per_second: float = 0
               ) -> tuple[float, list[float], float]:
    """``requests`` requests over ``clients`` connections, with ``changes`` sent
    ``per_second`` beside them when given: (requests/s, latencies, changes/s)."""
    latencies: list[float] = []
    request = RawClient.request(port, user, json.dumps(
        {"using": USING, "methodCalls": calls}).encode())

    async def client(count: int) -> None:
        c = await RawClient.connect(port)
        try:
            check_query_and_get(await c.send(request))  # warm up, not timed
            await barrier.wait()
            for n in range(count):
                started = time.perf_counter()
                body = await c.send(request)
                latencies.append(time.perf_counter() - started)
                if n < 2:  # the first responses are checked whole
                    check_query_and_get(body)
        finally:
            await c.close()

    barrier = asyncio.Barrier(clients + 1)
    tasks = [asyncio.create_task(client(requests // clients)) for _ in range(clients)]
    await barrier.wait()
    started = time.perf_counter()
    stop = asyncio.Event()
    changer = (asyncio.create_task(change_steadily(port, user, changes, per_second, stop))
               if changes else None)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    stop.set()
    made = await changer if changer is not None else 0
    return len(latencies) / elapsed, latencies, made / elapsed


async def changes_after(base: str, user: str, account: str, inbox: str, changes: int,
                        repeat: int) -> list[float]:
    """Email/changes from a state 1,000 keyword updates old: latencies."""
    async with httpx.AsyncClient(base_url=base, auth=(user, PASSWORD), timeout=60) as c:
        [[_, query, _]] = await call(c, ["Email/query", {
            "accountId": account, "filter": {"inMailbox": inbox}, "limit": changes}, "q"])
        [[_, got, _]] = await call(c, ["Email/get", {"accountId": account, "ids": [],
                                                      "properties": ["id"]}, "g"])
        since = got["state"]
        ids = query["ids"]
        for first in range(0, len(ids), 100):  # 100 updates per Email/set
            await call(c, ["Email/set", {"accountId": account, "update": {
                i: {"keywords/$flagged": True} for i in ids[first:first + 100]}}, "s"])
        out = []
        for _ in range(repeat):
            started = time.perf_counter()
            [[_, result, _]] = await call(c, ["Email/changes", {"accountId": account,
                                                                "sinceState": since}, "c"])
            out.append(time.perf_counter() - started)
            assert len(result["updated"]) == len(ids), result
        return out


async def download(base: str, user: str, account: str, blob: str, repeat: int
                   ) -> tuple[int, list[float]]:
    async with httpx.AsyncClient(base_url=base, auth=(user, PASSWORD), timeout=120) as c:
        size, out = 0, []
        for _ in range(repeat):
            started = time.perf_counter()
            size = 0
            async with c.stream("GET", f"/download/{account}/{blob}/big.bin") as r:
                r.raise_for_status()
                async for chunk in r.aiter_raw():
                    size += len(chunk)
            out.append(time.perf_counter() - started)
        return size, out


async def prepare(cfg: Path, base: str, users: dict[int, str], megabytes: int
                  ) -> tuple[dict[int, tuple[str, str]], str]:
    """Fill the accounts with an in-process node: size -> (account, inbox), and the
    attachment's blob id (in the largest account)."""
    node = Node(load_config(cfg, env={}))
    await node.start()
    try:
        assert node.engine is not None and node.directory is not None
        out: dict[int, tuple[str, str]] = {}
        for n, user in users.items():
            principal = await node.directory.get_principal(user)
            assert principal is not None
            async with httpx.AsyncClient(base_url=base, auth=(user, PASSWORD)) as c:
                await call(c, ["Mailbox/get", {"accountId": principal.id, "ids": []}, "m"])
            box = await transact(node.engine, find_mailbox, principal.id, "INBOX")
            took = await fill(node.engine, principal.id, box.id, n)
            print(f"filled {n:>9,} messages (index and summaries) in {took:7.1f} s")
            out[n] = (principal.id, box.id)
        n = max(users)
        blob = await import_attachment(base, users[n], *out[n], megabytes)
        return out, blob
    finally:
        await node.stop()


def start_node(cfg: Path, port: int, profile: str | None, workers: int,
               h11: bool = False) -> subprocess.Popen[bytes]:
    run = f"main(['-c', {str(cfg)!r}, 'serve'])"
    code = "import sys; from server.cli import main; " + (
        f"import cProfile; cProfile.run({run!r}, {profile!r})" if profile
        else f"sys.exit({run})")
    env = dict(os.environ)
    if h11:  # uvicorn's "auto" takes httptools when it imports: here it does not
        env["PYTHONPATH"] = str(Path(cfg).parent / "no-httptools")
        Path(env["PYTHONPATH"]).mkdir(exist_ok=True)
        Path(env["PYTHONPATH"], "httptools.py").write_text(
            "raise ImportError('the bench runs the node with h11')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env,
                            cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the node exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.2)
            continue
        if len(children(proc.pid)) >= workers and httpx.get(
                f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200:
            return proc  # every worker started and ready
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the node did not start listening")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--requests", type=int, default=1920,
                    help="query+get requests per run (spread over the clients; a p99 of "
                         "1,920 rests on its ~19 slowest)")
    ap.add_argument("--changes", type=float, default=20,
                    help="keyword changes a second (Email/set from one more client) "
                         "during an extra 16-client row, so that what the node keeps per "
                         "account state is computed anew after each (0: no such row)")
    ap.add_argument("--attachment-mb", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="small sizes, few requests")
    ap.add_argument("--profile", metavar="FILE",
                    help="run the node under cProfile, its stats written to FILE at exit")
    ap.add_argument("--workers", type=int, default=None,
                    help="the node's [server] workers (default: the number of CPUs; 0 "
                         "with --profile)")
    ap.add_argument("--h11", action="store_true",
                    help="the node parses HTTP with h11 even when httptools is installed")
    args = ap.parse_args()
    if args.workers is None:
        args.workers = 0 if args.profile else os.cpu_count() or 1
    if args.quick:
        args.sizes, args.requests, args.attachment_mb = "200,2000", 64, 1
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, sqlite engine, node in its own process"
          f"{f' + {args.workers} workers' if args.workers else ''}, HTTP parser "
          f"{'h11' if args.h11 or not has_httptools() else 'httptools'}, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        users = {n: f"j{n}" for n in sizes}
        cfg = write_config(Path(tmp), port, list(users.values()), args.workers)
        accounts, blob = await prepare(cfg, base, users, args.attachment_mb)
        proc = start_node(cfg, port, args.profile, args.workers, args.h11)
        try:
            rows = []
            for n, user in users.items():
                account, inbox = accounts[n]
                calls = query_and_get(account, inbox)
                runs: list[tuple[int, list[bytes] | None]] = [(1, None), (16, None)]
                if args.changes:
                    runs.append((16, keyword_toggles(account, await first_email(
                        base, user, account, inbox))))
                for clients, changes in runs:
                    cpu, own = cpu_seconds(proc.pid), time.process_time()
                    rate, lat, changed = await load(port, user, calls, clients,
                                                    args.requests, changes, args.changes)
                    cpu = (cpu_seconds(proc.pid) - cpu) / (len(lat) + clients)
                    own = (time.process_time() - own) / (len(lat) + clients)
                    rows.append((n, clients, changed, rate, pct(lat, 50), pct(lat, 99), cpu,
                                 own))
            print(f"\nquery+get (Email/query inbox receivedAt desc limit 50 collapseThreads "
                  f"+ Email/get of {len(LIST_VIEW)} properties), {args.requests} requests; "
                  f"changes/s: keyword changes made meanwhile (node CPU/req includes them)")
            print(f"{'messages':>10} {'clients':>8} {'changes/s':>10} {'req/s':>8} "
                  f"{'p50':>10} {'p99':>10} {'node CPU/req':>13} {'client CPU/req':>15}")
            for n, clients, changed, rate, p50, p99, cpu, own in rows:
                print(f"{n:>10,} {clients:>8} {changed:10.1f} {rate:8.1f} {ms(p50)} {ms(p99)} "
                      f"{ms(cpu):>13} {ms(own):>15}")
            print(f"load average {os.getloadavg()[0]:.1f} at the end")
            by = {(n, k): (p50, p99) for n, k, changed, _, p50, p99, _, _ in rows
                  if not changed}
            for clients in (1, 16):
                ratio = by[(sizes[-1], clients)][0] / by[(sizes[0], clients)][0]
                print(f"p50 {sizes[-1]:,} / {sizes[0]:,} messages, {clients} clients: "
                      f"{ratio:.2f}x")
            n = max(sizes)
            account, inbox = accounts[n]
            changes = min(1000, n)
            lat = await changes_after(base, users[n], account, inbox, changes, 20)
            print(f"\nEmail/changes after {changes:,} changes ({n:,} messages): "
                  f"p50 {ms(pct(lat, 50))}, p99 {ms(pct(lat, 99))}")
            size, lat = await download(base, users[n], account, blob, 5)
            print(f"download of a {size / 1e6:.1f} MB attachment: p50 {ms(pct(lat, 50))}, "
                  f"{size / 1e6 / pct(lat, 50):.0f} MB/s")
            print(f"\nbench passwords are bcrypt cost {BENCH_BCRYPT_ROUNDS}; Basic auth at the "
                  f"default cost 12 adds {ms(bcrypt_cost(12))} of CPU to every request")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    asyncio.run(main())
