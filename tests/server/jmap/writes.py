"""What the write-side JMAP tests share (upload, Blob/*, Email/import, /set, /copy, Quota,
Identity): a real node (test_mail's), started with extra ``[jmap]`` settings, and
uploads over its HTTP listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from server.config import load_config
from server.node.node import Node
from tests.server.directory.conftest import run_cli
from tests.server.jmap.test_mail import MAIL, PASSWORDS, Mail, _config

BLOB = "urn:ietf:params:jmap:blob"
QUOTA = "urn:ietf:params:jmap:quota"
SUBMISSION = "urn:ietf:params:jmap:submission"
CORE = "urn:ietf:params:jmap:core"
USING = [CORE, MAIL, BLOB, QUOTA, SUBMISSION]


@asynccontextmanager
async def mail_node(tmp_path: Path, jmap: str = "", *,
                    quotas: dict[str, int] | None = None) -> AsyncIterator[Mail]:
    """A running node with alice and bob; ``jmap`` lines are added to ``[jmap]``,
    ``quotas`` (bytes) set with ``fdbmail directory``."""
    cfg = _config(tmp_path)
    cfg.write_text(cfg.read_text() + jmap)
    assert run_cli(cfg, "add-domain", "example.com") == 0
    for name, password in PASSWORDS.items():
        extra = ["--quota", str(quotas[name])] if quotas and name in quotas else []
        assert run_cli(cfg, "add", name, "--email", f"{name}@example.com", *extra,
                       "--password-stdin", stdin=password + "\n") == 0
    node = Node(load_config(cfg, env={}))
    await node.start()
    try:
        assert node.directory is not None
        ids = {}
        for name in PASSWORDS:
            principal = await node.directory.get_principal(name)
            assert principal is not None
            ids[name] = principal.id
        yield Mail(node, ids)
    finally:
        await node.stop()


async def upload(c: httpx.AsyncClient, account: str, data: bytes,
                 kind: str = "message/rfc822") -> dict[str, Any]:
    r = await c.post(f"/upload/{account}/", content=data, headers={"Content-Type": kind})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def calls(c: httpx.AsyncClient, *method_calls: list[Any]) -> list[Any]:
    r = await c.post("/jmap/api", json={"using": USING, "methodCalls": list(method_calls)})
    assert r.status_code == 200, r.text
    responses: list[Any] = r.json()["methodResponses"]
    return responses


async def one(c: httpx.AsyncClient, name: str, args: dict[str, Any]) -> dict[str, Any]:
    [[answer, result, _]] = await calls(c, [name, args, "c"])
    assert answer == name, result
    out: dict[str, Any] = result
    return out
