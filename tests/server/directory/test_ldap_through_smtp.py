"""A node on LDAP: a password or group change made in slapd shows at the next
SMTP AUTH and RCPT, with no restart (issue: the directory is never copied)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable

import ldap3
import pytest

from fdb_layers.engine.run import transact
from fdb_layers.mail.mailboxes import find_role
from fdb_layers.mail.queries import list_messages
from server.node.node import Node
from server.config import Config
from tests.support.slapd import Slapd

from .conftest import GROUPS, LDAP_PASSWORDS, PEOPLE, _ssha


@pytest.fixture
async def node(ldap_config: Callable[..., Config]) -> AsyncIterator[Node]:
    config = ldap_config().with_overrides({
        "server": {"http_listen": "127.0.0.1:0"},
        "imap": {"listen": "127.0.0.1:0", "tls_listen": "127.0.0.1:0"},
 "smtp": {"mx_listen": "127.0.0.1:0", "submission_listen": "127.0.0.1:0",
                 "submissions_listen": "127.0.0.1:0"},
    })
    n = Node(config)
    await n.start()
    try:
        yield n
    finally:
        await n.stop()


def _login(port: int, user: str, password: str) -> int:
    """The reply code of AUTH on the submission port, after STARTTLS."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the node's generated self-signed certificate
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.starttls(context=context)
        try:
            return client.login(user, password)[0]
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code


def _send(port: int, rcpt: str, n: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("someone@remote.test", [rcpt],
                        f"Message-ID: <{n}@remote.test>\r\nSubject: to {rcpt}\r\n\r\n"
                        "hello\r\n".encode())


async def _inbox_size(node: Node, login: str) -> int:
    assert node.directory is not None and node.engine is not None
    principal = await node.directory.get_principal(login)
    assert principal is not None

    async def count(tr):  # type: ignore[no-untyped-def]
        inbox = await find_role(tr, principal.id, "inbox")
        return 0 if inbox is None else len(await list_messages(tr, principal.id, inbox))

    return int(await transact(node.engine, count))


async def test_password_and_group_changes_show_at_next_auth_and_rcpt(
        slapd: Slapd, node: Node) -> None:
    assert node.acceptor is not None
    submission, mx = node.ports["submission"], node.ports["mx"]
    frank, group = f"uid=frank,{PEOPLE}", f"cn=movers,{GROUPS}"
    admin = slapd.admin()
    try:
        assert await asyncio.to_thread(_login, submission, "frank", LDAP_PASSWORDS["frank"]) == 235
        admin.modify(frank, {"userPassword": [(ldap3.MODIFY_REPLACE, [_ssha("frank-new")])]})
        assert await asyncio.to_thread(_login, submission, "frank", LDAP_PASSWORDS["frank"]) == 535
        assert await asyncio.to_thread(_login, submission, "frank", "frank-new") == 235

        await asyncio.to_thread(_send, mx, "movers@example.test", 1)
        assert await _inbox_size(node, "frank") == 0
        admin.modify(group, {"member": [(ldap3.MODIFY_ADD, [frank])]})
        await asyncio.to_thread(_send, mx, "movers@example.test", 2)
        assert await _inbox_size(node, "frank") == 1
        assert await _inbox_size(node, "alice") == 2
    finally:
        admin.modify(frank, {"userPassword": [(ldap3.MODIFY_REPLACE,
                                               [_ssha(LDAP_PASSWORDS["frank"])])]})
        admin.modify(group, {"member": [(ldap3.MODIFY_REPLACE, [f"uid=alice,{PEOPLE}"])]})
        admin.unbind()
