"""A node on port 0: health and metrics over real HTTP."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from server.app import Node, StartupError, open_store
from server.config import load_config


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    config = load_config(None, env={}).with_overrides(
        {"server": {"data_dir": str(tmp_path / "data"), "http_listen": "127.0.0.1:0"}})
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
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed; ops/test installs it")
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr


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


async def test_foundationdb_engine_without_client_library_says_what_to_install(
    tmp_path: Path,
) -> None:
    try:
        import fdb.impl  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("libfdb_c is installed here")
    config = load_config(None, env={"FDBMAIL_STORE_ENGINE": "foundationdb"}).with_overrides(
        {"server": {"data_dir": str(tmp_path)}})
    with pytest.raises(StartupError, match="foundationdb-clients"):
        await open_store(config)
