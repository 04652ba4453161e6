"""server/net/listen.py: the one listen-address parser of every listener."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.net.listen import ListenAddress, bind, bind_shared, bound_address, parse_listen


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:25", ListenAddress("127.0.0.1", 25)),
    ("  mail.example.test:2525 ", ListenAddress("mail.example.test", 2525)),
    ("[::1]:587", ListenAddress("::1", 587)),
    (":465", ListenAddress("0.0.0.0", 465)),
    ("", None),
    ("   ", None),
])
def test_listen_addresses(text: str, expected: ListenAddress | None) -> None:
    assert parse_listen(text) == expected


def test_unix_sockets_only_where_the_service_allows_them() -> None:
    assert parse_listen("unix:/run/fdbmail/lmtp.sock", allow_unix=True) == \
        ListenAddress(path="/run/fdbmail/lmtp.sock")
    with pytest.raises(ValueError, match="host:port only"):
        parse_listen("unix:/run/fdbmail/lmtp.sock")
    with pytest.raises(ValueError, match="absolute path"):
        parse_listen("unix:lmtp.sock", allow_unix=True)
    with pytest.raises(ValueError, match="too long"):
        parse_listen("unix:/" + "x" * 200, allow_unix=True)


@pytest.mark.parametrize("text", ["25", "host", "host:", "host:port", "::1:25", "[::1:25",
                                  "host:99999", "a b:25", "[]:25"])
def test_bad_listen_addresses_say_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match="listen address"):
        parse_listen(text)


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    try:
        where = parse_listen(text, allow_unix=True)
    except ValueError:
        return
    if where is not None:
        assert where.is_unix or 0 <= where.port <= 65535
        assert parse_listen(str(where), allow_unix=True) == where  # round trip


def test_bind_tcp_and_unix(tmp_path: Path) -> None:
    sock = bind(ListenAddress("127.0.0.1", 0))
    try:
        where = bound_address(sock)
        assert where.host == "127.0.0.1" and where.port > 0
    finally:
        sock.close()
    path = tmp_path / "s.sock"
    for _ in range(2):  # a stale socket file left behind is replaced
        sock = bind(ListenAddress(path=str(path)))
        assert bound_address(sock) == ListenAddress(path=str(path))
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
        sock.close()


def test_accepted_tcp_connections_send_without_delay() -> None:
    """Replies written in pieces must not wait for the peer's delayed ACK (Nagle's
    algorithm, RFC 896): every accepted TCP connection has TCP_NODELAY."""
    listener = bind(ListenAddress(host="127.0.0.1", port=0))
    try:
        listener.setblocking(True)
        with socket.create_connection(("127.0.0.1", bound_address(listener).port)):
            conn, _ = listener.accept()
            with conn:
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close()


def test_shared_sockets_listen_on_one_port_and_each_gets_connections() -> None:
    """One socket per serving process on one port (SO_REUSEPORT): the kernel puts each
    connection in one socket's queue, so every process gets its share of the clients
    (30 connections over 3 sockets: all missing one socket has a chance of 3 x (2/3)^30,
    about 1 in 60,000)."""
    sockets = bind_shared(ListenAddress("127.0.0.1", 0), 3)
    try:
        port = bound_address(sockets[0]).port
        assert port > 0 and all(bound_address(s).port == port for s in sockets)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
        got = []
        for sock in sockets:
            sock.setblocking(False)
            count = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                count += 1
            got.append(count)
        for client in clients:
            client.close()
        assert sum(got) == 30 and all(got), got
    finally:
        for sock in sockets:
            sock.close()
    with pytest.raises(ValueError):
        bind_shared(ListenAddress(path="/tmp/x.sock"), 2)


def test_shared_sockets_refuse_a_port_another_node_shares() -> None:
    """A second node started on a port the first serves with SO_REUSEPORT is refused
    (EADDRINUSE) instead of joining the first's group and taking a share of its clients;
    a fixed free port still gives every socket."""
    first = bind_shared(ListenAddress("127.0.0.1", 0), 2)
    try:
        port = bound_address(first[0]).port
        with pytest.raises(OSError) as refused:
            bind_shared(ListenAddress("127.0.0.1", port), 2)
        assert refused.value.errno == errno.EADDRINUSE
    finally:
        for sock in first:
            sock.close()
    again = bind_shared(ListenAddress("127.0.0.1", port), 2)
    try:
        assert [bound_address(s).port for s in again] == [port, port]
    finally:
        for sock in again:
            sock.close()
