#!/usr/bin/env python3
"""IMAP benchmark (issue 12): fdbmail's IMAP beside Dovecot's, side by side in one run.

1. APPEND: the mailbox of the workload (--messages, default 2,000 messages of 10 KB) is
   filled by APPEND over 4 connections (LITERAL+), on both servers: the APPEND rate.
2. The workload: K clients (--clients, default 1,4,16) loop for --seconds (default 20):
   LOGIN, SELECT INBOX, UID FETCH 1:* (FLAGS ENVELOPE), UID SEARCH ALL, UID STORE of 50
   random UIDs +FLAGS (\\Flagged), 50 x UID FETCH <random uid> BODY[], LOGOUT; all on the
   same account.  Printed: commands/s, sessions/s, p50/p99 per command, the servers' CPU per
   command, the ratios fdbmail/Dovecot, and the store transactions fdbmail retried in the
   run (fdbmail_store_retries_total: conflicts between the sessions' writes to the account).
3. SELECT / EXAMINE / STATUS p50 and p99 on mailboxes of --sizes messages (default 1,000 /
   100,000 / 1,000,000; fdbmail only).  These mailboxes are filled index-only: appends
   through the mail layer, 500 per transaction, no blobs (SELECT and STATUS read no blob).
4. Memory per authenticated connection in IDLE with INBOX selected, at --idle connections
   (default 1,000 and 10,000; fdbmail only): the growth of the server processes' RSS / N.
   The clients run in this process, the server in its own processes.

Each server runs in its own processes; the client load runs in this one (asyncio, a small
raw IMAP client), which also uses CPU on the same machine: its CPU is printed.

Dovecot: Debian's dovecot-imapd, installed by this script with apt-get if missing (root),
started with a throwaway config (-c) under a temporary folder on a free loopback port, mail
in Maildir there, passdb passwd-file with the PLAIN scheme (cheap: a string compare).
fdbmail: the account's password is a bcrypt hash in the embedded SQL directory, checked
once; later LOGINs hit the credential cache (an HMAC of login, secret and the directory's
password version, plus the read of that version): as cheap as Dovecot's.  fdbmail runs on
its embedded defaults (sqlite store, blobs in a local folder), or on FoundationDB with
--foundationdb CLUSTER_FILE (the cluster's WHOLE KEY SPACE IS CLEARED first: a test
cluster only).  It runs as a user would run it on this machine, as Dovecot runs several
processes: ``[server] workers`` = the number of CPUs (the setting's advice, about one per
core; IMAP is served by the worker processes, the main process keeps the embedded store's
writer), its CPU summed over all its processes and the IDLE RSS too.  ``--workers 0``
runs it in one process (the default with IMAPBENCH_PROFILE=FILE: a cProfile of that
process, written to FILE at the end; with workers it would see none of the IMAP work).
On a quiet machine (2026-12-06, main 04fde42, 2 CPUs) 2 workers gave 0.77x / 0.85x
Dovecot's commands/s at K = 4 / 16 where one process gave 0.48x / 0.56x (README).  Both
make an APPEND durable (fsync) before OK; Dovecot with its default mail_fsync=optimized.

    .venv/bin/python ops/bench/imap.py [--clients 1,4,16] [--seconds 20] [--messages 2000]
        [--size 10240] [--sizes 1000,100000,1000000] [--repeat 50] [--idle 1000,10000]
        [--parts append,workload,select,idle] [--no-dovecot] [--dovecot-login-per-connection]
        [--foundationdb CLUSTER_FILE] [--workers N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import multiprocessing as mp
import os
import platform
import pwd
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

if TYPE_CHECKING:
    from fdb_layers.engine.base import Engine, Transaction

PASSWORD = "bench password"
USER = "bench"
COMMANDS = ("LOGIN", "SELECT", "UID FETCH 1:* (FLAGS ENVELOPE)", "UID SEARCH ALL",
            "UID STORE +FLAGS", "UID FETCH BODY[]", "LOGOUT")


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def proc_stat(pid: int) -> tuple[int, float, float]:
    """(parent pid, own CPU seconds, CPU seconds of reaped children) of ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick,
            (int(fields[13]) + int(fields[14])) / tick)


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root``, its live descendants and the children it reaped."""
    children: dict[int, list[int]] = {}
    own: dict[int, float] = {}
    reaped = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid, cpu, dead = proc_stat(int(entry))
        except (OSError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        own[int(entry)] = cpu
        if int(entry) == root:
            reaped = dead
    total, todo = reaped, [root]
    while todo:
        pid = todo.pop()
        total += own.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kb(pid: int) -> int:
    """KB of RSS of ``pid`` and its live descendants (a node's workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(proc_stat(int(entry))[0], []).append(int(entry))
            except (OSError, IndexError):
                continue
    total, todo = 0, [pid]
    while todo:
        one = todo.pop()
        todo += children.get(one, [])
        try:
            with open(f"/proc/{one}/status") as f:
                total += next((int(line.split()[1]) for line in f
                               if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total


# -- the messages ------------------------------------------------------------------------

WORDS = ("mail server index blob store mailbox message thread flag envelope quota "
         "alpha beta gamma delta report meeting lunch invoice budget release").split()


def message(i: int, size: int) -> bytes:
    rng = random.Random(i)
    head = (f"From: Sender {i % 97} <sender{i % 97}@example.org>\r\n"
            f"To: Bench <{USER}@bench.test>\r\n"
            f"Cc: other{i % 13}@example.net\r\n"
            f"Subject: {' '.join(rng.choice(WORDS) for _ in range(5))} #{i}\r\n"
            f"Date: Mon, {1 + i % 28:02d} Nov 2026 {i % 24:02d}:{i % 60:02d}:00 +0000\r\n"
            f"Message-ID: <bench-{i}@example.org>\r\n"
            + (f"In-Reply-To: <bench-{i - 1}@example.org>\r\n" if i % 3 else "")
            + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n").encode()
    lines = []
    length = len(head)
    while length < size:
        line = (" ".join(rng.choice(WORDS) for _ in range(11)) + "\r\n").encode()
        lines.append(line)
        length += len(line)
    return (head + b"".join(lines))[:size - 2] + b"\r\n"


# -- a small IMAP client -----------------------------------------------------------------

class ImapError(Exception):
    pass


class Client:
    """Just enough IMAP for the load: tagged commands, literals in responses, LITERAL+."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w, self.n = reader, writer, 0

    @classmethod
    async def connect(cls, port: int) -> Client:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        greeting = await r.readline()
        if not greeting.startswith(b"* OK"):
            raise ImapError(greeting)
        return cls(r, w)

    async def command(self, text: bytes, literal: bytes | None = None) -> list[bytes]:
        self.n += 1
        tag = b"t%d" % self.n
        if literal is None:
            self.w.write(tag + b" " + text + b"\r\n")
        else:
            self.w.write(b"%s %s {%d+}\r\n%s\r\n" % (tag, text, len(literal), literal))
        lines: list[bytes] = []
        while True:
            line = await self.r.readline()
            if not line:
                raise ImapError(b"connection closed after " + text[:40])
            while line.endswith(b"}\r\n") and b"{" in line:
                size = int(line[line.rindex(b"{") + 1:-3])
                line += await self.r.readexactly(size) + await self.r.readline()
            if line.startswith(tag + b" "):
                if line[len(tag) + 1:len(tag) + 3] != b"OK":
                    raise ImapError(line)
                return lines
            lines.append(line)

    async def close(self) -> None:
        self.w.close()
        try:
            await self.w.wait_closed()
        except OSError:
            pass


# -- fdbmail in its own process ----------------------------------------------------------

def write_config(root: Path, cluster_file: str | None, workers: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "fdbmail.toml"
    store = (f'[store]\nengine = "foundationdb"\ncluster_file = "{cluster_file}"\n'
             if cluster_file else "")
    path.write_text(
        f'[server]\ndata_dir = "{root / "data"}"\nhttp_listen = "127.0.0.1:0"\n'
        f'workers = {workers}\n'
        'log_level = "WARNING"\nhostname = "imap.bench"\n'
        '[smtp]\nmx_listen = ""\nsubmission_listen = ""\nsubmissions_listen = ""\n'
        '[imap]\nlisten = "127.0.0.1:0"\ntls_listen = ""\nauth_require_tls = false\n'
        '[jmap]\nauth_require_tls = false\n'
        '[limits]\nmax_connections = 19000\nmax_connections_per_ip = 0\n'
        'connection_rate_per_ip = 0\n' + store)
    return path


def add_users(cfg: Path, users: list[str]) -> None:
    from server.cli import main as cli
    old_in, old_out = sys.stdin, sys.stdout
    try:
        for user in users:
            sys.stdin, sys.stdout = io.StringIO(PASSWORD + "\n"), io.StringIO()
            assert cli(["-c", str(cfg), "directory", "add", user, "--email",
                        f"{user}@bench.test", "--password-stdin"]) == 0
    finally:
        sys.stdin, sys.stdout = old_in, old_out


def serve(cfg: str, cluster_file: str | None, conn: Connection) -> None:
    asyncio.run(_serve(Path(cfg), cluster_file, conn))


async def _serve(cfg: Path, cluster_file: str | None, conn: Connection) -> None:
    from fdb_layers.mail import find_mailbox, transact
    from server.config import load_config
    from server.node.node import Node
    from server.node.tuning import tune_gc

    if cluster_file:
        from fdb_layers.engine.foundationdb import FoundationDbEngine

        async def clear(tr: Transaction) -> None:
            tr.clear_range(b"", b"\xff")
        engine = await FoundationDbEngine.open(cluster_file)
        await transact(engine, clear)
        await engine.close()
    node = Node(load_config(cfg, env={}))
    await node.start()
    tune_gc()   # as `fdbmail serve` does once started
    assert node.engine is not None and node.directory is not None
    loop = asyncio.get_running_loop()
    conn.send(node.ports["imap"])
    profile = os.environ.get("IMAPBENCH_PROFILE")
    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    try:
        while True:
            request = await loop.run_in_executor(None, conn.recv)
            if request[0] == "stop":
                break
            if request[0] == "http":
                assert node.http is not None
                conn.send(node.http.port)
                continue
            if request[0] == "cleanup":   # empty the deleted mailboxes now (maintenance's job)
                conn.send(await cleanup_now(node.engine))
                continue
            if request[0] == "usage":     # ("usage", user): quota usage, storages pending
                principal = await node.directory.get_principal(request[1])
                assert principal is not None
                conn.send(await transact(node.engine, usage_of, principal.id))
                continue
            if request[0] == "retries":   # the node's /metrics: its workers' counters too
                assert node.http is not None
                conn.send(await loop.run_in_executor(None, store_retries, node.http.port))
                continue
            _, user, n = request     # ("fill", user, n): index-only, after one LOGIN
            principal = await node.directory.get_principal(user)
            assert principal is not None
            box = await transact(node.engine, find_mailbox, principal.id, "INBOX")
            conn.send(await fill(node.engine, principal.id, box.id, n))
    finally:
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        await node.stop()


def store_retries(http_port: int) -> float:
    """Transaction attempts the node retried so far (fdbmail_store_retries_total, every
    reason: conflicts of optimistic transactions above all)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=30) as r:
        text = r.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text)
               if f.name == "fdbmail_store_retries" for s in f.samples
               if s.name == "fdbmail_store_retries_total")


async def fill(engine: Engine, account: str, mailbox_id: str, n: int) -> float:
    """Index-only appends through the mail layer, 500 per transaction; seconds taken."""
    from fdb_layers.mail import transact
    from fdb_layers.mail.messages import NewEmail, append_email
    from fdb_layers.mail.threads import ThreadHeaders

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


async def cleanup_now(engine: Engine) -> tuple[float, int]:
    """The layer's cleanup of deleted mailboxes' messages, as the maintenance pass runs
    it (batches of cleanup.DEFAULT_BATCH, each its own transaction): (seconds, batches)."""
    from fdb_layers.mail.cleanup import run_cleanup

    batches = 0

    def count(_account: str, _storage: int) -> None:
        nonlocal batches
        batches += 1

    started = time.perf_counter()
    await run_cleanup(engine, on_batch=count)
    return time.perf_counter() - started, batches + 1


async def usage_of(tr: Transaction, account: str) -> tuple[int, int, int]:
    """(emails, bytes, deleted mailboxes not emptied yet) of the account."""
    from fdb_layers.mail import quota
    from fdb_layers.mail.cleanup import list_pending

    usage = await quota.get_usage(tr, account)
    return usage.messages, usage.bytes, len(await list_pending(tr, account_id=account))


@dataclass
class Server:
    name: str
    port: int
    pid: int
    stop: Callable[[], None] = field(repr=False)


def start_ours(root: Path, users: list[str], cluster_file: str | None, workers: int = 0
               ) -> tuple[Server, Connection]:
    cfg = write_config(root, cluster_file, workers)
    add_users(cfg, users)
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=serve, args=(str(cfg), cluster_file, child))
    proc.start()
    child.close()      # a child that dies makes recv() raise, not hang
    port = parent.recv()

    def stop() -> None:
        try:
            parent.send(("stop",))
        except OSError:
            pass           # it died: its traceback is above
        proc.join(60)
    assert proc.pid is not None
    return Server("fdbmail", port, proc.pid, stop), parent


# -- Dovecot -----------------------------------------------------------------------------

def ensure_dovecot() -> str:
    found = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists()
                                         else None)
    if found and Path("/usr/lib/dovecot/imap").exists():
        return found
    if os.geteuid() != 0:
        raise SystemExit("dovecot-imapd is not installed: run as root (apt-get) or --no-dovecot")
    print("installing dovecot-imapd (apt-get)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "dovecot-imapd"], check=True, env=env, stdout=subprocess.DEVNULL)
    # The package may start the system's dovecot: stop it, we run our own instance only.
    for stop in (["systemctl", "disable", "--now", "dovecot"], ["invoke-rc.d", "dovecot", "stop"]):
        if shutil.which(stop[0]):
            subprocess.run(stop, check=False, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    return shutil.which("dovecot") or "/usr/sbin/dovecot"


def start_dovecot(root: Path, login_per_connection: bool) -> Server:
    binary = ensure_dovecot()
    root.mkdir(parents=True)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    user = "nobody"
    uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
    if os.geteuid() == 0:
        for sub in ("mail", "home"):
            os.chown(root / sub, uid, gid)
        for p in [root, *root.parents]:       # nobody must reach its mail folder
            if p == Path("/"):
                break
            p.chmod(p.stat().st_mode | 0o711)
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::\n")
    (root / "users").chmod(0o644)
    port = free_port()
    me = pwd.getpwuid(os.geteuid()).pw_name
    as_root = os.geteuid() == 0
    mail_uid, mail_gid = (uid, gid) if as_root else (os.geteuid(), os.getegid())
    login = ("" if login_per_connection else
             "  service_count = 0\n  process_min_avail = 2\n")   # Dovecot's performance mode
    (root / "dovecot.conf").write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = fdbmail-bench-{os.getpid()}
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
default_internal_user = {"dovecot" if as_root else me}
default_login_user = {"dovenull" if as_root else me}
first_valid_uid = {min(uid, os.geteuid()) if not as_root else uid}
default_process_limit = 20000
default_client_limit = 30000
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/home/%u
}}
protocol imap {{
  mail_max_userip_connections = 30000
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
{login}}}
""")
    proc = subprocess.Popen([binary, "-F", "-c", str(root / "dovecot.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            proc.kill()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SystemExit(f"dovecot did not start: {err}"
                             f"{log[-2000:]}")
        time.sleep(0.1)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return Server("dovecot", port, proc.pid, stop)


# -- the load ----------------------------------------------------------------------------

async def append_all(port: int, messages: list[bytes], conns: int) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def one(part: list[bytes]) -> None:
        c = await Client.connect(port)
        await c.command(f'LOGIN {USER} "{PASSWORD}"'.encode())
        for data in part:
            started = time.perf_counter()
            await c.command(b"APPEND INBOX", data)
            latencies.append(time.perf_counter() - started)
        await c.command(b"LOGOUT")
        await c.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(messages[i::conns]) for i in range(conns)))
    return time.perf_counter() - started, latencies


@dataclass
class Load:
    elapsed: float = 0.0
    sessions: int = 0
    times: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in COMMANDS})
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def commands(self) -> int:
        return sum(len(v) for v in self.times.values())


async def workload(server: Server, clients: int, seconds: float, seed: int) -> Load:
    out = Load()

    async def timed(c: Client, name: str, text: bytes) -> list[bytes]:
        started = time.perf_counter()
        lines = await c.command(text)
        out.times[name].append(time.perf_counter() - started)
        return lines

    async def loop(rng: random.Random, until: float) -> None:
        while time.perf_counter() < until:
            c = await Client.connect(server.port)
            await timed(c, "LOGIN", f'LOGIN {USER} "{PASSWORD}"'.encode())
            await timed(c, "SELECT", b"SELECT INBOX")
            fetched = await timed(c, COMMANDS[2], b"UID FETCH 1:* (FLAGS ENVELOPE)")
            found = await timed(c, "UID SEARCH ALL", b"UID SEARCH ALL")
            uids = [int(x) for line in found if line.startswith(b"* SEARCH")
                    for x in line.split()[2:]]
            assert uids and len(fetched) >= len(uids), (len(fetched), len(uids))
            chosen = rng.sample(uids, min(50, len(uids)))
            await timed(c, "UID STORE +FLAGS", b"UID STORE %s +FLAGS (\\Flagged)"
                        % ",".join(map(str, chosen)).encode())
            for _ in range(50):
                got = await timed(c, "UID FETCH BODY[]", b"UID FETCH %d BODY[]"
                                  % rng.choice(uids))
                assert got and b"BODY[]" in got[0], got[:1]
            await timed(c, "LOGOUT", b"LOGOUT")
            await c.close()
            out.sessions += 1

    cpu0, client0 = tree_cpu(server.pid), self_cpu()
    started = time.perf_counter()
    await asyncio.gather(*(loop(random.Random(seed * 1000 + i), started + seconds)
                           for i in range(clients)))
    out.elapsed = time.perf_counter() - started
    out.server_cpu, out.client_cpu = tree_cpu(server.pid) - cpu0, self_cpu() - client0
    return out


def settle(pid: int, limit: float = 120.0) -> float:
    """Seconds until the server's processes use under 5% of a CPU over a second (work
    left by a fill, such as its store's checkpoint), at most ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = tree_cpu(pid)
        time.sleep(1)
        if tree_cpu(pid) - before < 0.05:
            break
    return time.monotonic() - started


def time_commands(port: int, user: str, repeat: int) -> dict[str, list[float]]:
    async def run() -> dict[str, list[float]]:
        c = await Client.connect(port)
        await c.command(f'LOGIN {user} "{PASSWORD}"'.encode())
        out: dict[str, list[float]] = {"SELECT": [], "EXAMINE": [], "STATUS": []}
        for _ in range(3):   # warm the caches; not counted
            await c.command(b"SELECT INBOX")
            await c.command(b"STATUS INBOX (MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)")
        for _ in range(repeat):
            for name, text in (("SELECT", b"SELECT INBOX"), ("EXAMINE", b"EXAMINE INBOX"),
                               ("STATUS", b"STATUS INBOX (MESSAGES UIDNEXT UNSEEN "
                                          b"HIGHESTMODSEQ)")):
                started = time.perf_counter()
                await c.command(text)
                out[name].append(time.perf_counter() - started)
            await c.command(b"UNSELECT")
        await c.command(b"LOGOUT")
        await c.close()
        return out
    return asyncio.run(run())


async def idle_memory(server: Server, n: int) -> tuple[int, float]:
    """(connections in IDLE, KB of the server's RSS per connection)."""
    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        await r.readline()
        w.write(f'a LOGIN {USER} "{PASSWORD}"\r\ns SELECT INBOX\r\ni IDLE\r\n'.encode())
        while not (line := await r.readline()).startswith(b"+ "):
            if not line or line.startswith((b"a NO", b"a BAD", b"s NO", b"i BAD", b"i NO")):
                raise ImapError(line)
        return r, w

    await asyncio.sleep(0.5)
    before = rss_kb(server.pid)
    conns = []
    for start in range(0, n, 200):
        conns += await asyncio.gather(*(one() for _ in range(min(200, n - start))))
    await asyncio.sleep(2)
    per = (rss_kb(server.pid) - before) / n
    for _, w in conns:
        w.write(b"DONE\r\nl LOGOUT\r\n")
    for _, w in conns:
        w.close()
    await asyncio.sleep(2)
    return len(conns), per


# -- reporting ---------------------------------------------------------------------------

def print_load(k: int, loads: dict[str, Load]) -> None:
    print(f"\n== K = {k} client{'s' if k > 1 else ''}")
    print(f"{'server':<9} {'commands/s':>10} {'sessions/s':>10} {'server CPU/cmd':>15} "
          f"{'client CPU/cmd':>15}")
    for name, load in loads.items():
        print(f"{name:<9} {load.commands / load.elapsed:>10.0f} "
              f"{load.sessions / load.elapsed:>10.2f} "
              f"{load.server_cpu / max(1, load.commands) * 1000:>12.3f} ms "
              f"{load.client_cpu / max(1, load.commands) * 1000:>12.3f} ms")
    names = list(loads)
    print(f"{'command':<32} " + " ".join(f"{n + ' p50':>13} {'p99':>9}" for n in names)
          + ("  p50 ratio" if len(names) > 1 else ""))
    for cmd in COMMANDS:
        row = " ".join(f"{ms(pct(loads[n].times[cmd], 50)):>13} "
                       f"{pct(loads[n].times[cmd], 99) * 1000:>6.2f} ms" for n in names)
        if len(names) > 1:
            ours, theirs = pct(loads[names[0]].times[cmd], 50), pct(loads[names[1]].times[cmd], 50)
            row += f"  {theirs / ours:>8.2f}x" if ours else ""
        print(f"{cmd:<32} {row}")
    if "dovecot" in loads:
        ratio = ((loads["fdbmail"].commands / loads["fdbmail"].elapsed)
                 / (loads["dovecot"].commands / loads["dovecot"].elapsed))
        print(f"ratio fdbmail/dovecot commands/s at K={k}: {ratio:.2f}"
              + (" (goal >= 0.5)" if k >= 4 else ""))
        print("p50 ratio: dovecot's p50 / fdbmail's (above 1: fdbmail faster)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--size", type=int, default=10 * 1024)
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--idle", default="1000,10000")
    ap.add_argument("--parts", default="append,workload,select,idle",
                    help="append, workload, select, idle; expunge (not by default): "
                    "--expunge messages marked \\Deleted by one STORE, removed by one "
                    "EXPUNGE; bulk (not by default): see --bulk")
    ap.add_argument("--expunge", type=int, default=100_000)
    ap.add_argument("--bulk", type=int, default=100_000,
                    help="messages of the bulk part (COPY, MOVE, RENAME, DELETE, JMAP "
                    "destroy, STORE + EXPUNGE of one whole mailbox)")
    ap.add_argument("--no-dovecot", action="store_true", help="fdbmail only")
    ap.add_argument("--dovecot-login-per-connection", action="store_true",
                    help="Dovecot's default high-security login mode (a login process per "
                    "connection) instead of its performance mode (service_count = 0)")
    ap.add_argument("--foundationdb", metavar="CLUSTER_FILE",
                    help="fdbmail on FoundationDB (a test cluster: its key space is cleared)")
    ap.add_argument("--workers", type=int, default=None,
                    help="the node's [server] workers (default: the number of CPUs; 0: one "
                    "process, the default with IMAPBENCH_PROFILE); CPU and IDLE RSS are of "
                    "all its processes")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 200 messages, K = 1,4 for 2 s, 1,000-message SELECT, "
                    "100 IDLE connections")
    args = ap.parse_args()
    if args.workers is None:
        args.workers = 0 if os.environ.get("IMAPBENCH_PROFILE") else os.cpu_count() or 1
    if args.quick:
        args.messages, args.clients, args.seconds = 200, "1,4", 2.0
        args.sizes, args.repeat, args.idle = "1000", 10, "100"
    parts = set(args.parts.split(","))
    ks = [int(x) for x in args.clients.split(",") if x]
    sizes = [int(x) for x in args.sizes.split(",") if x]
    idles = [int(x) for x in args.idle.split(",") if x]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # inherited by the servers
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"Python {platform.python_version()}; fdbmail on "
          f"{'FoundationDB' if args.foundationdb else 'sqlite + local blob folder'}, "
          f"{f'{args.workers} worker processes' if args.workers else 'one process'}; "
          f"load average at start {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fdbmail-imapbench-") as tmp:
        size_users = [f"m{n}" for n in sizes] if "select" in parts else []
        if "expunge" in parts:
            size_users.append(f"x{args.expunge}")
        if "bulk" in parts:
            size_users.append(f"b{args.bulk}")
        ours, control = start_ours(Path(tmp) / "ours", [USER, *size_users], args.foundationdb,
                                   args.workers)
        servers = [ours]
        try:
            if not args.no_dovecot and parts & {"append", "workload"}:
                servers.append(start_dovecot(Path(tmp) / "dovecot",
                                             args.dovecot_login_per_connection))
                out = subprocess.run([ensure_dovecot(), "--version"], capture_output=True,
                                     text=True, check=False)
                mode = ("a login process per connection" if args.dovecot_login_per_connection
                        else "performance mode (service_count = 0)")
                print(f"dovecot {out.stdout.strip()}: Maildir, passdb passwd-file PLAIN, "
                      f"imap-login in {mode}")
            run(args, parts, ks, sizes, idles, servers, control)
        finally:
            for server in reversed(servers):
                server.stop()


def filled(ours: Server, control: Connection, user: str, n: int) -> tuple[float, float]:
    """``user``'s INBOX (made by a first login) filled with ``n`` messages, index only, in
    the node's process: (seconds the fill took, seconds until the node went quiet)."""
    asyncio.run(_login(ours.port, user))
    control.send(("fill", user, n))
    took: float = control.recv()
    return took, settle(ours.pid)


def run(args: argparse.Namespace, parts: set[str], ks: list[int], sizes: list[int],
        idles: list[int], servers: list[Server], control: Connection) -> None:
    ours = servers[0]
    if parts & {"append", "workload"}:
        messages = [message(i, args.size) for i in range(args.messages)]
        print(f"\n== APPEND: {len(messages):,} messages of {args.size:,} B over 4 connections "
              "(LITERAL+), each OK after the message is durable")
        rates = {}
        for server in servers:
            elapsed, lat = asyncio.run(append_all(server.port, messages, 4))
            rates[server.name] = len(messages) / elapsed
            print(f"{server.name:<9} {rates[server.name]:>8.0f} appends/s   p50 "
                  f"{ms(pct(lat, 50))}   p99 {ms(pct(lat, 99))}", flush=True)
        if len(rates) > 1:
            print(f"ratio fdbmail/dovecot APPEND/s: {rates['fdbmail'] / rates['dovecot']:.2f}")
    if "workload" in parts:
        print(f"\n== workload: {args.seconds:g} s per run, mailbox of {args.messages:,} "
              "messages, all clients on one account; commands/s = all commands / run time; "
              "CPU: the server's processes' and the load client's, per command")
        for k in ks:
            control.send(("retries",))
            retries = control.recv()
            loads = {s.name: asyncio.run(workload(s, k, args.seconds, k)) for s in servers}
            control.send(("retries",))
            retries = control.recv() - retries
            print_load(k, loads)
            stores = len(loads["fdbmail"].times["UID STORE +FLAGS"])
            print(f"fdbmail store transactions retried (conflicts): {retries:.0f} in the run "
                  f"({stores} UID STORE, {loads['fdbmail'].commands} commands)")
            sys.stdout.flush()
    if "select" in parts and sizes:
        results = {}
        for n in sizes:
            user = f"m{n}"
            took, quiet = filled(ours, control, user, n)
            print(f"\nfilled {n:>9,} messages (index only, through the mail layer) in "
                  f"{took:7.1f} s; server quiet after {quiet:.0f} s", flush=True)
            results[n] = r = time_commands(ours.port, user, args.repeat)
            print(f"{'messages':>10} {'SELECT p50':>12} {'p99':>11} {'EXAMINE p50':>12} "
                  f"{'STATUS p50':>12} {'p99':>11}   ({args.repeat} times each)\n"
                  f"{n:>10,} {ms(pct(r['SELECT'], 50))} {ms(pct(r['SELECT'], 99))} "
                  f"{ms(pct(r['EXAMINE'], 50))} {ms(pct(r['STATUS'], 50))} "
                  f"{ms(pct(r['STATUS'], 99))}", flush=True)
        small, large = results[sizes[0]], results[sizes[-1]]
        for cmd in ("SELECT", "EXAMINE", "STATUS"):
            ratio = pct(large[cmd], 50) / max(1e-9, pct(small[cmd], 50))
            print(f"{cmd} p50 {sizes[-1]:,} / {sizes[0]:,}: {ratio:.2f}x (goal <= 2, "
                  "and under 20 ms)")
    if "expunge" in parts:
        n, user = args.expunge, f"x{args.expunge}"
        took, quiet = filled(ours, control, user, n)
        print(f"\n== EXPUNGE: filled {n:,} messages (index only) in {took:.1f} s; server "
              f"quiet after {quiet:.0f} s", flush=True)
        for step, seconds, lines in asyncio.run(expunge_all(ours.port, user, n)):
            print(f"{step:<45} {seconds:8.1f} s   {lines:>9,} untagged responses", flush=True)
    if "bulk" in parts:
        n, user = args.bulk, f"b{args.bulk}"
        took, quiet = filled(ours, control, user, n)
        print(f"\n== bulk operations on one mailbox of {n:,} messages (filled index-only "
              f"in {took:.1f} s; server quiet after {quiet:.0f} s); each step "
              "one command, the session working through it in batches", flush=True)
        asyncio.run(bulk_all(ours.port, user, n, control))
    if "idle" in parts:
        if "append" not in parts:
            asyncio.run(_login(ours.port, USER))
        print(f"\n== IDLE: authenticated connections with INBOX selected, in IDLE; the "
              f"server processes' RSS growth / N (RSS now {rss_kb(ours.pid) / 1024:.0f} MiB)")
        for n in idles:
            got, per = asyncio.run(idle_memory(ours, n))
            print(f"IDLE: {got:>6,} connections, {per:6.1f} KB RSS each (goal < 100 KB)",
                  flush=True)


async def expunge_all(port: int, user: str, n: int) -> list[tuple[str, float, int]]:
    """One STORE marks every message \\Deleted, one EXPUNGE removes them (the session
    works through them in batches, each transaction within FoundationDB's limits): each
    step's time and untagged responses; the mailbox must then be empty."""
    c = await Client.connect(port)
    out = []
    await c.command(f'LOGIN {user} "{PASSWORD}"'.encode())
    for step in (b"SELECT INBOX", b"UID STORE 1:* +FLAGS.SILENT (\\Deleted)", b"EXPUNGE"):
        started = time.perf_counter()
        lines = await c.command(step)
        out.append((step.decode(), time.perf_counter() - started, len(lines)))
        if step == b"SELECT INBOX":
            assert b"* %d EXISTS\r\n" % n in lines, lines[:5]
    expunged = out[-1][2]
    status = await c.command(b"STATUS INBOX (MESSAGES)")
    assert expunged == n and status == [b"* STATUS INBOX (MESSAGES 0)\r\n"], (expunged, status)
    await c.command(b"LOGOUT")
    await c.close()
    return out


async def bulk_all(port: int, user: str, n: int, control: Connection) -> None:
    """COPY, MOVE, RENAME, DELETE, JMAP Mailbox/set destroy and STORE + EXPUNGE of the
    whole mailbox, one after another on the same emails: INBOX is copied to A and J, A
    moved to B, B renamed C, C deleted (IMAP), J destroyed (JMAP, onDestroyRemoveEmails:
    the emails stay, in INBOX), then INBOX expunged (the emails destroyed, with their
    threads and blob references).  The deleted mailboxes are emptied by the layer's
    cleanup, timed on its own.  Each step's time and what it answered is printed as it
    ends; at the end every mailbox is empty, the account holds no email and no deleted
    mailbox is left."""
    import httpx

    c = await Client.connect(port)

    def report(step: str, seconds: float, detail: str) -> None:
        print(f"{step:<52} {seconds:8.1f} s   {detail}", flush=True)

    async def timed(step: bytes, expect: int | None = None) -> list[bytes]:
        started = time.perf_counter()
        lines = await c.command(step)
        report(step.decode(), time.perf_counter() - started,
               f"{len(lines):>9,} untagged responses")
        if expect is not None:
            assert f"* {expect} EXISTS\r\n".encode() in lines, lines[:5]
        return lines

    def cleanup(what: str) -> None:
        control.send(("cleanup",))
        seconds, batches = control.recv()
        report(f"  cleanup of {what} (maintenance's)", seconds, f"{batches:>9,} transactions")

    await c.command(f'LOGIN {user} "{PASSWORD}"'.encode())
    for box in (b"A", b"J", b"B"):
        await c.command(b"CREATE " + box)
    await timed(b"SELECT INBOX", n)
    await timed(b"UID COPY 1:* A")
    await timed(b"UID COPY 1:* J")
    await timed(b"SELECT A", n)
    lines = await timed(b"UID MOVE 1:* B")
    assert sum(line.endswith(b" EXPUNGE\r\n") for line in lines) == n, lines[-3:]
    await c.command(b"UNSELECT")
    await timed(b"RENAME B C")
    await timed(b"DELETE C")
    cleanup("C")
    control.send(("http",))
    http_port = control.recv()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                 auth=(user, PASSWORD), timeout=3600) as web:
        session = (await web.get("/jmap/session")).json()
        account = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]

        async def call(method: str, args: dict[str, object]) -> dict[str, object]:
            r = await web.post(session["apiUrl"], json={"using": using, "methodCalls": [
                [method, {"accountId": account, **args}, "0"]]})
            r.raise_for_status()
            name, result, _ = r.json()["methodResponses"][0]
            assert name == method, result
            got: dict[str, object] = result
            return got

        boxes = await call("Mailbox/get", {"properties": ["name", "totalEmails"]})
        j = next(b for b in boxes["list"] if b["name"] == "J")  # type: ignore[attr-defined]
        assert j["totalEmails"] == n, j
        started = time.perf_counter()
        result = await call("Mailbox/set", {"destroy": [j["id"]],
                                            "onDestroyRemoveEmails": True})
        assert result.get("destroyed") == [j["id"]], result
        report("JMAP Mailbox/set destroy J (onDestroyRemoveEmails)",
               time.perf_counter() - started, "destroyed")
    cleanup("J")
    await timed(b"SELECT INBOX", n)
    await timed(b"UID STORE 1:* +FLAGS.SILENT (\\Deleted)")
    lines = await timed(b"EXPUNGE")
    assert len(lines) == n, len(lines)
    for box in (b"INBOX", b"A"):
        status = await c.command(b"STATUS " + box + b" (MESSAGES)")
        assert status == [b"* STATUS " + box + b" (MESSAGES 0)\r\n"], status
    control.send(("usage", user))
    assert control.recv() == (0, 0, 0)   # no email, no byte, no deleted mailbox left
    print("then: every mailbox empty, no email, no deleted mailbox left (checked)")
    await c.command(b"LOGOUT")
    await c.close()


async def _login(port: int, user: str) -> None:
    c = await Client.connect(port)
    await c.command(f'LOGIN {user} "{PASSWORD}"'.encode())
    await c.command(b"LOGOUT")
    await c.close()


if __name__ == "__main__":
    main()
