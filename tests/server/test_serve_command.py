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


def test_serve_without_config_answers_healthz_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FDBMAIL_")}
    env["FDBMAIL_SERVER_HTTP_LISTEN"] = f"127.0.0.1:{port}"
    for listener in ("MX", "SUBMISSION", "SUBMISSIONS"):
        env[f"FDBMAIL_SMTP_{listener}_LISTEN"] = "127.0.0.1:0"
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
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0
