"""NOTIFY (RFC 5465) across node processes on FoundationDB: a session on one node hears
of mail delivered and annotations set through the other, since the wake-ups go through
the store's watches (the account's modseq and its annotation counter)."""

from __future__ import annotations

import smtplib
import socket

import pytest

from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.test_cross_node_idle import nodes
from tests.server.imap.test_session import Raw
from tests.support.engines import FDB_SKIP_REASON

pytestmark = pytest.mark.skipif(FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or "")

__all__ = ["nodes"]   # the fixture: two node processes on the test cluster


def _login(port: int) -> Raw:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    c = Raw(tls_client_context().wrap_socket(sock))
    assert c.line().startswith(b"* OK")
    assert c.command(f'l LOGIN alice "{PASSWORD}"\r\n'.encode())[-1].startswith(b"l OK")
    return c


def test_events_from_the_other_node(nodes: list[dict[str, int]]) -> None:
    a, b = nodes
    listener, other = _login(b["imaps"]), _login(a["imaps"])
    try:
        out = listener.command(b"n NOTIFY SET (personal (MessageNew MessageExpunge "
                               b"MailboxMetadataChange))\r\n")
        assert out[-1].startswith(b"n OK")
        with smtplib.SMTP("127.0.0.1", a["mx"], timeout=30) as smtp:
            assert smtp.sendmail("erin@remote.test", ["alice@example.test"],
                                 b"Subject: through node a\r\n\r\nHi!\r\n") == {}
        assert listener.line() == b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2)\r\n"
        out = other.command(b'm SETMETADATA INBOX (/shared/comment "from a")\r\n')
        assert out[-1].startswith(b"m OK")
        assert listener.line() == b"* METADATA INBOX /shared/comment\r\n"
    finally:
        listener.close()
        other.close()
