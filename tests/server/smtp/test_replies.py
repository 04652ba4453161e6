"""Enhanced status codes on every reply (RFC 2034 section 3) and the Received field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.smtp import trace
from server.smtp.replies import enhance


@pytest.mark.parametrize("raw, enhanced", [
    ("250 OK", "250 2.0.0 OK"),
    ("500 Command line too long", "500 5.5.2 Line too long"),
    ("503 Error: send HELO first", "503 5.5.1 send HELO first"),
    ('500 Error: command "FOO" not recognized', '500 5.5.2 command "FOO" not recognized'),
    ("502 5.5.1 Too many unrecognized commands, goodbye.",
     "502 5.5.1 Too many unrecognized commands, goodbye."),
    ("354 End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>"),
    ("334 VXNlcm5hbWU6", "334 VXNlcm5hbWU6"),
    ("421 closing", "421 4.7.0 closing"),
])
def test_enhance(raw: str, enhanced: str) -> None:
    assert enhance(raw) == enhanced


def test_received_field() -> None:
    field = trace.received(helo="client.test", peer_ip="::ffff:192.0.2.1", by="mx.test",
                           protocol=trace.with_protocol(esmtp=True, tls=True,
                                                        authenticated=True, utf8=False),
                           id="abc", recipient="a@b.c",
                           when=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), tls="TLSv1.3")
    assert field == (b"Received: from client.test ([192.0.2.1])\r\n"
                     b"\tby mx.test (fdbmail) with ESMTPSA (TLSv1.3)\r\n"
                     b"\tid abc for <a@b.c>;\r\n\tFri, 02 Jan 2026 03:04:05 +0000\r\n")
    assert trace.address_literal("2001:db8::1") == "[IPv6:2001:db8::1]"
    assert b"from unknown " in trace.received(
        helo="bad helo(", peer_ip="1.2.3.4", by="m", protocol="SMTP", id="i", recipient=None,
        when=datetime(2026, 1, 1, tzinfo=UTC))
