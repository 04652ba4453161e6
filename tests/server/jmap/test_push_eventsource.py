"""JMAP push over EventSource (RFC 8620 section 7.3), end to end: a real node, httpx
streaming the event stream, changes made through SMTP, IMAP and JMAP."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.config import load_config
from server.node.node import Node
from server.jmap.push.eventsource import BadPushRequest, parse_closeafter, parse_ping, parse_types
from server.jmap.push.state import decode_token, encode_token
from tests.server.imap.conftest import tls_client_context
from tests.server.directory.conftest import run_cli
from tests.server.jmap.push import PATIENCE, EventReader
from tests.server.jmap.test_mail import PASSWORDS, Mail
from tests.server.jmap.writes import CORE, SUBMISSION, USING, calls, mail_node, one

ALL = "/eventsource/?types=*&closeafter=no&ping=0"
ONE_STATE = "/eventsource/?types=*&closeafter=state&ping=0"
VACATION = "urn:ietf:params:jmap:vacationresponse"


def _client(mail: Mail, user: str = "alice") -> httpx.AsyncClient:
    client = mail.client(user)
    client.timeout = httpx.Timeout(PATIENCE)  # a loaded machine is slow, never stuck
    return client
WEBSOCKET = "urn:ietf:params:jmap:websocket"


async def test_the_session_advertises_event_source_and_websocket(tmp_path: Path) -> None:
    """RFC 8620 section 2 (eventSourceUrl); RFC 8887 section 4 (the websocket capability:
    a ws:// url on a plain HTTP base, supportsPush)."""
    async with mail_node(tmp_path) as mail, _client(mail) as c:
        session = (await c.get("/jmap/session")).json()
        assert session["eventSourceUrl"] == (
            f"{mail.base}/eventsource/?types={{types}}&closeafter={{closeafter}}&ping={{ping}}")
        ws = session["capabilities"][WEBSOCKET]
        assert ws == {"url": mail.base.replace("http", "ws", 1) + "/jmap/ws",
                      "supportsPush": True}


async def test_a_delivery_is_pushed_as_a_state_change(tmp_path: Path) -> None:
    """Section 7.3: a ``state`` event whose data is a StateChange (section 7.1) naming
    the types that changed with their new states, the states /get then answers."""
    async with mail_node(tmp_path) as mail, _client(mail) as c:
        alice = mail.ids["alice"]
        async with c.stream("GET", ALL) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            events = EventReader(r)
            first = await events.next()  # where the client stands, at once
            assert first.kind == "state" and first.id
            assert first.data["@type"] == "StateChange"
            before = first.data["changed"][alice]
            assert set(before) == {"Mailbox", "Email", "Thread", "Identity", "Quota",
                                   "EmailSubmission", "VacationResponse"}
            await mail.send("alice@example.com", "pushed")
            event = await events.next()
            assert event.kind == "state" and event.id != first.id
            changed = event.data["changed"][alice]
            assert {"Email", "Mailbox", "Thread", "Quota"} <= set(changed)
            assert "Identity" not in changed and "VacationResponse" not in changed
            got = await one(c, "Email/get", {"accountId": alice, "ids": []})
            assert changed["Email"] == got["state"] != before["Email"]


async def test_an_imap_append_is_pushed(tmp_path: Path) -> None:
    """Section 7.1: JMAP and IMAP are views of one store; an APPEND changes Email."""
    async with mail_node(tmp_path) as mail, _client(mail) as c:
        alice = mail.ids["alice"]
        async with c.stream("GET", ALL) as r:
            events = EventReader(r)
            await events.next()

            def append() -> None:
                imap = imaplib.IMAP4("127.0.0.1", mail.node.ports["imap"], timeout=30)
                imap.starttls(ssl_context=tls_client_context())
                imap.login("alice", PASSWORDS["alice"])
                imap.append("INBOX", None, None,
                            b"From: a@b.test\r\nSubject: appended\r\n\r\nhi\r\n")
                imap.logout()
            await asyncio.to_thread(append)
            event = await events.next()
            assert "Email" in event.data["changed"][alice]


async def test_types_limits_what_is_pushed(tmp_path: Path) -> None:
    """Section 7.3: ``types`` lists the types to push; a mail delivery (Email) is not
    pushed to a stream of Identity changes, an identity change is."""
    async with mail_node(tmp_path) as mail, _client(mail) as c:
        alice = mail.ids["alice"]
        async with c.stream("GET", "/eventsource/?types=Identity,CalendarEvent"
                                   "&closeafter=no&ping=0") as r:
            assert r.status_code == 200
            events = EventReader(r)
            first = await events.next()
            assert set(first.data["changed"][alice]) == {"Identity"}
            await mail.send("alice@example.com", "not pushed here")
            await calls(c, ["Identity/set", {"accountId": alice, "create": {
                "n": {"email": "alice@example.com", "name": "Alice"}}}, "0"])
            event = await events.next()  # the delivery made no event before this one
            assert set(event.data["changed"][alice]) == {"Identity"}
            assert USING and SUBMISSION


async def test_closeafter_state_ends_after_one_change(tmp_path: Path) -> None:
    """Section 7.3: with ``closeafter=state`` the response ends after a state event
    (and none is sent before a change: the client long-polls)."""
    async with mail_node(tmp_path) as mail, _client(mail) as c:
        async with c.stream("GET", "/eventsource/?types=*&closeafter=state&ping=0") as r:
            events = EventReader(r)
            await mail.send("alice@example.com", "one")
            event = await events.next()
            assert "Email" in event.data["changed"][mail.ids["alice"]]
            assert await events.ended()


async def test_last_event_id_catches_up(tmp_path: Path) -> None:
    """A client that reconnects with ``Last-Event-ID`` (the id of the last state event
    it got) is sent what changed while it was away, at once."""
    async with mail_node(tmp_path) as mail, _client(mail) as c:
        alice = mail.ids["alice"]
        async with c.stream("GET", ALL) as r:
            last = (await EventReader(r).next()).id
        await mail.send("alice@example.com", "while away")
        async with c.stream("GET", "/eventsource/?types=*&closeafter=state&ping=0",
                            headers={"Last-Event-ID": last or ""}) as r:
            events = EventReader(r)
            event = await events.next()
            assert "Email" in event.data["changed"][alice]
            assert "Identity" not in event.data["changed"][alice]
            assert await events.ended()


async def test_ping_is_clamped_and_announces_its_interval(tmp_path: Path) -> None:
    """Section 7.3: a ``ping`` event whose data has the interval the server uses,
    which may differ from the one asked for (clamped to ``push_ping_min``)."""
    async with mail_node(tmp_path, "push_ping_min = 2\n") as mail, _client(mail) as c:
        async with c.stream("GET", "/eventsource/?types=*&closeafter=no&ping=1") as r:
            events = EventReader(r)
            assert (await events.next()).kind == "state"
            ping = await events.next()
            assert ping.kind == "ping" and ping.data == {"interval": 2} and ping.id is None


@pytest.mark.parametrize("query", [
    "types=Email,,Mailbox&closeafter=no&ping=0",
    "types=Em%20ail&closeafter=no&ping=0",
    "types=&closeafter=no&ping=0",
    "types=*&closeafter=maybe&ping=0",
    "types=*&closeafter=no&ping=-1",
    "types=*&closeafter=no&ping=soon",
    "types=*&closeafter=no&ping=99999999999999",
])
async def test_malformed_parameters_get_400(tmp_path: Path, query: str) -> None:
    """Section 7.3 defines each parameter's syntax; anything else is a 400 problem and
    the server goes on serving."""
    async with mail_node(tmp_path) as mail, _client(mail) as c:
        r = await c.get(f"/eventsource/?{query}")
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 400
        assert (await c.get("/jmap/session")).status_code == 200


async def test_credentials_are_required(tmp_path: Path) -> None:
    async with mail_node(tmp_path) as mail:
        async with _client(mail) as c:
            c.auth = None  # type: ignore[assignment]
            r = await c.get(ALL)
            assert r.status_code == 401


async def test_connections_per_account_are_limited(tmp_path: Path) -> None:
    """``push_max_connections``: one more connection of the account gets 429; another
    account is not affected, and a stream's end frees its place.  The end is the server's
    (``closeafter=state`` after a delivery), so that the last byte of the stream is the
    signal the test waits on: the server gives the place back before it sends it."""
    # the second connection from a client of its own: httpx may end a pooled client's
    # open stream when the same client sends another request (seen with httpx 0.29)
    async with mail_node(tmp_path, "push_max_connections = 1\n") as mail, \
            _client(mail) as c, _client(mail) as again, _client(mail, "bob") as bob:
        async with c.stream("GET", ONE_STATE) as r:
            assert r.status_code == 200
            refused = await again.get(ALL)
            assert refused.status_code == 429
            async with bob.stream("GET", ALL) as other:
                assert other.status_code == 200
            await mail.send("alice@example.com", "ends the stream")
            events = EventReader(r)
            assert (await events.next()).kind == "state"
            assert await events.ended()
        async with c.stream("GET", ALL) as r:
            assert r.status_code == 200
            await EventReader(r).next()


@given(st.text(max_size=40))
def test_parameter_parsers_accept_or_refuse_anything(text: str) -> None:
    """Garbage gives a value or BadPushRequest, nothing else."""
    for parse in (parse_types, parse_closeafter, lambda v: parse_ping(v, 5)):
        try:
            parse(text)
        except BadPushRequest:
            pass
    try:
        ping = parse_ping(text, 5)
    except BadPushRequest:
        return
    assert ping == 0 or 5 <= ping <= 3600


async def test_every_process_of_a_node_pushes_on_sqlite(tmp_path: Path) -> None:
    """DESIGN.md: a commit in any process wakes the watches of all of them.  A node with
    two worker processes on the embedded store: event streams land on whichever process
    the kernel gives them, mail is taken by the workers; every stream sees it."""
    cfg = tmp_path / "fdbmail.toml"
    cfg.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\nhttp_listen = "127.0.0.1:0"\n'
        'workers = 2\nlog_level = "WARNING"\n'
        '[imap]\nlisten = ""\ntls_listen = ""\n'
        '[smtp]\nmx_listen = "127.0.0.1:0"\nsubmission_listen = ""\nsubmissions_listen = ""\n'
        '[directory]\ncache_ttl = 0.0\n[jmap]\nauth_require_tls = false\n')
    assert run_cli(cfg, "add-domain", "example.com") == 0
    assert run_cli(cfg, "add", "alice", "--email", "alice@example.com", "--password-stdin",
                   stdin=PASSWORDS["alice"] + "\n") == 0
    node = Node(load_config(cfg, env={}))
    await node.start()
    try:
        assert node.directory is not None
        principal = await node.directory.get_principal("alice")
        assert principal is not None
        mail = Mail(node, {"alice": principal.id})
        async with contextlib.AsyncExitStack() as stack:
            readers = []
            for _ in range(4):
                c = await stack.enter_async_context(_client(mail))
                r = await stack.enter_async_context(c.stream("GET", ALL))
                assert r.status_code == 200
                readers.append(EventReader(r))
            firsts = [await reader.next() for reader in readers]
            await mail.send("alice@example.com", "to every process")
            for first, reader in zip(firsts, readers, strict=True):
                event = await reader.next()
                before = first.data["changed"][principal.id]["Email"]
                assert event.data["changed"][principal.id]["Email"] != before
    finally:
        await node.stop()


@given(st.text(max_size=200))
def test_a_foreign_last_event_id_is_ignored(text: str) -> None:
    """Any Last-Event-ID / pushState a client sends decodes to states or to None."""
    states = decode_token(text)
    assert states is None or all(isinstance(v, str) for v in states.values())


def test_tokens_round_trip() -> None:
    states = {"Email": "12", "Identity": "3", "Quota": "o10.0"}
    assert decode_token(encode_token(states)) == states


async def test_a_vacation_response_change_is_pushed(tmp_path: Path) -> None:
    """RFC 8621 section 8: VacationResponse is a data type with a state; its change is
    pushed with the state VacationResponse/get then answers."""
    async with mail_node(tmp_path) as mail, _client(mail) as c:
        alice = mail.ids["alice"]
        async with c.stream("GET", "/eventsource/?types=VacationResponse&closeafter=state"
                                   "&ping=0") as r:
            events = EventReader(r)
            made = await c.post("/jmap/api", json={
                "using": [CORE, VACATION], "methodCalls": [["VacationResponse/set", {
                    "accountId": alice, "update": {"singleton": {"isEnabled": True}}}, "0"]]})
            assert made.json()["methodResponses"][0][0] == "VacationResponse/set"
            event = await events.next()
            got = await c.post("/jmap/api", json={
                "using": [CORE, VACATION], "methodCalls": [["VacationResponse/get", {
                    "accountId": alice}, "0"]]})
            state = got.json()["methodResponses"][0][1]["state"]
            assert event.data["changed"][alice] == {"VacationResponse": state}
