"""Any-state and not-authenticated commands (RFC 9051 sections 6.1, 6.2): greeting,
CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN, AUTHENTICATE PLAIN with SASL-IR (RFC 4959),
ENABLE (RFC 5161), ID (RFC 2971), NAMESPACE (RFC 2342), and commands in the wrong state."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import socket
from collections.abc import Callable

import pytest

from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context


class Raw:
    """A byte-level client: send lines, read lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    def line(self) -> bytes:
        return self.file.readline()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, data: bytes) -> list[bytes]:
        """Send a command; lines up to its tagged answer."""
        tag = data.split(b" ", 1)[0]
        self.send(data)
        out = []
        while True:
            line = self.line()
            assert line, out
            out.append(line)
            if line.startswith(tag + b" "):
                return out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def raw_plain(node: Node) -> Raw:
    sock = socket.create_connection(("127.0.0.1", node.ports["imap"]), timeout=30)
    return Raw(sock)


def raw_tls(node: Node) -> Raw:
    sock = socket.create_connection(("127.0.0.1", node.ports["imaps"]), timeout=30)
    return Raw(tls_client_context().wrap_socket(sock))


def _caps(line: bytes) -> set[str]:
    return set(line.decode().split("[CAPABILITY ", 1)[1].split("]", 1)[0].split())


async def test_greeting_advertises_starttls_and_logindisabled_before_tls(node: Node) -> None:
    def run() -> None:
        c = raw_plain(node)
        greeting = c.line()
        assert greeting.startswith(b"* OK [CAPABILITY ")
        caps = _caps(greeting)
        assert {"IMAP4rev1", "IMAP4rev2", "STARTTLS", "LOGINDISABLED"} <= caps
        assert not any(cap.startswith("AUTH=") for cap in caps)   # RFC 9051 section 6.2.3
        # LOGIN before TLS is refused (NO [PRIVACYREQUIRED]), not tried
        out = c.command(b'a1 LOGIN alice "correct horse"\r\n')
        assert out[-1].startswith(b"a1 NO [PRIVACYREQUIRED]")
        out = c.command(b"a2 LOGOUT\r\n")
        assert out[0].startswith(b"* BYE") and out[-1].startswith(b"a2 OK")
        c.close()
    await asyncio.to_thread(run)


async def test_starttls_then_login_with_imaplib(node: Node) -> None:
    def run() -> None:
        client = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=30)
        client.starttls(ssl_context=tls_client_context())
        assert "AUTH=PLAIN" in client.capabilities and "STARTTLS" not in client.capabilities
        assert "LOGINDISABLED" not in client.capabilities
        typ, _ = client.login("alice", PASSWORD)
        assert typ == "OK"
        typ, data = client.noop()
        assert typ == "OK"
        client.logout()
    await asyncio.to_thread(run)


async def test_starttls_drops_what_was_pipelined_before_the_handshake(node: Node) -> None:
    def run() -> None:
        sock = socket.create_connection(("127.0.0.1", node.ports["imap"]), timeout=30)
        c = Raw(sock)
        c.line()
        # an injected command after STARTTLS in the same packet must not run (RFC 9051 6.2.1)
        c.send(b"a1 STARTTLS\r\na2 CAPABILITY\r\n")
        assert c.line().startswith(b"a1 OK")
        tls = tls_client_context().wrap_socket(sock)
        t = Raw(tls)
        out = t.command(b"a3 NOOP\r\n")
        assert out == [b"a3 OK NOOP completed\r\n"]
        t.close()
    await asyncio.to_thread(run)


async def test_wrong_password_is_authenticationfailed(imaps: Callable[[], imaplib.IMAP4_SSL]
                                                      ) -> None:
    def run() -> None:
        client = imaps()
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            client.login("alice", "wrong")
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            client.login("nobody", "wrong")
        assert client.login("alice", PASSWORD)[0] == "OK"   # the session goes on
        client.logout()
    await asyncio.to_thread(run)


async def test_authenticate_plain_with_and_without_initial_response(node: Node) -> None:
    def run() -> None:
        token = base64.b64encode(b"\0alice\0" + PASSWORD.encode())
        c = raw_tls(node)
        c.line()
        out = c.command(b"a1 AUTHENTICATE PLAIN " + token + b"\r\n")   # SASL-IR (RFC 4959)
        assert out[-1].startswith(b"a1 OK [CAPABILITY ")
        c.close()
        c = raw_tls(node)
        c.line()
        c.send(b"a1 AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ \r\n"
        c.send(base64.b64encode(b"\0alice\0wrong") + b"\r\n")
        assert c.line().startswith(b"a1 NO [AUTHENTICATIONFAILED]")
        c.send(b"a2 AUTHENTICATE PLAIN\r\n")
        assert c.line().startswith(b"+")
        c.send(b"*\r\n")                                        # cancelled: BAD (6.2.2)
        assert c.line().startswith(b"a2 BAD")
        c.send(b"a3 AUTHENTICATE PLAIN !!!\r\n")
        assert c.line().startswith(b"a3 BAD")
        c.send(b"a4 AUTHENTICATE CRAM-MD5\r\n")
        assert c.line().startswith(b"a4 NO")
        out = c.command(b"a5 AUTHENTICATE PLAIN " + token + b"\r\n")
        assert out[-1].startswith(b"a5 OK")
        c.close()
    await asyncio.to_thread(run)


async def test_commands_in_the_wrong_state_are_bad(node: Node) -> None:
    def run() -> None:
        c = raw_tls(node)
        c.line()
        for cmd in (b"SELECT INBOX", b'LIST "" "*"', b"ENABLE IMAP4rev2", b"NAMESPACE",
                    b"FETCH 1 FLAGS", b"CLOSE", b"UNSELECT", b"EXPUNGE"):
            out = c.command(b"t " + cmd + b"\r\n")
            assert out[-1].startswith(b"t BAD"), (cmd, out)
        c.command(b'l LOGIN alice "correct horse"\r\n')
        for cmd in (b'LOGIN alice "correct horse"', b"AUTHENTICATE PLAIN =", b"STARTTLS",
                    b"CLOSE", b"UNSELECT", b"FETCH 1 FLAGS", b"STORE 1 +FLAGS (\\Seen)"):
            out = c.command(b"t " + cmd + b"\r\n")
            assert out[-1].startswith(b"t BAD"), (cmd, out)
        c.command(b"s SELECT INBOX\r\n")
        out = c.command(b"t ENABLE IMAP4rev2\r\n")     # RFC 5161 3.1: authenticated state only
        assert out[-1].startswith(b"t BAD")
        c.close()
    await asyncio.to_thread(run)


async def test_enable_id_namespace(node: Node) -> None:
    def run() -> None:
        c = raw_tls(node)
        c.line()
        c.command(b'l LOGIN alice "correct horse"\r\n')
        out = c.command(b"e ENABLE IMAP4rev2 X-NOT-OFFERED\r\n")  # unknown: not listed
        assert out == [b"* ENABLED IMAP4rev2\r\n", b"e OK ENABLE completed\r\n"]
        out = c.command(b"e ENABLE IMAP4rev2\r\n")     # already on: not listed again
        assert out == [b"* ENABLED\r\n", b"e OK ENABLE completed\r\n"]
        out = c.command(b'i ID ("name" "test")\r\n')
        assert out[0].startswith(b'* ID ("name" "fdbmail"')
        out = c.command(b"n NAMESPACE\r\n")
        assert out[0] == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
        c.close()
    await asyncio.to_thread(run)


async def test_hostile_input_gets_bad_and_the_session_lives(node: Node) -> None:
    def run() -> None:
        c = raw_tls(node)
        c.line()
        c.send(b"\x00\xff garbage\r\n")
        assert b"BAD" in c.line()
        c.send(b"a1 NOSUCHCOMMAND\r\n")
        assert c.line().startswith(b"a1 BAD")
        c.send(b"a2 LOGIN {4294967296}\r\n")      # a 4 GB literal: refused, nothing allocated
        refused = c.line()
        assert refused.startswith((b"a2 BAD", b"a2 NO")), refused
        c.send(b"a3 " + b"x" * 200_000 + b"\r\n")  # over max_line
        assert b"BAD" in c.line()
        out = c.command(b"a4 NOOP\r\n")
        assert out[-1] == b"a4 OK NOOP completed\r\n"
        c.close()
    await asyncio.to_thread(run)


async def test_tls_port_handshake_failure_leaves_the_node_serving(node: Node) -> None:
    def run() -> None:
        sock = socket.create_connection(("127.0.0.1", node.ports["imaps"]), timeout=30)
        sock.sendall(b"a1 CAPABILITY\r\n")         # plaintext on the TLS port
        sock.settimeout(30)
        try:
            while sock.recv(1024):
                pass
        except OSError:
            pass
        sock.close()
        c = raw_tls(node)
        assert c.line().startswith(b"* OK")
        c.close()
    await asyncio.to_thread(run)

