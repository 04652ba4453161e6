"""``fdbmail queue list|show|retry|delete`` on a store with queued messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fdb_layers.engine.run import transact
from fdb_layers.engine.sqlite import SqliteEngine
from fdb_layers.queue import get_message
from server.blobs.fs import FsBlobStore
from server.cli import main as cli
from server.outbound.outbox import Outbox


async def test_list_show_retry_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    data = tmp_path / "data"
    data.mkdir()
    cfg = tmp_path / "fdbmail.toml"
    cfg.write_text(f'[server]\ndata_dir = "{data}"\n')
    engine = await SqliteEngine.open(data / "store.sqlite3")
    blobs = await FsBlobStore.create(tmp_path / "blobs")
    outbox = Outbox(engine, blobs, clock=lambda: 1000.0)
    await outbox.enqueue("q1", "alice@example.com", ["carol@remote.test"], b"Subject: a\r\n\r\n")
    await outbox.enqueue("q2", "alice@example.com", ["dan@remote.test"], b"Subject: b\r\n\r\n")
    await engine.close()

    def run(*args: str) -> int:
        return cli(["-c", str(cfg), "queue", *args])

    assert await asyncio.to_thread(run, "list") == 0
    out = capsys.readouterr().out
    assert "q1" in out and "carol@remote.test" in out and "q2" in out
    assert "messages=2" in out and "pending=2" in out
    assert await asyncio.to_thread(run, "show", "q1") == 0
    out = capsys.readouterr().out
    assert "<alice@example.com>" in out and "<carol@remote.test>  pending" in out
    assert await asyncio.to_thread(run, "retry", "q1") == 0
    assert await asyncio.to_thread(run, "delete", "q2") == 0
    assert await asyncio.to_thread(run, "delete", "q2") == 1
    assert await asyncio.to_thread(run, "show", "nope") == 1
    assert await asyncio.to_thread(run, "retry", "nope") == 1
    assert "no queued message nope" in capsys.readouterr().err
    engine = await SqliteEngine.open(data / "store.sqlite3")
    try:
        q1 = await transact(engine, get_message, "q1")
        assert q1 is not None and q1.due_at > 1000.0        # made due now
        assert await transact(engine, get_message, "q2") is None
    finally:
        await engine.close()
        await blobs.close()
