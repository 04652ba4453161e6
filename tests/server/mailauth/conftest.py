"""Mail authentication tests: a node's parts with DKIM signing on submission (the
outbound tests' site, its outbox given a signer), the loopback DNS server and the
aiosmtpd sink of the outbound tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fdb_layers.engine.base import Engine
from server.blobs.fs import FsBlobStore
from server.config import load_config
from server.delivery import Delivery
from server.mailauth.dkim_keys import KeyCache
from server.mailauth.sign import Signer
from server.net import tls
from server.outbound.outbox import Outbox
from server.smtp import start_smtp
from tests.server.outbound.conftest import Site, dns_server, mx  # noqa: F401 (fixtures)
from tests.server.smtp.conftest import FakeDirectory


@pytest.fixture
async def signing_site(engine: Engine, tmp_path: Path) -> AsyncIterator[Site]:
    cert, key = tls.ensure_self_signed(tmp_path / "tls", "mx.test")
    blobs = await FsBlobStore.create(tmp_path / "blobs")
    delivery = Delivery(engine, blobs)
    directory = FakeDirectory()
    directory.domains = {"example.test", "nokeys.test"}
    directory.add("alice", "alice@example.test", "alice@nokeys.test")
    config = load_config(None, env={}).with_overrides({
        "server": {"data_dir": str(tmp_path / "data")},
        "tls": {"certificate": str(cert), "key": str(key)},
        "smtp": {"mx_listen": "", "submission_listen": "127.0.0.1:0",
                 "submissions_listen": "", "hostname": "mx.test"}})
    outbox = Outbox(engine, blobs, signer=Signer(KeyCache(engine, ttl=0)))
    smtp = await start_smtp(config, directory, delivery, outbox=outbox)
    try:
        yield Site(engine, blobs, delivery, directory, smtp, tmp_path)
    finally:
        await smtp.close()
        await blobs.close()
