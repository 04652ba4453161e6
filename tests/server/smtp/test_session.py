"""Session behaviour on the MX listener: scripted bytes in, replies out."""

from __future__ import annotations

import asyncio

import pytest

from server.smtp.wire.data import dot_stuff
from tests.server.smtp.conftest import StartHarness
from tests.support.waiting import until

MSG = b"From: x@remote.test\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nHello\r\n"


async def test_greeting_and_ehlo_keywords(start: StartHarness) -> None:
    h = await start(max_message_size=1000)
    c = await h.connect(greet=False)
    assert (await c.reply()).startswith("220 mx.test ESMTP")
    lines = (await c.cmd("EHLO client.test")).split("\n")
    assert lines[0] == "250-mx.test"
    keywords = {line[4:] for line in lines[1:]}
    assert {"PIPELINING", "SIZE 1000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
            "STARTTLS"} <= keywords
    assert not any(k.startswith("AUTH") for k in keywords)     # MX offers no AUTH
    assert lines[-1].startswith("250 ")


async def test_plain_delivery_adds_trace_fields(start: StartHarness) -> None:
    h = await start()
    c = await h.connect()
    assert (await c.cmd("EHLO client.test")).startswith("250")
    assert await c.cmd("MAIL FROM:<x@remote.test>") == "250 2.1.0 Sender OK"
    assert await c.cmd("RCPT TO:<alice@example.com>") == "250 2.1.5 Recipient OK"
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(MSG))
    assert (await c.reply()).startswith("250 2.0.0")
    [raw] = h.delivery.stored["alice"]
    assert raw.startswith(b"Return-Path: <x@remote.test>\r\nReceived: from client.test "
                          b"([127.0.0.1])\r\n\tby mx.test (fdbmail) with ESMTP\r\n\tid ")
    assert b" for <alice@example.com>;\r\n\t" in raw
    assert raw.endswith(MSG)
    assert await c.cmd("QUIT") == "221 2.0.0 Bye"


async def test_null_reverse_path_is_accepted(start: StartHarness) -> None:
    h = await start()
    c = await h.ehlo()
    assert (await c.cmd("MAIL FROM:<>")).startswith("250")
    assert (await c.cmd("RCPT TO:<bob@example.com>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(MSG))
    assert (await c.reply()).startswith("250")
    assert h.delivery.stored["bob"][0].startswith(b"Return-Path: <>\r\n")


async def test_unknown_user_relay_and_group(start: StartHarness) -> None:
    h = await start()
    c = await h.ehlo()
    assert (await c.cmd("MAIL FROM:<x@remote.test>")).startswith("250")
    assert await c.cmd("RCPT TO:<nobody@example.com>") == "550 5.1.1 No such user here"
    assert await c.cmd("RCPT TO:<victim@elsewhere.test>") == "554 5.7.1 Relay access denied"
    assert (await c.cmd("RCPT TO:<team@example.com>")).startswith("250")
    assert (await c.cmd("RCPT TO:<alice+news@example.com>")).startswith("250")
    assert (await c.cmd("RCPT TO:<A.Liddell@Example.COM>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(MSG))
    assert (await c.reply()).startswith("250")
    # alice is in the group and named thrice: she gets the message once, in one call.
    assert len(h.delivery.stored["alice"]) == 1 and len(h.delivery.stored["bob"]) == 1
    assert len(h.delivery.calls) == 1
    assert b" for <" not in h.delivery.stored["alice"][0]   # no "for" with several recipients


async def test_sequence_errors_and_session_continues(start: StartHarness) -> None:
    h = await start()
    c = await h.connect()
    assert await c.cmd("MAIL FROM:<x@remote.test>") == "503 5.5.1 send HELO first"
    assert (await c.cmd("EHLO client.test")).startswith("250")
    assert await c.cmd("RCPT TO:<alice@example.com>") == "503 5.5.1 Need MAIL command first"
    assert await c.cmd("DATA") == "503 5.5.1 Need MAIL command first"
    assert (await c.cmd("FOO bar")).startswith("500 5.5.2")
    assert (await c.cmd("MAIL TO:<x@remote.test>")).startswith("501 5.5.2")
    assert (await c.cmd("MAIL FROM:<x@@remote>")).startswith("501 5.1.7")
    assert (await c.cmd("MAIL FROM:<x@remote.test>")).startswith("250")
    assert await c.cmd("MAIL FROM:<y@remote.test>") == "503 5.5.1 Nested MAIL command"
    assert await c.cmd("DATA") == "554 5.5.1 No valid recipients"
    assert await c.cmd("RSET") == "250 2.0.0 OK"
    assert await c.cmd("NOOP") == "250 2.0.0 OK"
    assert (await c.cmd("VRFY alice")).startswith("252 2.5.0")
    assert (await c.cmd("MAIL FROM:<x@remote.test> FOO=1")).startswith("555 5.5.4")
    assert (await c.cmd("MAIL FROM:<x@remote.test> BODY=BINARY")).startswith("501 5.5.4")
    assert (await c.cmd("MAIL FROM:<x@remote.test> BODY=8BITMIME AUTH=<>")).startswith("250")
    assert (await c.cmd("RCPT TO:<alice@example.com> XFOO=1")).startswith("555 5.5.4")


async def test_too_many_errors_close_the_connection(start: StartHarness) -> None:
    h = await start(max_bad_commands=3)
    c = await h.ehlo()
    for _ in range(2):
        assert (await c.cmd("MAIL FROM:bad")).startswith("501")
    assert (await c.cmd("MAIL FROM:bad")).startswith("501")
    assert (await c.reply()).startswith("421 4.7.0")
    assert await c.closed()


async def test_command_line_limits(start: StartHarness) -> None:
    h = await start()
    c = await h.ehlo()
    assert await c.cmd("NOOP " + "x" * 600) == "500 5.5.2 Line too long"
    assert await c.cmd("NOOP " + "x" * 100_000) == "500 5.5.2 Line too long"
    long_local = "a" * 64
    assert (await c.cmd(f"MAIL FROM:<{long_local}@remote.test> SIZE=10 BODY=8BITMIME "
                        + "AUTH=" + "b" * 400)).startswith("250")
    assert (await c.cmd("NOOP")).startswith("250")                # the session goes on


async def test_max_recipients(start: StartHarness) -> None:
    h = await start(max_recipients=2)
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    assert (await c.cmd("RCPT TO:<alice@example.com>")).startswith("250")
    assert (await c.cmd("RCPT TO:<bob@example.com>")).startswith("250")
    assert await c.cmd("RCPT TO:<team@example.com>") == "452 4.5.3 Too many recipients"


async def test_size_limits(start: StartHarness) -> None:
    h = await start(max_message_size=1000)
    c = await h.ehlo()
    assert (await c.cmd("MAIL FROM:<x@remote.test> SIZE=1001")).startswith("552 5.3.4")
    assert (await c.cmd("MAIL FROM:<x@remote.test> SIZE=900")).startswith("250")
    assert (await c.cmd("RCPT TO:<alice@example.com>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(MSG + b"x" * 2000 + b"\r\n"))
    assert (await c.reply()).startswith("552 5.3.4")
    assert h.delivery.calls == []
    # the session goes on and a message within the limit passes
    assert (await c.cmd("MAIL FROM:<x@remote.test>")).startswith("250")
    assert (await c.cmd("RCPT TO:<alice@example.com>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(MSG))
    assert (await c.reply()).startswith("250")


async def test_long_data_line_policy(start: StartHarness) -> None:
    h = await start(max_line_length=1000)
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(MSG + b"y" * 999 + b"\r\n"))
    assert (await c.reply()).startswith("500 5.5.2 Line too long")
    assert h.delivery.calls == []


async def test_pipelined_transactions(start: StartHarness) -> None:
    h = await start()
    c = await h.ehlo()
    batch = b""
    for rcpt in ("alice", "bob", "nobody"):
        batch += (b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<" + rcpt.encode()
                  + b"@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
                  + dot_stuff(MSG + rcpt.encode() + b"\r\n"))
    await c.send(batch + b"QUIT\r\n")
    replies = [await c.reply() for _ in range(3 * 5 + 1)]
    codes = [r[:3] for r in replies]
    assert codes == ["250", "250", "250", "354", "250"] * 2 + \
        ["250", "550", "250", "354", "250", "221"]
    assert len(h.delivery.stored["alice"]) == 1
    assert len(h.delivery.stored["bob"]) == 3


async def test_smtputf8(start: StartHarness) -> None:
    h = await start()
    c = await h.ehlo()
    assert (await c.cmd("MAIL FROM:<jürgen@remote.test>")).startswith("553 5.6.7")
    assert (await c.cmd("MAIL FROM:<jürgen@remote.test> SMTPUTF8")).startswith("250")
    assert (await c.cmd("RCPT TO:<jörg@bücher.example>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    body = "From: jürgen@remote.test\r\nSubject: grüße\r\n\r\nÄpfel\r\n".encode()
    await c.send(dot_stuff(body))
    assert (await c.reply()).startswith("250")
    raw = h.delivery.stored["jörg"][0]
    assert b"with UTF8SMTP" in raw and raw.endswith(body)


async def test_eight_bit_body(start: StartHarness) -> None:
    h = await start()
    c = await h.ehlo()
    assert (await c.cmd("MAIL FROM:<x@remote.test> BODY=8BITMIME")).startswith("250")
    assert (await c.cmd("RCPT TO:<bob@example.com>")).startswith("250")
    await c.cmd("DATA")
    body = b"Subject: 8bit\r\nContent-Type: text/plain; charset=latin-1\r\n\r\n\xe9t\xe9\r\n"
    await c.send(dot_stuff(body))
    assert (await c.reply()).startswith("250")
    assert h.delivery.stored["bob"][0].endswith(body)


async def test_disconnect_mid_data_stores_nothing(start: StartHarness) -> None:
    h = await start()
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(MSG + b"more text without the end\r\n")
    await c.close()
    await until(lambda: h.service.limits.open_connections == 0,
                what="the server counting the connection closed")
    assert h.delivery.calls == [] and h.delivery.stored == {}


async def test_idle_timeout_closes(start: StartHarness) -> None:
    h = await start(timeout=0.3)
    c = await h.ehlo()
    assert await c.closed()


async def test_commands_move_the_idle_deadline_without_new_timers(
        start: StartHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiosmtpd resets the idle timer on every command (RFC 5321 section 4.5.3.2.7:
    the server timeout is per command); the session moves a deadline instead of
    scheduling a timer per command (that idle connections still time out, in DATA
    too, is tested above and below)."""
    from server.smtp.session import SmtpSession

    h = await start(timeout=600.0)     # the first timer cannot fire during the test
    c = await h.ehlo()
    loop = asyncio.get_running_loop()
    scheduled: list[object] = []
    call_later = loop.call_later

    def counting(delay: float, callback, *args):  # type: ignore[no-untyped-def]
        if isinstance(getattr(callback, "__self__", None), SmtpSession):
            scheduled.append(callback)
        return call_later(delay, callback, *args)

    monkeypatch.setattr(loop, "call_later", counting)
    for _ in range(20):
        assert (await c.cmd("NOOP")).startswith("250")
    assert scheduled == []


async def test_data_timeout_closes_without_storing(start: StartHarness) -> None:
    h = await start(timeout=0.3, data_timeout=0.5)
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    await c.cmd("DATA")
    closed_early = False
    for _ in range(10):                 # keeps sending, never ends the data
        try:
            await c.send(b"slow line\r\n")
        except ConnectionError:
            closed_early = True
            break
        await asyncio.sleep(0.1)
    assert closed_early or await c.closed()
    assert h.delivery.calls == []


async def test_directory_failure_is_temporary(start: StartHarness) -> None:
    h = await start()
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    h.directory.fail = True
    assert (await c.cmd("RCPT TO:<alice@example.com>")).startswith("451 4.4.3")


async def test_postmaster_without_domain(start: StartHarness) -> None:
    h = await start()
    h.directory.add("pm", "postmaster@bücher.example")
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    assert (await c.cmd("RCPT TO:<Postmaster>")).startswith("250")


async def test_slow_but_steady_data_within_data_timeout(start: StartHarness) -> None:
    h = await start(timeout=0.3, data_timeout=5.0)
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    await c.cmd("DATA")
    await c.send(MSG)
    for _ in range(8):      # 0.8 s in all, more than the idle timeout, never idle for long
        await c.send(b"slow line\r\n")
        await asyncio.sleep(0.1)
    await c.send(b".\r\n")
    assert (await c.reply()).startswith("250")


async def test_log_lines_carry_the_connection_id_and_no_secrets(
        start: StartHarness, caplog: pytest.LogCaptureFixture) -> None:
    import base64
    import logging

    from server.logs import connection_id

    seen: list[tuple[str, str | None, str]] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.name, getattr(record, "conn", None) or connection_id.get(),
                         record.getMessage()))

    spy = Spy(level=logging.DEBUG)
    for name in ("server.smtp", "mail.log"):
        logging.getLogger(name).addHandler(spy)
    caplog.set_level(logging.DEBUG)
    try:
        h = await start(auth_require_tls=False)
        c = await h.ehlo("submission")
        token = base64.b64encode(b"\0alice\0hunter2-secret").decode()
        assert (await c.cmd(f"AUTH PLAIN {token}")).startswith("535")
        assert await c.cmd("AUTH LOGIN") == "334 " + base64.b64encode(b"Username:").decode()
        await c.cmd(base64.b64encode(b"alice").decode())
        assert (await c.cmd(base64.b64encode(b"hunter2-secret").decode())).startswith("535")
        await c.cmd("QUIT")
        await c.closed()
        await asyncio.sleep(0.05)
    finally:
        for name in ("server.smtp", "mail.log"):
            logging.getLogger(name).removeHandler(spy)
    conn_lines = [s for s in seen if s[0] != "server.smtp.listener"]
    assert conn_lines and all(conn and conn.startswith("smtp-") for _, conn, _ in conn_lines)
    assert len({conn for _, conn, _ in conn_lines}) == 1
    secret_b64 = base64.b64encode(b"hunter2-secret").decode()
    for _, _, text in seen:
        assert "hunter2" not in text and token not in text and secret_b64 not in text


@pytest.mark.parametrize("rcpt, code", [
    ("<@example.com:victim@remote.test>", "554 5.7.1"),       # source route: dropped
    ("<victim%remote.test@example.com>", "550 5.1.1"),        # percent hack: a local name
    ("<victim@remote.test@example.com>", "501 5.1.3"),
    ('<"victim@remote.test"@example.com>', "550 5.1.1"),
    ("<victim@[127.0.0.1]>", "554 5.7.1"),
    ("<victim@example.com.>", "501 5.1.3"),
    ("<victim@remote.test> ", "554 5.7.1"),
])
async def test_no_relay_through_address_tricks(start: StartHarness, rcpt: str,
                                              code: str) -> None:
    h = await start()
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    assert (await c.cmd(f"RCPT TO:{rcpt}")).startswith(code)


async def test_pipelined_replies_are_not_held_back(start: StartHarness) -> None:
    """Replies wait only while whole commands are pending (RFC 2920 section 3.2): a
    half-sent next command does not hold back the reply to the previous one."""
    h = await start()
    c = await h.ehlo()
    await c.send(b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@exa")
    assert (await c.reply()).startswith("250 2.1.0")
    await c.send(b"mple.com>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<bob@example.com>\r\n"
                 b"DATA\r\n")
    assert [(await c.reply())[:3] for _ in range(4)] == ["250", "550", "250", "354"]
    await c.send(dot_stuff(MSG) + b"QUIT\r\n")
    assert (await c.reply()).startswith("250 2.0.0")
    assert (await c.reply()).startswith("221")


@pytest.mark.parametrize("pieces", [
    [MSG, b".\r\n"],                                   # the terminator in a packet of its own
    [MSG[:-1], b"\n", b".", b"\r", b"\n"],             # CRLF "." CRLF split octet by octet
    [MSG[:-2], b"\r\n.", b"\r\n"],
    [b"\r\n", b".\r\n"],                               # an empty line, then the end
    [b".\r\n"],                                        # an empty message
    [b"..x\r\n", b"\r\n.", b".\r\n", b".\r\n"],        # dot-stuffed lines at every boundary
])
async def test_data_ends_at_its_terminator_however_it_arrives(
        start: StartHarness, pieces: list[bytes]) -> None:
    """DATA is read in large pieces, never past CRLF "." CRLF: the next command, sent
    right behind it (RFC 2920), is read as a command, not as message text."""
    h = await start()
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    assert (await c.cmd("DATA")).startswith("354")
    for piece in pieces[:-1]:
        await c.send(piece)
        await asyncio.sleep(0.02)
    await c.send(pieces[-1] + b"MAIL FROM:<y@remote.test>\r\n")
    assert (await c.reply()).startswith("250 2.0.0")
    assert await c.reply() == "250 2.1.0 Sender OK"
    [raw] = h.delivery.stored["alice"]
    sent = b"".join(pieces)
    body = sent[: sent.index(b"\r\n.\r\n") + 2] if not sent.startswith(b".\r\n") else b""
    assert raw.endswith(body.replace(b"\r\n..", b"\r\n.").removeprefix(b"."))
