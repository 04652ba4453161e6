"""Whatever the bytes of a message, the session stays in step with the client: the data
ends at the client's CRLF "." CRLF and nowhere else, the reply is 250 or 550 5.6.0 (bare CR
or LF, RFC 5321 section 2.3.8), and the next command gets its own reply.  Hypothesis drives
a real server over a socket."""

from __future__ import annotations

import asyncio
import io
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.config import load_config
from server.smtp import start_smtp
from tests.server.smtp.conftest import FakeDelivery, FakeDirectory

TERMINATOR = b"\r\n.\r\n"
BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, FakeDelivery]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    config = load_config(None, env={}).with_overrides({
        "server": {"data_dir": str(Path(tmp_path_factory.mktemp("data")))},
        "smtp": {"mx_listen": "127.0.0.1:0", "submission_listen": "",
                 "submissions_listen": "", "mx_starttls": False,
                 "connection_rate_per_ip": 0, "max_connections_per_ip": 0}})
    directory = FakeDirectory()
    directory.add("alice", "alice@example.com")
    delivery = FakeDelivery()
    service = asyncio.run_coroutine_threadsafe(
        start_smtp(config, directory, delivery), loop).result()
    yield service.ports["mx"], delivery
    asyncio.run_coroutine_threadsafe(service.close(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def reply(f: io.BufferedIOBase) -> bytes:
    lines = b""
    while True:
        line = f.readline()
        assert line, "connection closed"
        lines += line
        if line[3:4] != b"-":
            return lines


bodies = st.lists(st.sampled_from(
    [b"\r", b"\n", b".", b"\r\n", b"text", b"..", b"\n.\n", b"\r\n.\r", b"\x00", b"\xff",
     b"MAIL FROM:<a@b>", b"QUIT"]), max_size=40).map(b"".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_session_stays_in_step(live: tuple[int, FakeDelivery], body: bytes) -> None:
    wire = b"\r\n" + body + TERMINATOR
    if wire.find(TERMINATOR) != len(wire) - len(TERMINATOR):
        body = body.replace(b"\r\n.", b"\r\n..")              # what a client would send
        if body.startswith(b"."):
            body = b"." + body
        wire = b"\r\n" + body + TERMINATOR
    if wire.find(TERMINATOR) != len(wire) - len(TERMINATOR):
        return                        # e.g. a body ending in CRLF "."; stuffing cannot help
    port, delivery = live
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        f = sock.makefile("rwb")
        assert reply(f).startswith(b"220")
        f.write(b"EHLO c\r\nMAIL FROM:<x@y.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
        f.flush()
        for code in (b"250", b"250", b"250", b"354"):
            assert reply(f).startswith(code)
        before = len(delivery.calls)
        f.write(body + TERMINATOR + b"NOOP\r\n")
        f.flush()
        answer = reply(f)
        if BARE.search(body + b"\r\n"):
            assert answer.startswith(b"550 5.6.0"), answer
            assert len(delivery.calls) == before
        else:
            assert answer.startswith(b"250 2.0.0"), answer
            assert len(delivery.calls) == before + 1
        assert reply(f) == b"250 2.0.0 OK\r\n"              # the NOOP, nothing in between
