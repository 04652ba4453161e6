"""The Session resource (RFC 8620 section 2)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from server.directory.base import Principal
from server.jmap.methods import CORE
from server.jmap.session import SessionStates, accounts_of, session_resource
from tests.server.jmap.conftest import TEST_CAPABILITY, Jmap, call


async def _session(jmap: Jmap, path: str = "/.well-known/jmap", **kwargs: Any
                   ) -> dict[str, Any]:
    app = kwargs.pop("app", None)
    async with jmap.client(app, **kwargs) as c:
        r = await c.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    return body


async def test_session_has_the_configured_limits_and_the_callers_account(jmap: Jmap) -> None:
    session = await _session(jmap)
    principal = await jmap.directory.get_principal("alice")
    assert principal is not None
    core = session["capabilities"][CORE]
    limits = jmap.settings.limits
    assert core == {
        "maxSizeUpload": limits.max_size_upload,
        "maxConcurrentUpload": limits.max_concurrent_upload,
        "maxSizeRequest": limits.max_size_request,
        "maxConcurrentRequests": limits.max_concurrent_requests,
        "maxCallsInRequest": limits.max_calls_in_request,
        "maxObjectsInGet": limits.max_objects_in_get,
        "maxObjectsInSet": limits.max_objects_in_set,
        "collationAlgorithms": ["i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap"],
    }
    # the account id is the directory principal's id (the mailbox layer's account key)
    assert session["accounts"] == {principal.id: {
        "name": "alice@example.com", "isPersonal": True, "isReadOnly": False,
        "accountCapabilities": {CORE: {}}}}
    assert session["primaryAccounts"] == {CORE: principal.id}
    assert session["username"] == "alice"


async def test_urls_are_absolute_from_the_request_host(jmap: Jmap) -> None:
    session = await _session(jmap, base_url="http://mail.example.net:8443")
    base = "http://mail.example.net:8443"
    assert session["apiUrl"] == f"{base}/jmap/api"
    assert session["downloadUrl"] == f"{base}/download/{{accountId}}/{{blobId}}/{{name}}" \
        "?accept={type}"
    assert session["uploadUrl"] == f"{base}/upload/{{accountId}}/"
    assert session["eventSourceUrl"] == f"{base}/eventsource/?types={{types}}" \
        "&closeafter={closeafter}&ping={ping}"


async def test_a_configured_public_url_wins(jmap: Jmap) -> None:
    configured = jmap.with_settings(public_url="https://jmap.example.com")
    session = await _session(configured)
    assert session["apiUrl"] == "https://jmap.example.com/jmap/api"


async def test_both_session_paths_serve_the_same_session(jmap: Jmap) -> None:
    assert await _session(jmap, "/jmap/session") == await _session(jmap)


async def test_state_is_stable_and_changes_with_the_session(jmap: Jmap) -> None:
    first = await _session(jmap)
    assert (await _session(jmap))["state"] == first["state"]
    # another limit, another capability, another user: another state
    other_limit = await _session(jmap.with_settings(limits={"max_calls_in_request": 5}))
    other_caps = await _session(jmap, app=jmap.app(jmap.registry()))
    bob = await _session(jmap, user="bob")
    states = {first["state"], other_limit["state"], other_caps["state"], bob["state"]}
    assert len(states) == 4
    assert TEST_CAPABILITY in other_caps["capabilities"]


async def test_session_state_of_api_responses_is_the_sessions(jmap: Jmap) -> None:
    async with jmap.client() as c:
        session = (await c.get("/.well-known/jmap")).json()
        response = await call(c, ["Core/echo", {}, "a"])
    assert response["sessionState"] == session["state"]


def test_kept_session_states_are_the_sessions_and_follow_the_principal(jmap: Jmap) -> None:
    """What every API request reports (RFC 8620 section 3.4, ``sessionState``) is kept
    per process: it is the Session's state, and a principal whose address changed has
    another Session, hence another state, never the one kept for its former self."""
    registry = jmap.registry()
    states = SessionStates(registry, entries=1)
    alice = Principal("a1", "alice", "individual", ("alice@example.com",))
    moved = replace(alice, emails=("alice@example.org",))
    seen = []
    for who, base in ((alice, "http://h"), (moved, "http://h"), (alice, "http://h"),
                      (alice, "https://other")):
        accounts, state = states.get(who, base)
        assert state == session_resource(who, registry, base)["state"]
        assert accounts == accounts_of(who, registry)
        seen.append(state)
    assert seen[0] == seen[2] and len(set(seen)) == 3


async def test_session_is_not_cached_and_needs_get(jmap: Jmap) -> None:
    async with jmap.client() as c:
        r = await c.get("/.well-known/jmap")
        assert "no-store" in r.headers["cache-control"]
        assert (await c.post("/.well-known/jmap")).status_code == 405
        assert (await c.get("/jmap/api")).status_code == 405


async def test_unknown_paths_are_404(jmap: Jmap) -> None:
    async with jmap.client() as c:
        r = await c.get("/jmap/nothing")
    assert isinstance(r, httpx.Response) and r.status_code == 404


async def test_cors_lets_a_web_client_on_another_origin_call(jmap: Jmap) -> None:
    async with jmap.client(user=None) as c:
        for path in ("/.well-known/jmap", "/jmap/session", "/jmap/api"):
            r = await c.options(path, headers={
                "Origin": "https://webmail.example", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type"})
            assert r.status_code == 204
            assert r.headers["access-control-allow-origin"] == "*"
            assert "authorization" in r.headers["access-control-allow-headers"].lower()
            assert "POST" in r.headers["access-control-allow-methods"]
        refused = await c.get("/.well-known/jmap")
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "*"
    async with jmap.client() as c:
        r = await c.post("/jmap/api", json={"using": [], "methodCalls": []},
                         headers={"Origin": "https://webmail.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


def test_the_advertised_limits_are_the_enforced_ones(jmap: Jmap) -> None:
    from server.jmap import Registry, core_registry, jmap_routes
    other = jmap.with_settings(limits={"max_calls_in_request": 3})
    with pytest.raises(ValueError):
        jmap_routes(jmap.directory, other.settings, core_registry(jmap.settings.limits))
    with pytest.raises(ValueError):
        jmap_routes(jmap.directory, jmap.settings, Registry())
