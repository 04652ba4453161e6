"""Shared by the IDLE / untagged-update / CONDSTORE / QRESYNC tests: a byte-level client,
mail delivered by SMTP, and changes made by "another session" through the mail layer
(what another IMAP session, JMAP or a delivery does to the store)."""

from __future__ import annotations

import smtplib
import socket

from fdb_layers.mail import expunge_messages, find_mailbox, store_keywords, transact
from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context

MESSAGE = (b"From: someone@remote.test\r\nTo: alice@example.test\r\nSubject: hello %d\r\n"
           b"Message-ID: <sync%d@remote.test>\r\n\r\nHi!\r\n")


class Raw:
    """Lines in, lines out, over implicit TLS, logged in as alice."""

    def __init__(self, node: Node) -> None:
        sock = socket.create_connection(("127.0.0.1", node.ports["imaps"]), timeout=30)
        self.sock = tls_client_context().wrap_socket(sock)
        self.file = self.sock.makefile("rb")
        assert self.line().startswith(b"* OK")
        self.command(b'L LOGIN alice "%s"\r\n' % PASSWORD.encode())

    def line(self) -> bytes:
        line = self.file.readline()
        assert line
        return line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, data: bytes) -> list[bytes]:
        """Send a command; its lines up to and with the tagged answer."""
        tag = data.split(b" ", 1)[0]
        self.send(data)
        out = []
        while True:
            out.append(self.line())
            if out[-1].startswith(tag + b" "):
                assert out[-1].startswith(tag + b" OK"), out
                return out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def untagged(lines: list[bytes]) -> list[bytes]:
    return [x for x in lines if x.startswith(b"* ")]


def deliver(node: Node, *numbers: int) -> None:
    with smtplib.SMTP("127.0.0.1", node.ports["mx"], timeout=30) as s:
        for i in numbers:
            s.sendmail("someone@remote.test", ["alice@example.test"], MESSAGE % (i, i))


async def inbox(node: Node) -> tuple[str, str]:
    """(account id, INBOX id) of alice."""
    assert node.directory is not None and node.engine is not None
    principal = await node.directory.get_principal("alice")
    assert principal is not None
    box = await transact(node.engine, find_mailbox, principal.id, "INBOX")
    return principal.id, box.id


async def other_stores(node: Node, uids: list[int], *, add: tuple[str, ...] = (),
                       remove: tuple[str, ...] = ()) -> None:
    account, box = await inbox(node)
    assert node.engine is not None
    await transact(node.engine, store_keywords, account, box, uids, add=add, remove=remove)


async def other_expunges(node: Node, uids: list[int]) -> None:
    account, box = await inbox(node)
    assert node.engine is not None
    await transact(node.engine, expunge_messages, account, box, uids=uids, only_deleted=False,
                   op_id=None)
