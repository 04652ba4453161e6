#!/usr/bin/env python3
"""Outbound queue benchmark: N messages of SIZE octets to U remote recipients, queued through
submission and relayed to a local sink (Postfix's ``smtp-sink``), from acceptance to last
delivery; in the same run, Postfix (Debian, a private instance on loopback) relaying the same
load to the same sink.

Both accept each message durably before 250: fdbmail's submission listener queues the message
(blob synced, queue entry committed in the embedded sqlite store) before answering; Postfix's
cleanup fsyncs the queue file first.  Both take the same submission: the client submits over C
concurrent connections (pipelined MAIL/RCPT/DATA, RFC 2920), each after STARTTLS and AUTH PLAIN
(RFC 6409 section 4.3; RFC 4954), to fdbmail's submission port and to Postfix's smtpd
(``smtpd_tls_auth_only``, relay only for authenticated clients, SASL through a private Dovecot
auth service: :class:`DovecotAuth`).  Neither signs DKIM: fdbmail's signer finds no key for the
bench domain (none is made), Postfix has no milter.  The sink offers no STARTTLS, so both relay
to it in clear.  fdbmail runs as a node with its embedded defaults, an outbound ``routes``
entry sending the sink's domain to the sink, and its delivery worker on (``[outbound] workers =
true``); with --workers N (default 2) its SMTP sessions run in N worker processes, each also
running a delivery worker.  The sink writes each message to its own file in a tmpfs folder: a
message's latency is from the 250 that accepted it to its file's modification time; the rate is
messages over the time from the first submission to the last delivery.  cpu ms/msg: the CPU
time (user + system, from ``/proc``) of the server's processes over the run, per message:
fdbmail's node (its worker processes included), Postfix's master and daemons with Dovecot's
auth; not the sink's or the load generator's.  Unlike the rates, it depends little on
what else loads the machine.

The Postfix run needs root (a private instance), Postfix (ops/lib.sh: install_postfix) and
Dovecot's ``/usr/sbin/dovecot`` (Debian dovecot-core), which the script installs when
missing (ops/lib.sh: install_without_starting, so no system Dovecot starts).

    .venv/bin/python ops/bench/mailqueue.py [--messages 10000] [--size 10240] [--connections 20]
                                        [--recipients 100] [--workers 2] [--quick]
                                        [--no-postfix]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import multiprocessing as mp
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

LOCAL = "bench.example"
REMOTE = "sink.test"
USER, PASSWORD = "sender", "bench-password"
SINK = "/usr/sbin/smtp-sink"
POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
SUBJECT = re.compile(rb"^Subject: bench (\d+)\r?$", re.M)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# -- the sink ----------------------------------------------------------------------------

class Sink:
    """``smtp-sink`` on a free loopback port, each message dumped to a file of its own under
    a tmpfs folder (so the sink's disk is not what is measured)."""

    def __init__(self) -> None:
        base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
        self.root = Path(tempfile.mkdtemp(prefix="fdbmail-sink-", dir=base))
        self.root.chmod(0o777)         # smtp-sink drops to the postfix user when run as root
        self.port = free_port()
        self.run = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def folder(self) -> Path:
        return self.root / f"run{self.run}"

    def start(self) -> None:
        """A fresh sink process dumping into a fresh folder (one per measured run)."""
        self.stop()
        self.run += 1
        self.folder().mkdir()
        self.folder().chmod(0o777)
        user = ["-u", "postfix"] if os.geteuid() == 0 else []
        # %H%M%S/ spreads the files (their names end in a random 32-bit number).
        self.proc = subprocess.Popen(
            [SINK, *user, "-d", f"{self.folder()}/%H%M%S/m.", f"127.0.0.1:{self.port}", "256"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port)

    def delivered(self) -> list[Path]:
        return [p for d in self.folder().iterdir() if d.is_dir() for p in d.iterdir()]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# -- fdbmail (a node in a child process) -------------------------------------------------

def write_config(root: Path, sink_port: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / "fdbmail.toml"
    cfg.write_text(f"""
[server]
data_dir = "{root / 'data'}"
hostname = "mx.bench.example"
[imap]
listen = ""
tls_listen = ""
[smtp]
mx_listen = ""
submission_listen = "127.0.0.1:0"
submissions_listen = ""
[limits]
max_connections_per_ip = 0
connection_rate_per_ip = 0
[outbound]
workers = true
routes = ["{REMOTE}=127.0.0.1:{sink_port}"]
""")
    return cfg


def create_user(cfg: Path) -> None:
    from server.cli import main as cli
    quiet, old_out, old_in = io.StringIO(), sys.stdout, sys.stdin
    sys.stdout, sys.stdin = quiet, io.StringIO(PASSWORD + "\n")
    try:
        assert cli(["-c", str(cfg), "directory", "add-domain", LOCAL]) == 0
        assert cli(["-c", str(cfg), "directory", "add", USER, "--email", f"{USER}@{LOCAL}",
                    "--password-stdin"]) == 0
    finally:
        sys.stdout, sys.stdin = old_out, old_in


def serve(cfg: str, workers: int, conn: Connection) -> None:
    asyncio.run(_serve(Path(cfg), workers, conn))


async def _serve(cfg: Path, workers: int, conn: Connection) -> None:
    from server.config import load_config
    from server.node.node import Node
    from server.node.tuning import tune_gc

    node = Node(load_config(cfg, env={"FDBMAIL_SERVER_WORKERS": str(workers),
                                      "FDBMAIL_SERVER_LOG_LEVEL": "WARNING"}))
    await node.start()
    tune_gc()                          # as `fdbmail serve` does once started
    conn.send(node.ports["submission"])
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)   # until told to stop
    await node.stop()
    conn.send("stopped")


# -- Postfix (a private instance relaying to the sink) -----------------------------------

_SERVICES = """\
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix  - - n 1000? 1 tlsmgr
"""


def postfix_unavailable() -> str | None:
    """Why the Postfix run cannot happen, or None; installs Dovecot (its SASL) if missing."""
    if not os.path.exists(POSTFIX):
        return "postfix is not installed (ops/lib.sh: install_postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    if not os.path.exists(DOVECOT):
        return install_dovecot()
    return None


def install_dovecot() -> str | None:
    """Debian's dovecot-core (Postfix's SASL here), through ops/lib.sh's
    install_without_starting: invoke-rc.d refused, so no system Dovecot starts."""
    print("installing dovecot-core (apt-get)", flush=True)
    lib = Path(__file__).resolve().parents[1] / "lib.sh"
    done = subprocess.run(["bash", "-c", f'. "{lib}" && install_without_starting dovecot-core'],
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0 or not os.path.exists(DOVECOT):
        return f"installing dovecot-core failed: {done.stderr.strip()[-300:]}"
    return None


class Postfix:
    """A private Postfix: its own config and queue under a fresh folder, smtpd on a free
    loopback port, everything relayed to the sink (``relayhost``); Debian's defaults
    otherwise (queue files fsynced before 250, connection caching to the relay host)."""

    def __init__(self, sink_port: int) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fdbmail-postfix-"))
        self.root.chmod(0o755)
        self.port = free_port()
        etc = self.root / "etc"
        etc.mkdir()
        (self.root / "queue").mkdir()
        (self.root / "data").mkdir()
        shutil.chown(self.root / "data", "postfix", "postfix")
        r = self.root
        (etc / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {r}/queue
data_directory = {r}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {r}/postfix.log
maillog_file_prefixes = {r}
myhostname = mta.postfix.test
mydomain = postfix.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{sink_port}
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_chain_files = {r}/tls/key.pem, {r}/tls/cert.pem
smtpd_tls_session_cache_database =
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtp_tls_security_level = none
biff = no
append_dot_mydomain = no
notify_classes =
delay_warning_time = 0
""")
        (etc / "master.cf").write_text(f"127.0.0.1:{self.port} inet n - n - - smtpd\n"
                                       + _SERVICES)
        # A throwaway certificate of the kind fdbmail makes for itself (P-256, self-signed).
        from server.net.tls import self_signed_pem
        cert, key = self_signed_pem("mta.postfix.test")
        (r / "tls").mkdir()
        (r / "tls" / "cert.pem").write_bytes(cert)
        (r / "tls" / "key.pem").write_bytes(key)
        (r / "tls" / "key.pem").chmod(0o600)
        self.dovecot = DovecotAuth(r / "dovecot", r / "queue" / "private" / "auth")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([POSTFIX, "-c", str(self.root / "etc"), *args],
                              capture_output=True, text=True, timeout=60, check=False)

    def start(self) -> None:
        started = self.run("start")
        if started.returncode != 0:
            raise RuntimeError(f"postfix start failed: {started.stderr}")
        self.dovecot.start()        # its socket in the queue's private/, made by the start
        wait_listening(self.port)

    def master(self) -> int | None:
        try:
            return int((self.root / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self) -> list[int]:
        """The master (its daemons below it) and Dovecot's, for their CPU time."""
        return [p for p in (self.master(), self.dovecot.master()) if p is not None]

    def close(self) -> None:
        pid = self.master()
        self.run("stop")
        deadline = time.monotonic() + 15
        while pid is not None and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)    # the master leads its daemons' group
        self.dovecot.close()
        shutil.rmtree(self.root, ignore_errors=True)


class DovecotAuth:
    """A private Dovecot running only its auth service: Postfix's SASL (``smtpd_sasl_type =
    dovecot``) for AUTH PLAIN, the bench user in a passwd-file.  The password is stored
    in clear (PLAIN scheme): checking it costs nothing, while fdbmail checks a bcrypt hash
    once per login and caches the result; with 20 logins in 10,000 messages the
    difference is a few hundred milliseconds of one run's time."""

    def __init__(self, root: Path, socket_path: Path) -> None:
        self.root = root
        root.mkdir()
        (root / "run").mkdir()
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        (root / "dovecot.conf").write_text(f"""\
base_dir = {root}/run
state_dir = {root}/run
log_path = {root}/dovecot.log
protocols =
ssl = no
auth_mechanisms = plain
disable_plaintext_auth = no
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid=postfix gid=postfix home=/nonexistent
}}
service auth {{
  unix_listener {socket_path} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
""")
        self.socket = socket_path
        self.started = False

    def start(self) -> None:
        # Its daemons keep the standard streams: a pipe would never reach end of file.
        with (self.root / "start.err").open("w+") as err:
            done = subprocess.run([DOVECOT, "-c", str(self.root / "dovecot.conf")],
                                  stdout=subprocess.DEVNULL, stderr=err, timeout=60,
                                  check=False)
            err.seek(0)
            if done.returncode != 0:
                raise RuntimeError(f"dovecot start failed: {err.read()}")
        self.started = True
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot made no socket at {self.socket}")
            time.sleep(0.05)

    def master(self) -> int | None:
        try:
            return int((self.root / "run" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        if self.started:
            subprocess.run([DOVECOT, "-c", str(self.root / "dovecot.conf"), "stop"],
                           capture_output=True, timeout=60, check=False)


# -- the load ----------------------------------------------------------------------------

def message(i: int, size: int) -> bytes:
    head = (f"From: {USER}@{LOCAL}\r\nTo: rcpt{i}@{REMOTE}\r\nSubject: bench {i}\r\n"
            f"Message-ID: <queue-{i}-{time.time_ns()}@{LOCAL}>\r\n"
            "Date: Sun, 06 Dec 2026 12:00:00 +0000\r\n\r\n").encode()
    line = b"The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnop\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def _expect(reader: asyncio.StreamReader, code: bytes) -> None:
    got = await _reply(reader)
    if not got.startswith(code):
        raise RuntimeError(f"expected {code.decode()}, got {got!r}")


async def connection(port: int, jobs: list[int], args: argparse.Namespace, tls: bool,
                     accepted: dict[int, float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _expect(reader, b"220")
    writer.write(b"EHLO client.test\r\n")
    await _expect(reader, b"250")
    if tls:
        writer.write(b"STARTTLS\r\n")
        await _expect(reader, b"220")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        await writer.start_tls(ctx)
        writer.write(b"EHLO client.test\r\n")
        await _expect(reader, b"250")
        token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
        writer.write(b"AUTH PLAIN " + token + b"\r\n")
        await _expect(reader, b"235")
    for i in jobs:
        data = message(i, args.size).replace(b"\r\n.", b"\r\n..") + b".\r\n"
        writer.write(b"MAIL FROM:<%s@%s>\r\nRCPT TO:<rcpt%d@%s>\r\nDATA\r\n"
                     % (USER.encode(), LOCAL.encode(), i % args.recipients, REMOTE.encode()))
        for expect in (b"250", b"250", b"354"):
            await _expect(reader, expect)
        writer.write(data)
        await _expect(reader, b"250")
        accepted[i] = time.time()
    writer.write(b"QUIT\r\n")
    with contextlib.suppress(ConnectionError):
        await _reply(reader)
    writer.close()


def cpu_seconds(roots: list[int]) -> float:
    """CPU seconds (user + system) used so far by the processes ``roots`` and all their
    descendants, those that ended and were waited for included (Linux ``/proc``; 0
    elsewhere).  The difference over a run is the server's CPU, whoever else loads the
    machine."""
    parents: dict[int, list[int]] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += times.get(pid, 0)
        todo += parents.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.0


def load(port: int, args: argparse.Namespace, tls: bool, sink: Sink,
         servers: Callable[[], list[int]] = list) -> dict[str, float]:
    """Submit the load, wait for the sink to hold every message, and measure; ``servers``
    gives the server's root processes, whose CPU time over the run is reported."""
    cpu = cpu_seconds(servers())
    accepted: dict[int, float] = {}
    jobs = [list(range(c, args.messages, args.connections)) for c in range(args.connections)]

    async def submit() -> None:
        await asyncio.gather(*(connection(port, j, args, tls, accepted) for j in jobs))

    started = time.time()
    asyncio.run(submit())
    submitted = time.time()
    deadline = time.monotonic() + args.timeout
    while len(files := sink.delivered()) < args.messages:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(files)} of {args.messages} delivered in "
                               f"{args.timeout:.0f} s")
        time.sleep(0.2)
    time.sleep(0.5)            # the last file's writes end with its transaction's "."
    latencies: list[float] = []
    seen: set[int] = set()
    last = 0.0
    for path in files:
        with path.open("rb") as f:
            head = f.read(4096)
        match = SUBJECT.search(head)
        if match is None:
            raise RuntimeError(f"{path} is not a benchmark message")
        i = int(match.group(1))
        seen.add(i)
        at = path.stat().st_mtime
        last = max(last, at)
        latencies.append(at - accepted[i])
    if len(seen) != args.messages or len(files) != args.messages:
        raise RuntimeError(f"{len(files)} deliveries of {len(seen)} distinct messages")
    used = cpu_seconds(servers()) - cpu
    return {"rate": args.messages / (last - started),
            "cpu_ms": used * 1000 / args.messages,
            "accept_rate": args.messages / (submitted - started),
            "p50": percentile(latencies, 50) * 1000, "p90": percentile(latencies, 90) * 1000,
            "p99": percentile(latencies, 99) * 1000, "max": max(latencies) * 1000}


def run_fdbmail(tmp: Path, args: argparse.Namespace, sink: Sink) -> dict[str, float]:
    cfg = write_config(tmp / f"fdbmail{sink.run + 1}", sink.port)
    create_user(cfg)
    sink.start()
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=serve, args=(str(cfg), args.workers, child))
    proc.start()
    child.close()       # the child's end: a child that dies makes recv() raise, not hang
    try:
        port = parent.recv()
        assert proc.pid is not None
        pid = proc.pid
        return load(port, args, True, sink, lambda: [pid])
    finally:
        parent.send("stop")
        with contextlib.suppress(EOFError):
            parent.recv()
        proc.join(60)
        sink.stop()


def run_postfix(args: argparse.Namespace, sink: Sink) -> dict[str, float]:
    sink.start()
    postfix = Postfix(sink.port)
    try:
        postfix.start()
        return load(postfix.port, args, True, sink, postfix.pids)
    finally:
        postfix.close()
        sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--recipients", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2,
                        help="fdbmail's [server] workers (0: one process)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds to wait for the last delivery")
    parser.add_argument("--no-postfix", action="store_true", help="fdbmail only")
    parser.add_argument("--quick", action="store_true", help="200 messages, for CI")
    args = parser.parse_args()
    if args.quick:
        args.messages = 200
    if not os.path.exists(SINK):
        sys.exit(f"{SINK} is missing (the postfix package has it; ops/lib.sh: install_postfix)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {args.messages} messages of {args.size} B over "
          f"{args.connections} connections to {args.recipients} remote recipients, "
          f"fdbmail workers={args.workers}")
    results: dict[str, dict[str, float]] = {}
    sink = Sink()
    try:
        with tempfile.TemporaryDirectory(prefix="fdbmail-queuebench-") as tmp:
            results["fdbmail"] = run_fdbmail(Path(tmp), args, sink)
        why = "--no-postfix" if args.no_postfix else postfix_unavailable()
        if why is None:
            results["postfix"] = run_postfix(args, sink)
        else:
            print(f"postfix: not run ({why})")
    finally:
        sink.close()
    print(f"{'':10}{'msg/s':>8}{'accept/s':>10}{'cpu ms/msg':>11}{'p50 ms':>9}{'p90 ms':>9}"
          f"{'p99 ms':>9}{'max ms':>9}")
    for name, r in results.items():
        print(f"{name:10}{r['rate']:8.0f}{r['accept_rate']:10.0f}{r['cpu_ms']:11.2f}"
              f"{r['p50']:9.0f}{r['p90']:9.0f}{r['p99']:9.0f}{r['max']:9.0f}")
    if "postfix" in results:
        print(f"ratio fdbmail/postfix (msg/s, acceptance to last delivery): "
              f"{results['fdbmail']['rate'] / results['postfix']['rate']:.2f}")


if __name__ == "__main__":
    main()
