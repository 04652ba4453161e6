"""Submission: STARTTLS, implicit TLS, AUTH PLAIN/LOGIN, sender ownership, no relaying."""

from __future__ import annotations

import base64
import logging

import pytest

from server.smtp.wire.data import dot_stuff
from tests.server.smtp.conftest import StartHarness, client_tls


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def plain(login: str, secret: str, authz: str = "") -> str:
    return "AUTH PLAIN " + b64(f"{authz}\0{login}\0{secret}")


async def test_submission_needs_tls_then_auth(start: StartHarness) -> None:
    h = await start()
    c = await h.connect("submission")
    ehlo = await c.cmd("EHLO client.test")
    assert "STARTTLS" in ehlo and "AUTH" not in ehlo           # not offered in clear text
    assert (await c.cmd(plain("alice", "secret"))).startswith("538 5.7.11")
    assert await c.cmd("MAIL FROM:<alice@example.com>") == "530 5.7.0 Authentication required"
    await c.starttls(client_tls())
    ehlo = await c.cmd("EHLO client.test")
    assert "AUTH LOGIN PLAIN" in ehlo and "STARTTLS" not in ehlo
    assert await c.cmd("MAIL FROM:<alice@example.com>") == "530 5.7.0 Authentication required"
    assert await c.cmd(plain("alice", "wrong")) == \
        "535 5.7.8 Authentication credentials invalid"
    assert await c.cmd(plain("alice", "secret", authz="bob")) == \
        "535 5.7.8 Authorization identity not permitted"
    assert await c.cmd(plain("alice", "secret")) == "235 2.7.0 Authentication successful"
    assert (await c.cmd(plain("alice", "secret"))).startswith("503 5.5.1")


async def test_auth_login_and_sender_ownership(start: StartHarness) -> None:
    h = await start()
    c = await h.ehlo("submission", tls_=True)
    assert await c.cmd("AUTH LOGIN") == "334 " + b64("Username:")
    assert await c.cmd(b64("alice")) == "334 " + b64("Password:")
    assert (await c.cmd(b64("secret"))).startswith("235")
    assert await c.cmd("MAIL FROM:<bob@example.com>") == \
        "553 5.7.1 Sender address not owned by the authenticated user"
    assert (await c.cmd("MAIL FROM:<>")).startswith("553 5.7.1")
    assert (await c.cmd("MAIL FROM:<A.Liddell@example.com>")).startswith("250")   # an alias
    assert (await c.cmd("RCPT TO:<someone@remote.test>")).startswith(
        "451 4.3.2 Outbound delivery not available yet")
    assert (await c.cmd("RCPT TO:<bob@example.com>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(b"Subject: hi\r\n\r\nhello\r\n"))
    assert (await c.reply()).startswith("250")
    assert b"with ESMTPSA (TLSv1.3)" in h.delivery.stored["bob"][0]
    assert (await c.cmd("MAIL FROM:<alice+lists@example.com>")).startswith("250")


async def test_implicit_tls_submission(start: StartHarness) -> None:
    h = await start()
    c = await h.connect("submissions")
    ehlo = await c.cmd("EHLO client.test")
    assert "AUTH LOGIN PLAIN" in ehlo and "STARTTLS" not in ehlo
    assert (await c.cmd(plain("bob", "secret"))).startswith("235")
    assert (await c.cmd("MAIL FROM:<bob@example.com>")).startswith("250")


async def test_auth_without_tls_when_configured(start: StartHarness) -> None:
    h = await start(auth_require_tls=False)
    c = await h.ehlo("submission")
    assert (await c.cmd(plain("bob", "secret"))).startswith("235")


async def test_mx_has_no_auth_and_is_no_open_relay(start: StartHarness) -> None:
    h = await start()
    c = await h.ehlo("mx", tls_=True)
    assert (await c.cmd(plain("bob", "secret"))).startswith("502 5.5.1")
    await c.cmd("MAIL FROM:<bob@example.com>")
    assert await c.cmd("RCPT TO:<x@remote.test>") == "554 5.7.1 Relay access denied"


async def test_auth_failures_are_rate_limited_per_ip(start: StartHarness) -> None:
    h = await start(auth_failures_per_ip=3, auth_require_tls=False)
    c = await h.ehlo("submission")
    for _ in range(3):
        assert (await c.cmd(plain("alice", "nope"))).startswith("535")
    assert (await c.cmd(plain("alice", "secret"))).startswith("421 4.7.0")
    assert await c.closed()
    c = await h.ehlo("submission")                     # a new connection is refused too
    assert (await c.cmd(plain("alice", "secret"))).startswith("421 4.7.0")


async def test_malformed_sasl(start: StartHarness) -> None:
    h = await start(auth_require_tls=False)
    c = await h.ehlo("submission")
    assert (await c.cmd("AUTH PLAIN !!!")).startswith("501 5.5.2")
    assert (await c.cmd("AUTH PLAIN " + b64("no-nuls"))).startswith("501 5.5.2")
    assert (await c.cmd("AUTH PLAIN")) == "334 "
    assert (await c.cmd("*")).startswith("501")
    assert (await c.cmd("AUTH CRAM-MD5")).startswith("504 5.5.4")
    assert (await c.cmd(plain("bob", "secret"))).startswith("235")


async def test_directory_down_during_auth(start: StartHarness) -> None:
    h = await start(auth_require_tls=False)
    c = await h.ehlo("submission")
    h.directory.fail = True
    assert await c.cmd(plain("bob", "secret")) == "454 4.7.0 Temporary authentication failure"


async def test_starttls_discards_pipelined_plaintext(start: StartHarness) -> None:
    """RFC 3207 section 4.2 (CVE-2011-0411): commands sent with STARTTLS in clear text
    must not be run inside the TLS session."""
    h = await start()
    c = await h.connect("submission")
    await c.cmd("EHLO client.test")
    await c.send(b"STARTTLS\r\nNOOP\r\n")
    assert (await c.reply()).startswith("220")
    await c.writer.start_tls(client_tls(), server_hostname="localhost")
    assert (await c.cmd("EHLO again.test")).startswith("250")     # not a NOOP reply first


async def _submit(c: object, body: bytes) -> str:
    from tests.server.smtp.conftest import Client
    assert isinstance(c, Client)
    assert (await c.cmd("MAIL FROM:<alice@example.com>")).startswith("250")
    assert (await c.cmd("RCPT TO:<bob@example.com>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(body))
    return await c.reply()


async def test_header_from_must_be_the_authenticated_users(start: StartHarness) -> None:
    """Issue 10, item 14: From:/Sender: spoofing on submission."""
    h = await start()
    c = await h.ehlo("submissions", login=("alice", "secret"))
    refused = "550 5.7.1 From: or Sender: address not owned by the authenticated user"
    for header in (b"From: Bob <bob@example.com>\r\n",
                   b"From: alice@example.com\r\nSender: bob@example.com\r\n",
                   b"From: alice@example.com\r\nFrom: BOB@example.com\r\n",
                   b"From: alice@example.com,\r\n bob@example.com\r\n",
                   b"From: bob+alice@example.com\r\n",
                   b"From: alice@example.com.evil.test\r\n"):
        assert await _submit(c, header + b"Subject: x\r\n\r\nhi\r\n") == refused, header
    assert (await _submit(c, b"From: <>\r\n\r\nhi\r\n")).startswith("550 5.7.1")
    for header in (b"From: \"Bob\" <alice@example.com>\r\n",
                   b"From: =?utf-8?q?Alice?= <A.Liddell@Example.com>\r\n",
                   b"From: alice+lists@example.com\r\nSender: alice@example.com\r\n",
                   b"Subject: no From at all\r\n"):
        assert (await _submit(c, header + b"\r\nhi\r\n")).startswith("250"), header
    assert len(h.delivery.stored["bob"]) == 4
    m = await h.ehlo("mx")                               # MX mail is not submission
    assert (await m.cmd("MAIL FROM:<carol@remote.test>")).startswith("250")
    assert (await m.cmd("RCPT TO:<bob@example.com>")).startswith("250")
    assert (await m.cmd("DATA")).startswith("354")
    await m.send(dot_stuff(b"From: alice@example.com\r\n\r\nhi\r\n"))
    assert (await m.reply()).startswith("250")


async def test_header_from_check_can_be_turned_off(start: StartHarness) -> None:
    h = await start(submission_check_from=False)
    c = await h.ehlo("submissions", login=("alice", "secret"))
    assert (await _submit(c, b"From: bob@example.com\r\n\r\nhi\r\n")).startswith("250")


async def test_authzid_of_the_same_principal_and_empty_initial_response(
        start: StartHarness) -> None:
    h = await start(auth_require_tls=False)
    c = await h.ehlo("submission")
    assert (await c.cmd("AUTH PLAIN =")).startswith("501 5.5.2")     # "=" is empty
    assert (await c.cmd(plain("alice", "secret", authz="a.liddell@example.com"))) \
        .startswith("235")                                          # her own alias


async def test_login_aborted_and_malformed(start: StartHarness) -> None:
    h = await start(auth_require_tls=False)
    c = await h.ehlo("submission")
    assert await c.cmd("AUTH LOGIN " + b64("alice")) == "334 " + b64("Password:")
    assert await c.cmd("*") == "501 5.7.0 AUTH aborted"
    assert await c.cmd("AUTH LOGIN") == "334 " + b64("Username:")
    assert (await c.cmd("not base64!")).startswith("501 5.5.2")
    assert (await c.cmd("AUTH LOGIN " + b64("bob"))).startswith("334")
    assert (await c.cmd(b64("secret"))).startswith("235")


async def test_a_login_writes_no_library_deprecation_warning(
        start: StartHarness, caplog: pytest.LogCaptureFixture) -> None:
    """aiosmtpd warns that Session.login_data is deprecated on every AUTH it completes
    (it sets that attribute itself): the node filters that one line out."""
    h = await start()
    c = await h.ehlo("submission", tls_=True)
    with caplog.at_level(logging.DEBUG):
        assert await c.cmd(plain("alice", "secret")) == "235 2.7.0 Authentication successful"
        assert (await c.cmd("MAIL FROM:<alice@example.com>")).startswith("250")
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]
