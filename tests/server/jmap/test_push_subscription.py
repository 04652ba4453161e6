"""PushSubscription (RFC 8620 section 7.2), end to end: a real node pushing to a
Starlette receiver under uvicorn on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.jmap.mail import parse_utc_date, utc_date
from server.jmap.push import PushSettings
from tests.server.jmap.push import PATIENCE
from tests.server.jmap.test_jmapc import serve
from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import calls, mail_node, one

PUSH = 'push_allowed_hosts = ["127.0.0.1"]\npush_retry_delay = 0.05\n'


@dataclass
class Receiver:
    """A push service on loopback: what each path was sent, and how many of the next
    POSTs to fail (with 503)."""

    base: str = ""
    received: dict[str, asyncio.Queue[dict[str, Any]]] = field(default_factory=dict)
    failures: int = 0
    # RFC 8291: the private key and auth secret of a path that asked for encryption
    keys: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = field(default_factory=dict)

    def subscribe_keys(self, name: str) -> dict[str, str]:
        """New ``keys`` for a subscription to ``name`` (what a browser's PushManager
        would give)."""
        private, auth = ec.generate_private_key(ec.SECP256R1()), os.urandom(16)
        self.keys[name] = (private, auth)
        public = private.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"p256dh": base64.urlsafe_b64encode(public).decode().rstrip("="),
                "auth": base64.urlsafe_b64encode(auth).decode().rstrip("=")}

    def url(self, name: str) -> str:
        return f"{self.base}/push/{name}"

    def queue(self, name: str) -> asyncio.Queue[dict[str, Any]]:
        return self.received.setdefault(name, asyncio.Queue())

    async def next(self, name: str) -> dict[str, Any]:
        return await asyncio.wait_for(self.queue(name).get(), PATIENCE)

    async def post(self, request: Request) -> Response:
        name = request.path_params["name"]
        if self.failures > 0:
            self.failures -= 1
            return Response(status_code=503)
        body = await request.body()
        if name in self.keys:  # an independent implementation decrypts it
            assert request.headers["content-encoding"] == "aes128gcm"
            private, auth = self.keys[name]
            body = http_ece.decrypt(body, private_key=private, auth_secret=auth,
                                    version="aes128gcm")
        else:
            assert request.headers["content-type"].startswith("application/json")
        self.queue(name).put_nowait(json.loads(body))
        return Response(status_code=201)


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = Starlette(routes=[Route("/push/{name}", r.post, methods=["POST"])])
    async for port in serve(app):
        r.base = f"http://127.0.0.1:{port}"
        yield r


def _client(mail: Mail, user: str = "alice") -> httpx.AsyncClient:
    client = mail.client(user)
    client.timeout = httpx.Timeout(PATIENCE)  # a loaded machine is slow, never stuck
    return client


async def _subscribe(c: Any, url: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    out = await one(c, "PushSubscription/set", {"create": {"s": {
        "deviceClientId": "phone", "url": url, **extra}}})
    assert out.get("notCreated") is None, out
    created: dict[str, Any] = out["created"]["s"]
    return created["id"], created


async def _verify(c: Any, rx: Receiver, name: str, **extra: Any) -> str:
    sub_id, _ = await _subscribe(c, rx.url(name), **extra)
    verification = await rx.next(name)
    assert verification == {"@type": "PushVerification", "pushSubscriptionId": sub_id,
                            "verificationCode": verification["verificationCode"]}
    out = await one(c, "PushSubscription/set", {"update": {sub_id: {
        "verificationCode": verification["verificationCode"]}}})
    assert out["updated"] == {sub_id: None}, out
    return sub_id


async def test_verification_then_state_changes(tmp_path: Path) -> None:
    """Section 7.2.2: the server pushes a PushVerification at once; the code is null
    until the client sets it back, a wrong code is refused; then each change is pushed
    as a StateChange (section 7.1)."""
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, _client(mail) as c:
        alice = mail.ids["alice"]
        sub_id, created = await _subscribe(c, rx.url("a"))
        assert created["verificationCode"] is None
        expires = parse_utc_date(created["expires"], "expires")
        assert time.time() < expires <= time.time() + 7 * 86400 + 1
        verification = await rx.next("a")
        assert verification["pushSubscriptionId"] == sub_id
        got = await one(c, "PushSubscription/get", {"ids": None})
        assert got["list"] == [{"id": sub_id, "deviceClientId": "phone",
                                "verificationCode": None, "expires": created["expires"],
                                "types": None}]
        assert "accountId" not in got and "state" not in got
        wrong = await one(c, "PushSubscription/set", {"update": {sub_id: {
            "verificationCode": "not-it"}}})
        assert wrong["notUpdated"][sub_id]["type"] == "invalidProperties"
        await one(c, "PushSubscription/set", {"update": {sub_id: {
            "verificationCode": verification["verificationCode"]}}})
        got = await one(c, "PushSubscription/get", {"ids": [sub_id]})
        assert got["list"][0]["verificationCode"] == verification["verificationCode"]
        await mail.send("alice@example.com", "pushed")
        change = await rx.next("a")
        assert change["@type"] == "StateChange"
        assert {"Email", "Mailbox", "Thread"} <= set(change["changed"][alice])
        state = (await one(c, "Email/get", {"accountId": alice, "ids": []}))["state"]
        assert change["changed"][alice]["Email"] == state


async def test_an_unverified_subscription_gets_nothing_but_its_verification(
        tmp_path: Path) -> None:
    """Section 7.2.2: no StateChange before the subscription is verified."""
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, _client(mail) as c:
        await _subscribe(c, rx.url("unverified"))
        assert (await rx.next("unverified"))["@type"] == "PushVerification"
        await _verify(c, rx, "verified")
        await mail.send("alice@example.com", "one")
        assert (await rx.next("verified"))["@type"] == "StateChange"
        assert rx.queue("unverified").empty()


async def test_types_limit_the_pushes(tmp_path: Path) -> None:
    """Section 7.2: ``types`` lists the types pushed."""
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, _client(mail) as c:
        alice = mail.ids["alice"]
        await _verify(c, rx, "ids", types=["Identity"])
        await mail.send("alice@example.com", "not pushed here")
        await calls(c, ["Identity/set", {"accountId": alice, "create": {
            "n": {"email": "alice@example.com", "name": "Alice"}}}, "0"])
        change = await rx.next("ids")
        assert set(change["changed"][alice]) == {"Identity"}


async def test_a_failed_push_is_retried(tmp_path: Path) -> None:
    """A push service that fails (503) is tried again (push_attempts, backoff)."""
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, _client(mail) as c:
        await _verify(c, rx, "flaky")
        rx.failures = 2
        await mail.send("alice@example.com", "retried")
        assert (await rx.next("flaky"))["@type"] == "StateChange"
        assert rx.failures == 0


async def test_destroyed_subscriptions_are_gone(tmp_path: Path) -> None:
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, _client(mail) as c:
        sub_id = await _verify(c, rx, "d")
        out = await one(c, "PushSubscription/set", {"destroy": [sub_id]})
        assert out["destroyed"] == [sub_id]
        assert (await one(c, "PushSubscription/get", {}))["list"] == []
        again = await one(c, "PushSubscription/set", {"destroy": [sub_id]})
        assert again["notDestroyed"][sub_id]["type"] == "notFound"


async def test_another_user_neither_sees_nor_touches_them(tmp_path: Path) -> None:
    """Section 7.2.1: only the subscriptions made with the same credentials."""
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, _client(mail) as c, \
            _client(mail, "bob") as bob:
        sub_id, _ = await _subscribe(c, rx.url("x"))
        assert (await one(bob, "PushSubscription/get", {}))["list"] == []
        got = await one(bob, "PushSubscription/get", {"ids": [sub_id]})
        assert got["notFound"] == [sub_id]
        out = await one(bob, "PushSubscription/set", {"update": {sub_id: {"types": None}},
                                                      "destroy": [sub_id]})
        assert out["notUpdated"][sub_id]["type"] == "notFound"
        assert out["notDestroyed"][sub_id]["type"] == "notFound"
        assert len((await one(c, "PushSubscription/get", {}))["list"]) == 1


async def test_bad_calls_and_properties_are_refused(tmp_path: Path) -> None:
    """Section 7.2.1: url and keys are never returned (asking is ``forbidden``); no
    accountId; section 7.2.2: verificationCode null on create, url and keys immutable;
    only http(s) URLs of allowed hosts; keys (RFC 8291 encryption) are not supported."""
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, _client(mail) as c:
        [[name, args, _]] = await calls(c, ["PushSubscription/get", {"properties": ["url"]},
                                            "0"])
        assert (name, args["type"]) == ("error", "forbidden")
        [[name, args, _]] = await calls(c, ["PushSubscription/get", {
            "accountId": mail.ids["alice"]}, "0"])
        assert (name, args["type"]) == ("error", "invalidArguments")
        good = {"deviceClientId": "d", "url": rx.url("r")}
        cases = {
            "scheme": ({**good, "url": "ftp://127.0.0.1/x"}, "url"),
            "host": ({**good, "url": "http://192.0.2.1/push"}, "url"),
            "relative": ({**good, "url": "/push"}, "url"),
            "keys": ({**good, "keys": {"p256dh": "x", "auth": "y"}}, "keys"),
            "code": ({**good, "verificationCode": "mine"}, "verificationCode"),
            "past": ({**good, "expires": "2001-01-01T00:00:00Z"}, "expires"),
            "date": ({**good, "expires": "tomorrow"}, "expires"),
            # RFC 8620 section 1.4: a UTCDate's time-offset is "Z"
            "offset": ({**good, "expires": "2999-01-01T00:00:00+00:00"}, "expires"),
            "types": ({**good, "types": "Email"}, "types"),
            "device": ({"url": rx.url("r")}, "deviceClientId"),
            "id": ({**good, "id": "mine"}, "id"),
        }
        out = await one(c, "PushSubscription/set", {"create": {
            k: v for k, (v, _) in cases.items()}})
        assert out["created"] is None
        for key, (_, prop) in cases.items():
            error = out["notCreated"][key]
            assert error["type"] == "invalidProperties" and error["properties"] == [prop], \
                (key, error)
        sub_id, _ = await _subscribe(c, rx.url("r"))
        out = await one(c, "PushSubscription/set", {"update": {sub_id: {
            "url": rx.url("elsewhere")}}})
        assert out["notUpdated"][sub_id]["properties"] == ["url"]
        assert rx.queue("elsewhere").empty()


def test_allowed_hosts() -> None:
    """``push_allowed_hosts``: ``*`` is any host but the server's own networks; a host
    listed is allowed even then."""
    anywhere = PushSettings()
    assert anywhere.allows_host("push.example.com")
    assert anywhere.allows_host("8.8.8.8")
    for internal in ("127.0.0.1", "localhost", "a.localhost", "10.1.2.3", "192.168.0.1",
                     "169.254.169.254", "::1", "[::1]", "fe80::1", "0.0.0.0"):
        assert not anywhere.allows_host(internal), internal
    listed = PushSettings(allowed_hosts=("127.0.0.1", "push.example.com"))
    assert listed.allows_host("127.0.0.1") and listed.allows_host("PUSH.example.com")
    assert not listed.allows_host("other.example.com")
    both = PushSettings(allowed_hosts=("*", "127.0.0.1"))
    assert both.allows_host("127.0.0.1") and not both.allows_host("10.0.0.1")


async def test_pushes_are_encrypted_for_subscriptions_with_keys(tmp_path: Path) -> None:
    """RFC 8620 section 7.2 and RFC 8291: with ``keys`` the verification and every
    StateChange are encrypted (aes128gcm, RFC 8188) to the subscriber's key; the
    receiver decrypts them with http_ece."""
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, _client(mail) as c:
        alice = mail.ids["alice"]
        await _verify(c, rx, "secret", keys=rx.subscribe_keys("secret"))
        await mail.send("alice@example.com", "encrypted")
        change = await rx.next("secret")
        assert change["@type"] == "StateChange" and "Email" in change["changed"][alice]
        [[name, args, _]] = await calls(c, ["PushSubscription/get", {
            "properties": ["keys"]}, "0"])
        assert (name, args["type"]) == ("error", "forbidden")


async def test_an_update_of_expires_reports_the_expiry_the_server_chose(
        tmp_path: Path) -> None:
    """Section 7.2.2: the server may cut the expiry asked for on update; RFC 8620
    section 5.3: a property the server set otherwise than the client sent is in
    ``updated``, which is null when all is as sent."""
    async with receiver() as rx, mail_node(tmp_path, PUSH) as mail, _client(mail) as c:
        sub_id, _ = await _subscribe(c, rx.url("e"))
        tomorrow = utc_date(time.time() + 86400)
        kept = await one(c, "PushSubscription/set", {"update": {sub_id: {
            "expires": tomorrow}}})
        far = await one(c, "PushSubscription/set", {"update": {sub_id: {
            "expires": "2999-01-01T00:00:00Z"}}})
        got = await one(c, "PushSubscription/get", {"ids": [sub_id]})
        unset = await one(c, "PushSubscription/set", {"update": {sub_id: {
            "expires": None}}})
    assert kept["updated"] == {sub_id: None}
    chosen = far["updated"][sub_id]["expires"]
    assert chosen == got["list"][0]["expires"]
    assert time.time() < parse_utc_date(chosen, "expires") <= time.time() + 7 * 86400 + 1
    assert parse_utc_date(unset["updated"][sub_id]["expires"], "expires") > time.time()
