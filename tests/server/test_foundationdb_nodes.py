"""`fdbmail serve` on FoundationDB, as a cluster runs it: two node processes on
one cluster (shared directory and blob folder), mail through SMTP from swaks
and from concurrent clients, and a watch in another process woken by a delivery."""

from __future__ import annotations

import asyncio
import os
import shutil
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.engines import FDB_SKIP_REASON
from tests.server.test_serve_command import _free_port, _stop

pytestmark = pytest.mark.skipif(FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or "")

ROOT = str(Path(__file__).resolve().parents[2])
ACCOUNTS = ("carol", "dave")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FDBMAIL_")}
    env.update(
        PYTHONPATH=ROOT,
        FDBMAIL_STORE_ENGINE="foundationdb",
        FDBMAIL_STORE_CLUSTER_FILE=os.environ.get("FDB_CLUSTER_FILE", ""),
        FDBMAIL_DIRECTORY_SQL_PATH=str(tmp_path / "directory.sqlite3"),
        FDBMAIL_BLOBS_FS_PATH=str(tmp_path / "blobs"),
        FDBMAIL_SMTP_SUBMISSION_LISTEN="", FDBMAIL_SMTP_SUBMISSIONS_LISTEN="",
        FDBMAIL_IMAP_LISTEN="", FDBMAIL_IMAP_TLS_LISTEN="",
    )
    return env


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[int]]]:
    """Two nodes on the test cluster (its key space cleared first); their MX ports."""
    from fdb_layers.engine.foundationdb import FoundationDbEngine

    async def clear() -> None:
        engine = await FoundationDbEngine.open()
        tr = engine.create_transaction()
        tr.clear_range(b"", b"\xff")
        await tr.commit()
        await engine.close()

    asyncio.run(clear())
    env = _env(tmp_path)
    for name in ACCOUNTS:
        assert subprocess.run([sys.executable, "-m", "server.cli", "directory", "add", name,
                               "--email", f"{name}@example.test"], cwd=tmp_path, env=env,
                              capture_output=True).returncode == 0
    procs: list[subprocess.Popen[str]] = []
    ports: list[int] = []
    try:
        for node in ("a", "b"):
            http, mx = _free_port(), _free_port()
            (tmp_path / node).mkdir()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"], cwd=tmp_path / node,
                env={**env, "FDBMAIL_SERVER_HTTP_LISTEN": f"127.0.0.1:{http}",
                     "FDBMAIL_SMTP_MX_LISTEN": f"127.0.0.1:{mx}"},
                stderr=subprocess.PIPE, text=True))
            ports.append(mx)
            deadline = time.monotonic() + 30
            while True:
                try:
                    r = httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=1)
                    if r.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                proc = procs[-1]
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "fdbmail serve did not answer in 30 s"
                time.sleep(0.1)
        assert not (tmp_path / "a" / "data" / "store.sqlite3").exists()
        yield env, ports
    finally:
        for proc in procs:
            assert _stop(proc) == 0


async def _open(env: dict[str, str]) -> tuple[object, dict[str, str]]:
    """The store and the accounts' ids, opened in this process (a third client)."""
    from server.node.parts import open_store
    from server.config import load_config
    from server.directory import open_directory

    config = load_config(None, env=env)
    engine = await open_store(config)
    directory = await open_directory(config)
    ids = {}
    for name in ACCOUNTS:
        principal = await directory.get_principal(name)
        assert principal is not None
        ids[name] = principal.id
    close = getattr(directory, "close", None)
    if close is not None:
        await close()
    return engine, ids


async def _inbox(engine: object, account_id: str) -> list[object]:
    from fdb_layers.engine.run import transact
    from fdb_layers.mail.mailboxes import find_role
    from fdb_layers.mail.queries import list_messages

    async def read(tr):  # type: ignore[no-untyped-def]
        mailbox_id = await find_role(tr, account_id, "inbox")
        return [] if mailbox_id is None else await list_messages(tr, account_id, mailbox_id)

    return await transact(engine, read)  # type: ignore[arg-type]


async def _tags(engine: object, account_id: str) -> list[str]:
    """The Subject tag of every message in the inbox, from its stored summary."""
    import re

    from fdb_layers.engine.run import transact
    from fdb_layers.mail.queries import get_summary

    out = []
    for m in await _inbox(engine, account_id):
        summary = await transact(engine, get_summary, account_id,  # type: ignore[arg-type]
                                 m.email_id)  # type: ignore[attr-defined]
        found = re.search(rb"n\d-c\d-\d+", summary or b"")
        out.append(found.group().decode() if found else "?")
    return out


def test_swaks_mail_is_stored_and_wakes_a_watch_in_another_process(
    cluster: tuple[dict[str, str], list[int]],
) -> None:
    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks (Debian package swaks) is not installed; ops/test installs it")
    env, ports = cluster

    async def run() -> float:
        from fdb_layers.mail.accounts import watch_account

        engine, ids = await _open(env)
        try:
            watch = await watch_account(engine, ids["carol"])  # type: ignore[arg-type]
            waiter = asyncio.ensure_future(watch.wait())
            await asyncio.sleep(0.2)
            assert not waiter.done()
            sent = await asyncio.to_thread(
                subprocess.run, [swaks, "--server", f"127.0.0.1:{ports[0]}", "--to",
                                 "carol@example.test", "--from", "erin@remote.test",
                                 "--header", "Subject: through node a"],
                capture_output=True, text=True, timeout=60)
            acknowledged = time.monotonic()
            assert sent.returncode == 0 and "250 2.0.0" in sent.stdout, sent.stdout
            await asyncio.wait_for(waiter, 1.0)  # within a second of the 250, at most
            woke = time.monotonic() - acknowledged
            inbox = await _inbox(engine, ids["carol"])
            assert [m.uid for m in inbox] == [1]  # type: ignore[attr-defined]
            return woke
        finally:
            await engine.close()  # type: ignore[attr-defined]

    assert asyncio.run(run()) < 1.0


def test_two_nodes_deliver_concurrently_to_the_same_accounts(
    cluster: tuple[dict[str, str], list[int]],
) -> None:
    """Both nodes take mail for both accounts at once: every acknowledged message
    is stored once, UIDs are dense and unique."""
    env, ports = cluster
    per_client = 15

    def client(node: int, client_no: int) -> list[str]:
        sent = []
        with smtplib.SMTP("127.0.0.1", ports[node], timeout=60) as smtp:
            for i in range(per_client):
                name = ACCOUNTS[(i + client_no) % 2]
                tag = f"n{node}-c{client_no}-{i}"
                smtp.sendmail("erin@remote.test", [f"{name}@example.test"],
                              (f"From: erin@remote.test\r\nTo: {name}@example.test\r\n"
                               f"Subject: {tag}\r\nMessage-ID: <{tag}@remote.test>\r\n\r\n"
                               f"body {tag}\r\n").encode())
                sent.append(f"{name}:{tag}")
        return sent

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client, node, c) for node in (0, 1) for c in range(4)]
        acknowledged = [s for f in futures for s in f.result()]
    assert len(acknowledged) == 2 * 4 * per_client

    async def stored() -> dict[str, tuple[list[str], list[int]]]:
        engine, ids = await _open(env)
        try:
            return {name: (await _tags(engine, ids[name]),
                           [m.uid for m in await _inbox(engine, ids[name])])  # type: ignore[attr-defined]
                    for name in ACCOUNTS}
        finally:
            await engine.close()  # type: ignore[attr-defined]

    boxes = asyncio.run(stored())
    for name in ACCOUNTS:
        expected = sorted(s.split(":", 1)[1] for s in acknowledged if s.startswith(name + ":"))
        tags, uids = boxes[name]
        assert sorted(tags) == expected, name  # nothing lost, nothing twice
        assert uids == list(range(1, len(expected) + 1))
