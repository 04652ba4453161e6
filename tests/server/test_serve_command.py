"""The README's first command in miniature: `fdbmail serve` with no config file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[str]:
    """Process ids whose parent is ``pid`` (from /proc: no procps needed)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(entry.name)
    return out


def _stop(proc: subprocess.Popen[str]) -> int:
    """SIGTERM, as a service manager stops it; its exit code."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_serve_without_config_answers_healthz_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FDBMAIL_")}
    env["FDBMAIL_SERVER_HTTP_LISTEN"] = f"127.0.0.1:{port}"
    for listener in ("MX", "SUBMISSION", "SUBMISSIONS"):
        env[f"FDBMAIL_SMTP_{listener}_LISTEN"] = "127.0.0.1:0"
    env["FDBMAIL_IMAP_LISTEN"] = env["FDBMAIL_IMAP_TLS_LISTEN"] = "127.0.0.1:0"
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=tmp_path, env={
        **env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "fdbmail serve did not answer in 30 s"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert (tmp_path / "data" / "store.sqlite3").exists()
    finally:
        rc = _stop(proc)
    assert rc == 0


def test_serve_with_workers_takes_mail_from_swaks_and_stops_them_all(tmp_path: Path) -> None:
    """`[server] workers = 2` as a user runs it: the CLI, real processes, swaks."""
    import shutil

    import pytest

    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks (Debian package swaks) is not installed; ops/test installs it")
    http, mx = _free_port(), _free_port()
    root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if not k.startswith("FDBMAIL_")}
    env.update(FDBMAIL_SERVER_HTTP_LISTEN=f"127.0.0.1:{http}", FDBMAIL_SERVER_WORKERS="2",
               FDBMAIL_SMTP_MX_LISTEN=f"127.0.0.1:{mx}", FDBMAIL_SMTP_SUBMISSION_LISTEN="",
               FDBMAIL_SMTP_SUBMISSIONS_LISTEN="", PYTHONPATH=root)
    assert subprocess.run([sys.executable, "-m", "server.cli", "directory", "add", "carol",
                           "--email", "carol@example.test"], cwd=tmp_path, env=env,
                          capture_output=True).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=tmp_path,
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "fdbmail serve did not answer in 30 s"
            time.sleep(0.1)
        children = _children(proc.pid)
        assert len(children) == 2
        for i in range(3):
            sent = subprocess.run([swaks, "--server", f"127.0.0.1:{mx}", "--to",
                                   "carol@example.test", "--from", "dave@remote.test",
                                   "--header", f"Subject: w{i}"],
                                  capture_output=True, text=True, timeout=60)
            assert sent.returncode == 0 and "250 2.0.0" in sent.stdout, sent.stdout
        metrics = httpx.get(f"http://127.0.0.1:{http}/metrics", timeout=10).text
        accepted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                       if line.startswith("fdbmail_smtp_messages_total{")
                       and 'result="accepted"' in line)
        assert accepted == 3
    finally:
        rc = _stop(proc)
    assert rc == 0
    logs = proc.stderr.read() if proc.stderr else ""
    # one log format for every process; a worker's lines say which worker wrote them
    assert '"process_name": "worker-0"' in logs and '"process_name": "worker-1"' in logs
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text().lower()
    assert not (tmp_path / "data" / "commit.sock").exists()
