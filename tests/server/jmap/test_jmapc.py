"""End to end: the JMAP routes under a real uvicorn on a free port, driven by raw httpx
over plain HTTP and by the ``jmapc`` client library over HTTPS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jmapc
import pytest
import requests
import uvicorn
from jmapc import Ref
from jmapc.methods import CoreEcho, CustomMethod, CoreEchoResponse, MailboxGet, MailboxGetResponse
from jmapc.methods import MailboxQuery, MailboxQueryResponse
from starlette.applications import Starlette

from server.net import tls
from server.net.listen import bind, parse_listen
from server.jmap.args import account_arg, ids_arg
from server.jmap.methods import Capability, Registry
from server.jmap.query import apply_window, window_arg
from tests.server.jmap.conftest import JSON, PASSWORDS, Fixed, Jmap

MAIL = "urn:ietf:params:jmap:mail"
MAILBOXES = {"mb1": "Inbox", "mb2": "Sent", "mb3": "Trash"}


class _Server(uvicorn.Server):
    """The test owns the signals (uvicorn's public hook)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: Starlette, ssl: tuple[Path, Path] | None = None
                ) -> AsyncIterator[int]:
    address = parse_listen("127.0.0.1:0")
    assert address is not None
    sock = bind(address)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                            ssl_certfile=str(ssl[0]) if ssl else None,
                            ssl_keyfile=str(ssl[1]) if ssl else None)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), task.result()
        await asyncio.sleep(0.01)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_over_a_real_uvicorn_with_httpx(jmap: Jmap) -> None:
    async for port in serve(jmap.app()):
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, auth=("alice", "wonderland")) as c:
            session = (await c.get("/.well-known/jmap")).json()
            assert session["apiUrl"] == f"{base}/jmap/api"
            r = await c.post(session["apiUrl"], json={
                "using": ["urn:ietf:params:jmap:core"],
                "methodCalls": [["Core/echo", {"hi": "there"}, "0"]]})
            assert r.json()["methodResponses"] == [["Core/echo", {"hi": "there"}, "0"]]
            r = await c.post("/jmap/api", content=b"\x00garbage", headers=JSON)
            assert r.status_code == 400 and r.json()["type"].endswith(":notJSON")
        async with httpx.AsyncClient(base_url=base) as anonymous:
            r = await anonymous.get("/jmap/session")
            assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]


def _mailbox_query(ctx: Any, args: Any) -> Any:
    account_arg(ctx, args)
    start, ids, _ = apply_window(sorted(MAILBOXES), window_arg(args), 100)
    return {"accountId": args["accountId"], "queryState": "q1", "canCalculateChanges": False,
            "position": start, "ids": ids}


def _mailbox_get(ctx: Any, args: Any) -> Any:
    account_arg(ctx, args)
    ids = ids_arg(ctx, args) or sorted(MAILBOXES)
    return {"accountId": args["accountId"], "state": "s1",
            "list": [{"id": i, "name": MAILBOXES[i]} for i in ids if i in MAILBOXES],
            "notFound": [i for i in ids if i not in MAILBOXES]}


@pytest.fixture
async def https_jmap(jmap: Jmap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                     ) -> AsyncIterator[tuple[str, Fixed]]:
    """A TLS listener (credentials over HTTPS only, the default) with stand-in
    Mailbox/query and Mailbox/get under the mail capability, so that jmapc's typed
    calls and result references run against the real pipeline."""
    cert, key = tls.ensure_self_signed(tmp_path / "tls", "localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    strict = jmap.with_settings(auth_require_tls=True)
    registry: Registry = strict.registry()
    registry.add_capability(Capability(MAIL, {}, {}))
    get = Fixed("Mailbox/get", fn=_mailbox_get, capability=MAIL)
    registry.add(Fixed("Mailbox/query", fn=_mailbox_query, capability=MAIL))
    registry.add(get)
    async for port in serve(strict.app(registry), (cert, key)):
        yield f"127.0.0.1:{port}", get


@pytest.fixture
def jmapc_client(https_jmap: tuple[str, Fixed]) -> Iterator[Callable[[str], jmapc.Client]]:
    """jmapc clients of alice with a password, on the fixture's server.  A jmapc client
    never closes its ``requests.Session``: they are closed here, before the server stops
    (torn down first, as this fixture uses the server's), so that no TLS connection of
    theirs keeps the server waiting for the peer's close_notify until asyncio's SSL
    shutdown timeout (30 s)."""
    host, _ = https_jmap
    made: list[jmapc.Client] = []

    def make(password: str) -> jmapc.Client:
        client = jmapc.Client.create_with_password(host, "alice", password)
        made.append(client)
        return client
    yield make
    for client in made:
        client.requests_session.close()


async def in_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


async def test_jmapc_session_echo_and_result_references(
        https_jmap: tuple[str, Fixed], jmapc_client: Callable[[str], jmapc.Client]) -> None:
    host, get = https_jmap
    client = jmapc_client(PASSWORDS["alice"])
    session = await in_thread(lambda: client.jmap_session)
    assert session.username == "alice"
    assert session.capabilities.core.max_calls_in_request > 0
    assert session.api_url == f"https://{host}/jmap/api"
    assert await in_thread(lambda: client.account_id) == "alice"

    echo = await in_thread(lambda: client.request(CoreEcho(data={"ping": [1, "two"]})))
    assert isinstance(echo, CoreEchoResponse) and echo.data == {"ping": [1, "two"]}

    results = await in_thread(lambda: client.request(
        [MailboxQuery(limit=2), MailboxGet(ids=Ref("/ids"))]))
    query, got = results[0].response, results[1].response
    assert isinstance(query, MailboxQueryResponse) and query.ids == ["mb1", "mb2"]
    assert isinstance(got, MailboxGetResponse)
    assert [m.name for m in got.data] == ["Inbox", "Sent"]
    assert get.seen[-1]["ids"] == ["mb1", "mb2"]  # resolved from "#ids" by the server


async def test_jmapc_sees_method_errors_and_refusals(
        jmapc_client: Callable[[str], jmapc.Client]) -> None:
    client = jmapc_client(PASSWORDS["alice"])
    other = CustomMethod(data={"accountId": "bob", "ids": None})  # another user's account
    other.jmap_method, other.using = "Mailbox/get", {MAIL}  # type: ignore[misc]
    error = await in_thread(lambda: client.request(other))
    assert isinstance(error, jmapc.errors.Error) and error.type == "accountNotFound"
    wrong = jmapc_client("not-the-password")
    assert await in_thread(lambda: _session_status(wrong)) == 401


def _session_status(client: jmapc.Client) -> int:
    """The HTTP status of the client's session request.  The refusal's exception is
    dropped here: its response holds the connection's pool, which no closed session
    lists any more, so an exception kept alive would keep that TLS connection open."""
    try:
        session = client.jmap_session
    except requests.HTTPError as e:
        assert e.response is not None
        return e.response.status_code
    raise AssertionError(f"a session with a wrong password: {session}")
