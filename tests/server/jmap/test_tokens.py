"""App passwords through a real node: made, listed and revoked at ``/auth/tokens`` on
the JMAP port (HTTP Basic with the real password only) and with ``fdbmail token``;
used as JMAP bearer tokens (RFC 6750) with httpx and jmapc, and as passwords for HTTP
Basic, IMAP LOGIN/AUTHENTICATE PLAIN (imaplib) and SMTP AUTH PLAIN (smtplib)."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import io
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import gc

import httpx
import jmapc
import pytest
import requests
from jmapc.methods import CoreEcho, CoreEchoResponse

from fdb_layers.mail import transact
from fdb_layers.tokens import list_tokens
from server.cli import main as cli_main
from server.config import load_config
from server.directory.apppasswords import PREFIX
from server.directory.base import Principal
from server.jmap.session import API_PATH
from server.node.node import Node
from tests.server.directory.conftest import run_cli
from server.directory.apppasswords import AppPasswords
from server.jmap.tokens import TokenEndpoints
from server.net import tls
from tests.server.jmap.conftest import Jmap
from tests.server.jmap.test_jmapc import serve
from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import mail_node
from tests.support.engines import make_engine

PASSWORDS = {"alice": "wonderland", "bob": "builder"}
ECHO = {"using": ["urn:ietf:params:jmap:core"], "methodCalls": [["Core/echo", {"a": 1}, "0"]]}


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "fdbmail.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\nhttp_listen = "127.0.0.1:0"\n'
        '[imap]\nlisten = "127.0.0.1:0"\ntls_listen = ""\nauth_require_tls = false\n'
        '[smtp]\nmx_listen = ""\nsubmission_listen = "127.0.0.1:0"\n'
        'submissions_listen = ""\nauth_require_tls = false\n'
        '[directory]\ncache_ttl = 0.0\n'
        '[jmap]\nauth_require_tls = false\n')
    return path


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    cfg = _config(tmp_path)
    assert run_cli(cfg, "add-domain", "example.com") == 0
    for name, password in PASSWORDS.items():
        assert run_cli(cfg, "add", name, "--email", f"{name}@example.com",
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


async def _create(mail: Mail, user: str = "alice", name: str = "phone") -> dict[str, Any]:
    async with mail.client(user) as c:
        r = await c.post("/auth/tokens", json={"name": name})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    made: dict[str, Any] = r.json()
    return made


def _bearer(mail: Mail, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=mail.base,
                             headers={"Authorization": f"Bearer {token}"})


async def test_a_token_is_made_shown_once_listed_and_used_as_bearer(mail: Mail) -> None:
    """RFC 6750 section 2.1: the token in an Authorization: Bearer header."""
    made = await _create(mail)
    token = made["token"]
    assert token.startswith(PREFIX) and len(token) > 40
    assert made["name"] == "phone" and made["revoked"] is None
    async with _bearer(mail, token) as c:
        session = (await c.get("/.well-known/jmap")).json()
        assert session["username"] == "alice"
        assert list(session["accounts"]) == [mail.ids["alice"]]
        r = await c.post(API_PATH, json=ECHO)
        assert r.json()["methodResponses"] == [["Core/echo", {"a": 1}, "0"]]
    async with mail.client() as c:
        listed = (await c.get("/auth/tokens")).json()["tokens"]
    assert [t["id"] for t in listed] == [made["id"]]
    assert "token" not in listed[0]  # the secret is never shown again
    assert listed[0]["lastUsed"] is not None
    # only its digest is stored
    assert mail.node.engine is not None
    [stored] = await transact(mail.node.engine, list_tokens, mail.ids["alice"])
    assert token.encode() not in stored.digest and len(stored.digest) == 32


async def test_a_revoked_token_is_401_with_a_challenge(mail: Mail) -> None:
    """RFC 6750 section 3: a request with an invalid token gets 401 and
    WWW-Authenticate; revoking takes effect at once."""
    made = await _create(mail)
    async with mail.client() as c:
        assert (await c.delete(f"/auth/tokens/{made['id']}")).status_code == 204
        for other in ("nosuchtoken", "0" * 16, "x" * 20_000, "%00", "%ff"):
            assert (await c.delete(f"/auth/tokens/{other}")).status_code == 404
        [listed] = (await c.get("/auth/tokens")).json()["tokens"]
    assert listed["revoked"] is not None
    async with _bearer(mail, made["token"]) as c:
        for r in (await c.get("/.well-known/jmap"), await c.post(API_PATH, json=ECHO)):
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/problem+json"
            assert 'Bearer realm="fdbmail"' in r.headers["www-authenticate"]
    async with httpx.AsyncClient(base_url=mail.base,
                                 auth=("alice", made["token"])) as c:
        assert (await c.get("/.well-known/jmap")).status_code == 401


async def test_one_users_token_never_reaches_another_account(mail: Mail) -> None:
    """RFC 8620 section 3.6.2: another user's account is accountNotFound."""
    alice = (await _create(mail))["token"]
    bob = (await _create(mail, "bob"))["token"]
    async with _bearer(mail, alice) as c:
        r = await c.post(API_PATH, json={
            "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
            "methodCalls": [["Mailbox/get", {"accountId": mail.ids["bob"]}, "0"]]})
        [[name, args, _]] = r.json()["methodResponses"]
        assert name == "error" and args["type"] == "accountNotFound"
        up = await c.post(f"/upload/{mail.ids['bob']}/", content=b"x")
        assert up.status_code in (403, 404)
        # nor can it be used as bob's password
    async with httpx.AsyncClient(base_url=mail.base, auth=("bob", alice)) as c:
        assert (await c.get("/.well-known/jmap")).status_code == 401
    # bob's listing shows bob's token only, and alice cannot revoke it
    async with mail.client("bob") as c:
        [bobs] = (await c.get("/auth/tokens")).json()["tokens"]
    async with mail.client() as c:
        assert (await c.delete(f"/auth/tokens/{bobs['id']}")).status_code == 404
    async with _bearer(mail, bob) as c:
        assert (await c.get("/.well-known/jmap")).json()["username"] == "bob"


async def test_managing_tokens_takes_the_real_password(mail: Mail) -> None:
    """A token cannot list, make or revoke tokens, as bearer or as Basic password."""
    made = await _create(mail)
    for auth in ({"headers": {"Authorization": f"Bearer {made['token']}"}},
                 {"auth": ("alice", made["token"])}):
        async with httpx.AsyncClient(base_url=mail.base, **auth) as c:
            for r in (await c.get("/auth/tokens"),
                      await c.post("/auth/tokens", json={"name": "more"}),
                      await c.delete(f"/auth/tokens/{made['id']}")):
                assert r.status_code == 401, r.text
                assert "www-authenticate" in r.headers
    async with httpx.AsyncClient(base_url=mail.base) as anonymous:
        assert (await anonymous.get("/auth/tokens")).status_code == 401


@pytest.mark.parametrize("body", [
    b"", b"not json", b"\xff\xfe", b"[]", b'{"name": 3}', b'{"name": ""}',
    b'{"name": "x", "other": 1}', b'{"name": "' + b"n" * 200 + b'"}',
    b'{"name": "a\\u0000b"}', b"[" * 100_000, b'{"name": "' + b"x" * 10_000 + b'"}',
])
async def test_bad_create_requests_are_400_or_413_and_make_nothing(
        mail: Mail, body: bytes) -> None:
    async with mail.client() as c:
        r = await c.post("/auth/tokens", content=body)
        assert r.status_code in (400, 413), r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert (await c.get("/auth/tokens")).json() == {"tokens": []}


async def test_cors_preflight_allows_the_authorization_header(mail: Mail) -> None:
    """Fetch standard, CORS preflight: OPTIONS without credentials, answered 2xx with
    the method and the Authorization header allowed."""
    async with httpx.AsyncClient(base_url=mail.base) as c:
        for path, method in (("/jmap/api", "POST"), ("/.well-known/jmap", "GET"),
                             ("/auth/tokens", "POST"), ("/auth/tokens/x", "DELETE")):
            r = await c.options(path, headers={
                "Origin": "https://webmail.example",
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "Authorization, Content-Type"})
            assert r.status_code in (200, 204), (path, r.text)
            assert r.headers["access-control-allow-origin"] == "*"
            assert "authorization" in r.headers["access-control-allow-headers"].lower()
            assert method in r.headers["access-control-allow-methods"]
        made = await _create(mail)
        r = await c.get("/.well-known/jmap", headers={
            "Origin": "https://webmail.example", "Authorization": f"Bearer {made['token']}"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


async def test_jmapc_with_a_token_over_https(jmap: Jmap, tmp_path: Path, node_engine: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """jmapc's bearer-token client (RFC 6750) against the routes under a real uvicorn
    over TLS, tokens made by the HTTP endpoint with the password."""
    cert, key = tls.ensure_self_signed(tmp_path / "tls", "localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    engine = await make_engine(node_engine, tmp_path)
    try:
        passwords = AppPasswords(jmap.directory, engine)
        strict = jmap.with_settings(auth_require_tls=True)
        app = strict.app(tokens=passwords, extra=TokenEndpoints(passwords).routes())
        async for port in serve(app, (cert, key)):
            base = f"https://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, verify=str(cert),
                                         auth=("alice", PASSWORDS["alice"])) as c:
                r = await c.post("/auth/tokens", json={"name": "jmapc"})
                assert r.status_code == 201, r.text
            token = r.json()["token"]
            client = jmapc.Client.create_with_api_token(f"127.0.0.1:{port}", token)
            echo = await asyncio.to_thread(client.request, CoreEcho(data={"k": "v"}))
            assert isinstance(echo, CoreEchoResponse) and echo.data == {"k": "v"}
            assert await asyncio.to_thread(getattr, client, "account_id") == "alice"
            wrong = jmapc.Client.create_with_api_token(f"127.0.0.1:{port}",
                                                       token[:-2] + "xx")
            with pytest.raises(requests.HTTPError) as refused:
                await asyncio.to_thread(getattr, wrong, "jmap_session")
            response = refused.value.response
            assert response is not None and response.status_code == 401
            # jmapc's pooled TLS connections (see test_jmapc.py): drop what holds them and
            # collect, or the server waits for them until its TLS shutdown timeout
            del client, wrong, refused, response
            gc.collect()
    finally:
        await engine.close()


async def test_a_token_is_an_imap_and_smtp_password_until_revoked(mail: Mail) -> None:
    """App passwords work where passwords do: IMAP LOGIN and AUTHENTICATE PLAIN
    (RFC 9051 6.2), SMTP AUTH PLAIN (RFC 4954, RFC 4616), for their own login only."""
    made = await _create(mail)
    token = made["token"]
    imap_port, smtp_port = mail.node.ports["imap"], mail.node.ports["submission"]

    def imap_login(user: str, secret: str, plain: bool) -> bool:
        with imaplib.IMAP4("127.0.0.1", imap_port, timeout=30) as client:
            try:
                if plain:
                    client.authenticate("PLAIN",
                                        lambda _: f"\0{user}\0{secret}".encode())
                else:
                    client.login(user, secret)
            except imaplib.IMAP4.error:
                return False
            typ, _ = client.select("INBOX")
            return typ == "OK"

    def smtp_login(user: str, secret: str) -> bool:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            client.ehlo()
            try:
                client.login(user, secret)
            except smtplib.SMTPAuthenticationError:
                return False
            return True

    for plain in (False, True):
        assert await asyncio.to_thread(imap_login, "alice", token, plain)
        assert await asyncio.to_thread(imap_login, "alice@example.com", token, plain)
        assert not await asyncio.to_thread(imap_login, "bob", token, plain)
    assert await asyncio.to_thread(smtp_login, "alice", token)
    assert not await asyncio.to_thread(smtp_login, "bob", token)
    async with mail.client() as c:
        assert (await c.delete(f"/auth/tokens/{made['id']}")).status_code == 204
    assert not await asyncio.to_thread(imap_login, "alice", token, False)
    assert not await asyncio.to_thread(smtp_login, "alice", token)
    # the password still works
    assert await asyncio.to_thread(imap_login, "alice", PASSWORDS["alice"], False)


def _cli(cfg: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["-c", str(cfg), "token", *args])
    return code, out.getvalue()


async def test_the_token_command(mail: Mail, tmp_path: Path) -> None:
    cfg = tmp_path / "fdbmail.toml"
    code, out = await asyncio.to_thread(_cli, cfg, "create", "alice", "--name", "script")
    assert code == 0
    token = out.strip()
    assert token.startswith(PREFIX)
    async with _bearer(mail, token) as c:
        assert (await c.get("/.well-known/jmap")).status_code == 200
    code, out = await asyncio.to_thread(_cli, cfg, "list", "alice")
    assert code == 0 and "script" in out and "active" in out
    token_id = out.split()[0]
    assert (await asyncio.to_thread(_cli, cfg, "revoke", "alice", token_id))[0] == 0
    assert (await asyncio.to_thread(_cli, cfg, "revoke", "bob", token_id))[0] == 1
    assert (await asyncio.to_thread(_cli, cfg, "list", "nobody"))[0] == 1
    code, out = await asyncio.to_thread(_cli, cfg, "list", "alice")
    assert "revoked" in out
    async with _bearer(mail, token) as c:
        assert (await c.get("/.well-known/jmap")).status_code == 401


async def test_basic_logins_are_hashed_once_and_a_password_change_counts_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP Basic sends the password with every request: like IMAP and SMTP AUTH it goes
    through the node's credential cache (one password hash, not one per request), and the
    cache is keyed by the directory's password version, so a change is seen at once."""
    async with mail_node(tmp_path) as mail:
        directory = mail.node.directory
        assert directory is not None
        checked: list[str] = []
        real = directory.authenticate

        async def counting(login: str, secret: str) -> Principal | None:
            checked.append(login)
            return await real(login, secret)

        monkeypatch.setattr(directory, "authenticate", counting)
        async with mail.client() as c:
            for _ in range(3):
                assert (await c.get("/.well-known/jmap")).status_code == 200
        assert checked == ["alice"]
        cfg = tmp_path / "fdbmail.toml"
        assert run_cli(cfg, "passwd", "alice", "--password-stdin", stdin="changed it\n") == 0
        async with mail.client() as c:
            assert (await c.get("/.well-known/jmap")).status_code == 401
