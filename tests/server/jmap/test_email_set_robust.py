"""Bad arguments to the write methods (Email/set, /import, /copy, Blob/*, Quota/*,
Identity/*) get the RFC's errors -- invalidArguments at the call, or a SetError per
object -- never serverFail, and the node stays up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import calls, mail_node

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

GARBAGE: list[Any] = [None, True, 0, -1, 1.5, "", "x", [], [None], {}, {"": None},
                      {"a": [1, {"b": None}]}, "f" * 64, ["#nope"]]


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path) as m:
        yield m


def _cases(account: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    shapes: dict[str, list[str]] = {
        "Email/set": ["create", "update", "destroy", "ifInState"],
        "Email/import": ["emails", "ifInState"],
        "Email/copy": ["fromAccountId", "create"],
        "Blob/get": ["ids", "properties", "offset", "length"],
        "Blob/lookup": ["typeNames", "ids"],
        "Blob/copy": ["fromAccountId", "blobIds"],
        "Blob/upload": ["create"],
        "Quota/get": ["ids", "properties"],
        "Quota/changes": ["sinceState", "maxChanges"],
        "Quota/query": ["filter", "sort", "position"],
        "Identity/get": ["ids", "properties"],
        "Identity/changes": ["sinceState", "maxChanges"],
        "Identity/set": ["create", "update", "destroy"],
    }
    for method, names in shapes.items():
        for name in names:
            for value in GARBAGE:
                out.append([method, {"accountId": account, name: value}, "c"])
        for value in GARBAGE:  # garbage inside each object of a /set-like call
            key = {"Email/import": "emails", "Email/set": "create", "Identity/set": "create",
                   "Blob/upload": "create"}.get(method)
            if key is not None:
                out.append([method, {"accountId": account, key: {"k": value}}, "c"])
                out.append([method, {"accountId": account,
                                     key: {"k": {"mailboxIds": value, "blobId": value,
                                                 "email": value, "data": value,
                                                 "bodyStructure": value}}}, "c"])
            if method in ("Email/set", "Identity/set"):
                out.append([method, {"accountId": account, "update": {"x": value}}, "c"])
                out.append([method, {"accountId": account,
                                     "update": {"x": {"keywords/$seen": value,
                                                      "mailboxIds": value}}}, "c"])
    return out


async def test_garbage_never_fails_the_server(mail: Mail) -> None:
    account = mail.ids["alice"]
    cases = _cases(account)
    async with mail.client() as c:
        for start in range(0, len(cases), 30):  # maxCallsInRequest is 32
            for name, args, _ in await calls(c, *cases[start:start + 30]):
                assert not (name == "error" and args["type"] in ("serverFail",
                                                                 "serverPartialFail")), args
        session = await c.get("/.well-known/jmap")
    assert session.status_code == 200
