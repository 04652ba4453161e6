"""A node on port 0: health and metrics over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from server.node.node import Node
from server.node.parts import StartupError, open_store
from server.config import load_config
from tests.support import disk
from tests.support.disk import TinyDisk
from tests.support.metrics import assert_promtool_accepts

tiny_disk = disk.tiny_disk  # a small filesystem to fill (a fixture)


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "fdbmail.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\nhttp_listen = "127.0.0.1:0"\n'
        '[imap]\nlisten = "127.0.0.1:0"\ntls_listen = "127.0.0.1:0"\n'
        '[smtp]\nmx_listen = "127.0.0.1:0"\nsubmission_listen = "127.0.0.1:0"\n'
        'submissions_listen = "127.0.0.1:0"\n')
    return path


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    config = load_config(_config_file(tmp_path), env={})
    n = Node(config)
    await n.start()
    try:
        yield n
    finally:
        await n.stop()


async def test_healthz_and_metrics(node: Node) -> None:
    assert node.http is not None
    base = f"http://127.0.0.1:{node.http.port}"
    async with httpx.AsyncClient() as client:
        health = await client.get(f"{base}/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "checks": {"store": "ok"}}
        metrics = await client.get(f"{base}/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert 'fdbmail_store_transactions_total{engine="sqlite",result="committed"}' in text
    assert "fdbmail_store_commit_seconds_bucket" in text
    assert_promtool_accepts(text)


async def test_store_of_newer_major_layout_is_refused(tmp_path: Path) -> None:
    from fdb_layers.engine.run import transact
    from fdb_layers.layout import check_layouts

    config = load_config(None, env={}).with_overrides(
        {"server": {"data_dir": str(tmp_path)}})
    engine = await open_store(config)
    # simulate a store written by a future fdbmail
    from fdb_layers.keys import pack
    from fdb_layers.layout import LAYOUT

    async def bump(tr):  # type: ignore[no-untyped-def]
        tr.set(LAYOUT.pack(("store",)), pack((99, 0)))

    await transact(engine, bump)
    await engine.close()
    with pytest.raises(StartupError, match="newer fdbmail"):
        await open_store(config)
    del check_layouts


def test_foundationdb_engine_without_client_library_says_what_to_install(
    tmp_path: Path,
) -> None:
    """In a process where libfdb_c cannot be found (run in a child without the
    library path, so it runs where the library is installed too)."""
    import os
    import subprocess
    import sys
    import textwrap

    root = Path(__file__).resolve().parents[3]
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "FDB_CLUSTER_FILE") and not k.startswith("FDBMAIL_")}
    code = textwrap.dedent(f"""
        import asyncio
        try:
            import fdb.impl  # noqa: F401
        except Exception:
            pass
        else:
            print("skip: libfdb_c is installed system-wide here")
            raise SystemExit(0)
        from server.node.parts import StartupError, open_store
        from server.config import load_config

        config = load_config(None, env={{"FDBMAIL_STORE_ENGINE": "foundationdb"}}).with_overrides(
            {{"server": {{"data_dir": {str(tmp_path)!r}}}}})
        try:
            asyncio.run(open_store(config))
        except StartupError as e:
            print("startup:", e)
        """)
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, timeout=60, env={**env, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr
    if result.stdout.startswith("skip:"):
        pytest.skip(result.stdout.strip())
    assert result.stdout.startswith("startup:") and "foundationdb-clients" in result.stdout, \
        result.stdout


async def test_mail_sent_to_the_node_lands_in_the_inbox(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All real parts wired by the node: SQL directory (managed with the CLI),
    SMTP MX listener, delivery pipeline, sqlite store, fs blob store."""
    import io
    import smtplib

    from fdb_layers.engine.run import transact
    from fdb_layers.mail.mailboxes import find_role
    from fdb_layers.mail.queries import list_messages
    from server.cli import main

    cfg = str(_config_file(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("secret-pw\n"))
    assert main(["-c", cfg, "directory", "add", "alice", "--email", "alice@example.test",
                 "--password-stdin"]) == 0
    assert node.acceptor is not None and node.directory is not None and node.engine is not None
    principal = await node.directory.get_principal("alice")
    assert principal is not None
    port = node.ports["mx"]

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("someone@remote.test", ["alice@example.test"],
                            b"From: someone@remote.test\r\nTo: alice@example.test\r\n"
                            b"Subject: hello\r\nMessage-ID: <n1@remote.test>\r\n\r\nHi!\r\n")
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail("someone@remote.test", ["nobody@example.test"], b"x\r\n")

    import asyncio

    await asyncio.to_thread(send)
    engine = node.engine

    async def inbox(tr):  # type: ignore[no-untyped-def]
        mailbox_id = await find_role(tr, principal.id, "inbox")
        assert mailbox_id is not None
        return await list_messages(tr, principal.id, mailbox_id)

    messages = await transact(engine, inbox)
    assert len(messages) == 1
    assert messages[0].uid == 1


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "workers"])
async def test_a_full_store_disk_is_a_fast_452_that_healthz_reports_until_space_returns(
    tmp_path: Path, tiny_disk: TinyDisk, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """The metadata store on a filesystem that fills up (the blob folder elsewhere):
    the SMTP client gets its 452 4.3.1 at once, not after the delivery timeout; /healthz
    says the store's disk is full; mail is taken again once space returns."""
    import asyncio
    import io
    import smtplib
    import time

    from server.cli import main

    cfg = tmp_path / "fdbmail.toml"
    cfg.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\nhttp_listen = "127.0.0.1:0"\n'
        f'workers = {workers}\n'
        '[imap]\nlisten = "127.0.0.1:0"\ntls_listen = "127.0.0.1:0"\n'
        '[smtp]\nmx_listen = "127.0.0.1:0"\nsubmission_listen = "127.0.0.1:0"\n'
        'submissions_listen = "127.0.0.1:0"\n'
        f'[store]\nsqlite_path = "{tiny_disk.path / "store.sqlite3"}"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO("secret-pw\n"))
    assert main(["-c", str(cfg), "directory", "add", "alice", "--email", "alice@example.test",
                 "--password-stdin"]) == 0
    node = Node(load_config(cfg, env={}))
    await node.start()
    try:
        assert node.acceptor is not None and node.http is not None
        port, health_url = node.ports["mx"], f"http://127.0.0.1:{node.http.port}/healthz"

        def send(n: int) -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail("someone@remote.test", ["alice@example.test"],
                                b"From: someone@remote.test\r\nTo: alice@example.test\r\n"
                                b"Subject: %d\r\nMessage-ID: <full%d@remote.test>\r\n\r\n%s\r\n"
                                % (n, n, b"body " * 2000))

        await asyncio.to_thread(send, 1)
        tiny_disk.fill()
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await asyncio.to_thread(send, 2)
        # RFC 3463 4.3.1: mail system full (the delivery contract's storage-full refusal)
        assert refused.value.smtp_code == 452
        assert b"4.3.1" in refused.value.smtp_error
        assert time.monotonic() - started < 2
        async with httpx.AsyncClient() as client:
            health = await client.get(health_url)
            assert health.status_code == 503
            assert "disk full" in health.json()["checks"]["store"]
            tiny_disk.free()
            health = await client.get(health_url)
            assert health.status_code == 200, health.text
        await asyncio.to_thread(send, 2)
    finally:
        await node.stop()


@pytest.mark.parametrize("layer", ["mail", "blobrefs", "maintenance"])
async def test_a_store_of_a_newer_major_layout_of_any_layer_is_refused_at_open(
    tmp_path: Path, layer: str
) -> None:
    """Every layer's layout is checked when the node opens the store, not only
    the store's own (the mail layout was never registered)."""
    from fdb_layers.engine.run import transact
    from fdb_layers.keys import pack
    from fdb_layers.layout import LAYOUT, get_layouts, registered_layouts

    config = load_config(None, env={}).with_overrides({"server": {"data_dir": str(tmp_path)}})
    engine = await open_store(config)
    assert await transact(engine, get_layouts) == registered_layouts()
    major = registered_layouts()[layer][0]

    async def bump(tr):  # type: ignore[no-untyped-def]
        tr.set(LAYOUT.pack((layer,)), pack((major + 1, 0)))

    await transact(engine, bump)
    await engine.close()
    with pytest.raises(StartupError, match=f"{layer}.*newer fdbmail"):
        await open_store(config)
