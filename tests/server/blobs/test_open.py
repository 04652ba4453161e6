"""open_blob_store from configuration, and the metrics every store gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from server.blobs import BlobNotFound, MeteredBlobStore, open_blob_store
from server.blobs import fs
from server.blobs.fs import FsBlobStore
from server.blobs.s3 import S3BlobStore
from server.config import ConfigError, load_config
from tests.support.s3 import S3Server


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_default_is_fs_under_data_dir(tmp_path: Path) -> None:
    config = load_config(env={}).with_overrides({"server": {"data_dir": str(tmp_path)}})
    store = await open_blob_store(config)
    try:
        assert isinstance(store, MeteredBlobStore) and isinstance(store.inner, FsBlobStore)
        ref = await store.put(b"x")  # small: packed
        assert (tmp_path / "blobs" / "packed.sqlite3").exists()
        assert not (tmp_path / "blobs" / ref.id[:2] / ref.id).exists()
        assert store.inner.pack_max == 256 * 1024
        large = await store.put(b"y" * (256 * 1024 + 1))
        assert (tmp_path / "blobs" / large.id[:2] / large.id).exists()
    finally:
        await store.close()


async def test_fs_pack_max_setting(tmp_path: Path) -> None:
    config = load_config(env={"FDBMAIL_BLOBS_FS_PATH": str(tmp_path / "b"),
                              "FDBMAIL_BLOBS_FS_PACK_MAX_BYTES": "0"})
    store = await open_blob_store(config)
    try:
        assert isinstance(store, MeteredBlobStore) and isinstance(store.inner, FsBlobStore)
        ref = await store.put(b"x")  # every blob a file
        assert (tmp_path / "b" / ref.id[:2] / ref.id).exists()
    finally:
        await store.close()
    with pytest.raises(ConfigError):
        load_config(env={"FDBMAIL_BLOBS_FS_PACK_MAX_BYTES": "-1"})


@pytest.mark.parametrize(("setting", "mode"), [("filesystem", "filesystem"), ("file", "file")])
async def test_fs_sync_setting(tmp_path: Path, setting: str, mode: str) -> None:
    config = load_config(env={"FDBMAIL_BLOBS_FS_PATH": str(tmp_path / "b"),
                              "FDBMAIL_BLOBS_FS_SYNC": setting})
    store = await open_blob_store(config)
    try:
        assert isinstance(store, MeteredBlobStore) and isinstance(store.inner, FsBlobStore)
        # (without syncfs(2), as off Linux, "filesystem" falls back to "file")
        assert store.inner.sync_mode == (mode if fs._syncfs is not None else "file")
    finally:
        await store.close()
    with pytest.raises(ConfigError):
        load_config(env={"FDBMAIL_BLOBS_FS_SYNC": "sometimes"})


async def test_fs_path_setting(tmp_path: Path) -> None:
    config = load_config(env={"FDBMAIL_BLOBS_FS_PATH": str(tmp_path / "elsewhere")})
    store = await open_blob_store(config)
    try:
        ref = await store.put(b"y")
        assert (tmp_path / "elsewhere" / ref.id[:2]).is_dir()
    finally:
        await store.close()


async def test_s3_from_settings(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.create_bucket()
    toml = tmp_path / "fdbmail.toml"
    toml.write_text(f"""
[blobs]
backend = "s3"
s3_bucket = "{bucket}"
s3_endpoint_url = "{s3_server.endpoint_url}"
s3_access_key = "{s3_server.access_key}"
s3_secret_key = "{s3_server.secret_key}"
s3_addressing_style = "path"
s3_prefix = "p/"
""")
    store = await open_blob_store(load_config(toml, env={}))
    try:
        assert isinstance(store, MeteredBlobStore) and isinstance(store.inner, S3BlobStore)
        ref = await store.put(b"via config")
        assert await store.get(ref.id) == b"via config"
        keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
        assert keys == [f"p/{ref.id}"]
    finally:
        await store.close()


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        load_config(env={"FDBMAIL_BLOBS_BACKEND": "ftp"})
    with pytest.raises(ConfigError):
        load_config(env={"FDBMAIL_BLOBS_NO_SUCH": "1"})


async def test_metrics(tmp_path: Path) -> None:
    store = MeteredBlobStore(await FsBlobStore.create(tmp_path, fsync=False))
    labels = {"backend": "fs"}
    puts = sample("fdbmail_blobs_operations_total", op="put", result="ok", **labels)
    put_bytes = sample("fdbmail_blobs_bytes_total", op="put", result="ok", **labels)
    misses = sample("fdbmail_blobs_operations_total", op="get", result="not_found", **labels)
    streamed = sample("fdbmail_blobs_bytes_total", op="open", result="ok", **labels)
    timed = sample("fdbmail_blobs_operation_seconds_count", op="put", **labels)

    ref = await store.put(b"12345")
    with pytest.raises(BlobNotFound):
        await store.get("0" * 64)
    assert b"".join([c async for c in store.open(ref.id)]) == b"12345"

    assert sample("fdbmail_blobs_operations_total", op="put", result="ok", **labels) == puts + 1
    assert sample("fdbmail_blobs_bytes_total", op="put", result="ok", **labels) == put_bytes + 5
    assert sample("fdbmail_blobs_operations_total", op="get", result="not_found",
                  **labels) == misses + 1
    assert sample("fdbmail_blobs_bytes_total", op="open", result="ok", **labels) == streamed + 5
    assert sample("fdbmail_blobs_operation_seconds_count", op="put", **labels) == timed + 1
