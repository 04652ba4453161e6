"""Cross-process IDLE on FoundationDB: two `fdbmail serve` processes on one cluster (shared
directory and blob folder), as a cluster runs them. A message delivered through SMTP to one
node shows in an IDLE on the other within a second, and a flag changed through the other
node's IMAP shows there too: the wake-up goes through the store (its watches and the node's
commit notifications), since nothing is shared between the processes but the store."""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from imapclient import IMAPClient

from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.test_serve_command import _free_port, _stop
from tests.support.engines import FDB_SKIP_REASON

pytestmark = pytest.mark.skipif(FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or "")

ROOT = str(Path(__file__).resolve().parents[3])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FDBMAIL_")}
    env.update(
        PYTHONPATH=ROOT,
        FDBMAIL_STORE_ENGINE="foundationdb",
        FDBMAIL_STORE_CLUSTER_FILE=os.environ.get("FDB_CLUSTER_FILE", ""),
        FDBMAIL_DIRECTORY_SQL_PATH=str(tmp_path / "directory.sqlite3"),
        FDBMAIL_BLOBS_FS_PATH=str(tmp_path / "blobs"),
        FDBMAIL_SMTP_SUBMISSION_LISTEN="", FDBMAIL_SMTP_SUBMISSIONS_LISTEN="",
        FDBMAIL_IMAP_LISTEN="",
    )
    return env


def _clear_cluster() -> None:
    from fdb_layers.engine.foundationdb import FoundationDbEngine

    async def clear() -> None:
        engine = await FoundationDbEngine.open()
        tr = engine.create_transaction()
        tr.clear_range(b"", b"\xff")
        await tr.commit()
        await engine.close()

    asyncio.run(clear())


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[dict[str, int]]]:
    """Two node processes on the test cluster (its key space cleared first); the MX and
    IMAPS ports of each."""
    _clear_cluster()
    env = _env(tmp_path)
    added = subprocess.run([sys.executable, "-m", "server.cli", "directory", "add", "alice",
                            "--email", "alice@example.test", "--password-stdin"],
                           cwd=tmp_path, env=env, input=PASSWORD + "\n", capture_output=True,
                           text=True)
    assert added.returncode == 0, added.stderr
    procs: list[subprocess.Popen[str]] = []
    ports: list[dict[str, int]] = []
    try:
        for name in ("a", "b"):
            p = {"http": _free_port(), "mx": _free_port(), "imaps": _free_port()}
            (tmp_path / name).mkdir()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"], cwd=tmp_path / name,
                env={**env, "FDBMAIL_SERVER_HTTP_LISTEN": f"127.0.0.1:{p['http']}",
                     "FDBMAIL_SMTP_MX_LISTEN": f"127.0.0.1:{p['mx']}",
                     "FDBMAIL_IMAP_TLS_LISTEN": f"127.0.0.1:{p['imaps']}"},
                stderr=subprocess.PIPE, text=True))
            ports.append(p)
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{p['http']}/healthz",
                                 timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                proc = procs[-1]
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "fdbmail serve did not answer in 30 s"
                time.sleep(0.1)
        assert not (tmp_path / "a" / "data" / "store.sqlite3").exists()
        yield ports
    finally:
        for proc in procs:
            assert _stop(proc) == 0


def _client(port: int) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=port, ssl=True, ssl_context=tls_client_context(),
                   timeout=30)
    c.login("alice", PASSWORD)
    return c


def _idle_until(c: IMAPClient, wanted: tuple[int, bytes], limit: float) -> float:
    """Seconds until ``wanted`` arrives in the IDLE (failing after ``limit`` seconds)."""
    started = time.monotonic()
    seen = []
    while time.monotonic() - started < limit:
        got = c.idle_check(timeout=limit - (time.monotonic() - started))
        seen += got
        if any(item[:2] == wanted for item in got):
            return time.monotonic() - started
    raise AssertionError(f"{wanted} not in the IDLE within {limit} s: {seen}")


def test_smtp_delivery_on_one_node_shows_in_an_idle_on_the_other(
    nodes: list[dict[str, int]],
) -> None:
    """RFC 2177 / RFC 9051 section 6.3.13: while idling, the server sends untagged EXISTS
    for new mail and FETCH for flag changes, whichever node made the change."""
    a, b = nodes
    idler = _client(b["imaps"])
    other = _client(a["imaps"])
    try:
        idler.select_folder("INBOX")
        idler.idle()
        with smtplib.SMTP("127.0.0.1", a["mx"], timeout=30) as smtp:
            refused = smtp.sendmail(
                "erin@remote.test", ["alice@example.test"],
                b"From: erin@remote.test\r\nTo: alice@example.test\r\n"
                b"Subject: through node a\r\nMessage-ID: <x1@remote.test>\r\n\r\nHi!\r\n")
        assert refused == {}
        # the 250 is in; the other process's IDLE hears of it within a second
        assert _idle_until(idler, (1, b"EXISTS"), 5.0) < 1.0

        # a flag set through node a's IMAP reaches the IDLE on node b as well
        other.select_folder("INBOX")
        other.add_flags([1], [b"\\Flagged"], silent=True)
        assert _idle_until(idler, (1, b"FETCH"), 5.0) < 1.0
        idler.idle_done()

        # what node b now reads is what node a stored
        fetched = idler.fetch([1], ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        assert b"\\Flagged" in fetched[1][b"FLAGS"]
        assert b"through node a" in fetched[1][b"BODY[HEADER.FIELDS (SUBJECT)]"]
    finally:
        idler.logout()
        other.logout()
