"""Authentication (HTTP Basic against the directory, bearer tokens through their seam),
its refusals, and the rule that one account never reaches another's data."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from server.directory.base import Principal
from server.jmap.args import account_arg
from server.jmap.errors import MethodError
from server.jmap.methods import CORE, Account, CallContext
from tests.server.directory.conftest import run_cli
from tests.server.jmap.conftest import TEST_CAPABILITY, Fixed, Jmap, call, error_type

USING = [CORE, TEST_CAPABILITY]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize("path", ["/.well-known/jmap", "/jmap/session"])
async def test_no_credentials_is_401_with_a_challenge(jmap: Jmap, path: str) -> None:
    async with jmap.client(user=None) as c:
        r = await c.get(path)
        _problem(r, 401)
        assert r.headers["www-authenticate"].startswith('Basic realm="fdbmail"')
        r = await c.post("/jmap/api", json={"using": [], "methodCalls": []})
        _problem(r, 401)


@pytest.mark.parametrize("header", [
    "Basic " + base64.b64encode(b"alice:wrong").decode(),
    "Basic " + base64.b64encode(b"nobody:wonderland").decode(),
    "Basic " + base64.b64encode(b"alice").decode(),         # no colon
    "Basic " + base64.b64encode(b":wonderland").decode(),   # no user
    "Basic " + base64.b64encode(b"\xff:\xfe").decode(),     # not UTF-8
    "Basic !!notbase64!!",
    "Basic",
    "Bearer sometoken",                                      # no tokens configured
    "Digest username=alice",
    "\u00e9".encode("latin-1"),                            # not ASCII
])
async def test_bad_credentials_are_401(jmap: Jmap, header: str | bytes) -> None:
    async with jmap.client(user=None) as c:
        headers: Any = {"Authorization": header}
        r = await c.get("/.well-known/jmap", headers=headers)
    _problem(r, 401)
    assert "www-authenticate" in r.headers


async def test_basic_with_a_utf8_password(jmap: Jmap) -> None:
    cfg = jmap.config.data_dir.parent / "fdbmail.toml"
    assert run_cli(cfg, "passwd", "bob", "--password-stdin", stdin="pässwörd\n") == 0
    async with jmap.client(user="bob", password="pässwörd") as c:
        assert (await c.get("/.well-known/jmap")).status_code == 200


async def test_a_directory_outage_is_503_never_401(jmap: Jmap) -> None:
    jmap.directory.down = True
    async with jmap.client() as c:
        r = await c.get("/.well-known/jmap")
        _problem(r, 503)
        assert "www-authenticate" not in r.headers
        assert r.headers["retry-after"]
        _problem(await c.post("/jmap/api", json={"using": [], "methodCalls": []}), 503)
    jmap.directory.down = False
    async with jmap.client() as c:
        assert (await c.get("/.well-known/jmap")).status_code == 200


async def test_credentials_over_plain_http_are_refused_when_tls_is_required(
        jmap: Jmap) -> None:
    strict = jmap.with_settings(auth_require_tls=True)
    async with strict.client(base_url="http://jmap.test") as c:
        r = await c.get("/.well-known/jmap")
        _problem(r, 403)
    assert jmap.directory.logins == 0  # the password was not even checked
    async with strict.client(base_url="https://jmap.test") as c:
        r = await c.get("/.well-known/jmap")
    assert r.status_code == 200
    assert r.json()["apiUrl"] == "https://jmap.test/jmap/api"


async def test_failed_logins_are_rate_limited_per_client_ip(jmap: Jmap) -> None:
    clock = Clock()
    limited = jmap.with_settings(auth_failures=3, auth_failure_window=60.0)
    app = limited.app(clock=clock)
    async with limited.client(app, password="wrong", ip="192.0.2.1") as bad:
        for _ in range(3):
            _problem(await bad.get("/.well-known/jmap"), 401)
        logins = jmap.directory.logins
        _problem(await bad.get("/.well-known/jmap"), 429)
    # the right password from that address is refused too, without asking the directory
    async with limited.client(app, ip="192.0.2.1") as good:
        r = await good.get("/.well-known/jmap")
        _problem(r, 429)
        assert r.headers["retry-after"] == "60"
    assert jmap.directory.logins == logins
    # another client is not affected
    async with limited.client(app, ip="192.0.2.2") as other:
        assert (await other.get("/.well-known/jmap")).status_code == 200
    # once the window has passed, the address may log in again
    clock.now += 61
    async with limited.client(app, ip="192.0.2.1") as good:
        assert (await good.get("/.well-known/jmap")).status_code == 200


class Tokens:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    async def verify(self, token: str) -> Principal | None:
        return self.principal if token == "t0ken" else None


async def test_bearer_tokens_go_through_the_token_seam(jmap: Jmap) -> None:
    alice = await jmap.directory.get_principal("alice")
    assert alice is not None
    app = jmap.app(tokens=Tokens(alice))
    async with jmap.client(app, user=None) as c:
        r = await c.get("/.well-known/jmap", headers={"Authorization": "Bearer t0ken"})
        assert r.status_code == 200 and r.json()["username"] == "alice"
        r = await c.get("/.well-known/jmap", headers={"Authorization": "Bearer other"})
        _problem(r, 401)
        assert "Bearer" in r.headers["www-authenticate"]


# -- accounts -------------------------------------------------------------------------

def _account(ctx: Any, args: Any) -> Any:
    return {"accountId": account_arg(ctx, args).id}


async def test_another_users_account_is_account_not_found(jmap: Jmap) -> None:
    app = jmap.app(jmap.registry(Fixed("Test/get", fn=_account)))
    async with jmap.client(app) as c:
        response = await call(c, ["Test/get", {"accountId": "bob"}, "a"],
                              ["Test/get", {"accountId": "nosuch"}, "b"],
                              ["Test/get", {"accountId": "alice"}, "c"],
                              ["Test/get", {}, "d"], using=USING)
    assert error_type(response, 0) == "accountNotFound"
    assert error_type(response, 1) == "accountNotFound"
    assert response["methodResponses"][2] == ["Test/get", {"accountId": "alice"}, "c"]
    assert error_type(response, 3) == "invalidArguments"


async def test_an_account_without_the_methods_capability(jmap: Jmap) -> None:
    app = jmap.app(jmap.registry(Fixed("Test/get", fn=_account), account_capability=False))
    async with jmap.client(app) as c:
        response = await call(c, ["Test/get", {"accountId": "alice"}, "a"], using=USING)
    assert error_type(response) == "accountNotSupportedByMethod"


def test_a_write_to_a_read_only_account(jmap: Jmap) -> None:
    alice = Principal("alice", "alice", "individual", ("alice@example.com",))
    shared = Account("shared", "shared", is_personal=False, is_read_only=True,
                     capabilities={TEST_CAPABILITY: {}})
    ctx = CallContext(alice, {"shared": shared}, frozenset(USING), jmap.settings.limits,
                      "s", "c1", "Test/set", TEST_CAPABILITY, {})
    assert account_arg(ctx, {"accountId": "shared"}) is shared  # reading is fine
    with pytest.raises(MethodError) as caught:
        account_arg(ctx, {"accountId": "shared"}, write=True)
    assert caught.value.type == "accountReadOnly"
