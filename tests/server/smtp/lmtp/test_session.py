"""LMTP sessions (RFC 2033): bytes in, bytes out, one reply per recipient after DATA."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass, field

from server.delivery import DeliveryRequest, DeliveryResult, Source

from server.smtp.wire.data import dot_stuff
from tests.server.smtp.conftest import FakeDelivery
from tests.server.smtp.lmtp.conftest import StartLmtp



@dataclass
class EnteredDelivery(FakeDelivery):
    """Says when a delivery has started."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    sources: list[Source] = field(default_factory=list)

    async def deliver(self, request: DeliveryRequest) -> list[DeliveryResult]:
        self.entered.set()
        self.sources.append(request.source)
        return await super().deliver(request)


MSG = b"From: carol@remote.test\r\nSubject: hi\r\n\r\nhello\r\n.dot\r\n"


async def test_lhlo_keywords_and_helo_refused(start_lmtp_server: StartLmtp) -> None:
    h = await start_lmtp_server()
    c = await h.connect()
    assert (await c.cmd("HELO mta.test")).startswith("500 5.5.1 Use LHLO")
    assert (await c.cmd("EHLO mta.test")).startswith("500 5.5.1 Use LHLO")
    assert await c.cmd("MAIL FROM:<a@remote.test>") == "503 5.5.1 Send LHLO first"
    assert await c.cmd("LHLO mta.test") == "\n".join([
        "250-lmtp.test", "250-PIPELINING", "250-SIZE 52428800", "250-8BITMIME",
        "250-ENHANCEDSTATUSCODES", "250 SMTPUTF8"])
    assert await c.cmd("VRFY alice") == "502 5.5.1 VRFY not available over LMTP"
    assert await c.cmd("AUTH PLAIN") == "502 5.5.1 AUTH not available over LMTP"
    assert await c.cmd("STARTTLS") == "502 5.5.1 STARTTLS not available over LMTP"
    assert await c.cmd("NOOP") == "250 2.0.0 OK"
    assert await c.cmd("QUIT") == "221 2.0.0 lmtp.test Bye"
    assert await c.closed()


async def test_size_off_is_not_advertised(start_lmtp_server: StartLmtp) -> None:
    h = await start_lmtp_server(max_message_size=0, smtputf8=False)
    c = await h.connect()
    lhlo = await c.cmd("LHLO mta.test")
    assert "SIZE" not in lhlo and "SMTPUTF8" not in lhlo and "PIPELINING" in lhlo


async def test_one_reply_per_recipient_in_rcpt_order(start_lmtp_server: StartLmtp) -> None:
    delivery = EnteredDelivery()
    h = await start_lmtp_server(delivery)
    h.delivery.fail_permanently.add("carl")         # over quota
    h.delivery.fail_temporarily.add("bob")          # store busy
    c = await h.lhlo()
    assert await c.cmd("MAIL FROM:<carol@remote.test>") == "250 2.1.0 Sender OK"
    assert (await c.cmd("RCPT TO:<carl@example.com>")).startswith("250 2.1.5")
    assert (await c.cmd("RCPT TO:<nobody@example.com>")).startswith("550 5.1.1")
    assert (await c.cmd("RCPT TO:<alice@example.com>")).startswith("250 2.1.5")
    assert await c.cmd("RCPT TO:<x@remote.test>") == "554 5.7.1 Relay access denied"
    assert (await c.cmd("RCPT TO:<bob@example.com>")).startswith("250 2.1.5")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(MSG))
    assert await c.reply() == "552 5.2.2 Mailbox full"                     # carl
    assert (await c.reply()).startswith("250 2.1.5 <alice@example.com> OK")
    assert await c.reply() == "451 4.3.0 Temporary delivery failure, try again later"  # bob
    assert len(h.delivery.calls) == 1 and h.delivery.calls[0][1] == ["carl", "alice", "bob"]
    assert delivery.sources == [Source.LMTP]        # the pipeline runs Sieve for it
    stored = h.delivery.stored["alice"][0]
    assert stored.endswith(MSG) and b"with LMTP" in stored
    assert stored.startswith(b"Return-Path: <carol@remote.test>\r\nReceived: from mta.test")
    assert await c.cmd("NOOP") == "250 2.0.0 OK"      # the session goes on


async def test_group_recipient_gets_one_reply(start_lmtp_server: StartLmtp) -> None:
    h = await start_lmtp_server()
    c = await h.lhlo()
    await c.cmd("MAIL FROM:<>")
    assert (await c.cmd("RCPT TO:<team@example.com>")).startswith("250")
    assert (await c.cmd("RCPT TO:<alice@example.com>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(MSG))
    assert (await c.reply()).startswith("250 2.1.5 <team@example.com>")
    assert (await c.reply()).startswith("250 2.1.5 <alice@example.com>")
    assert len(h.delivery.stored["alice"]) == 1 and len(h.delivery.stored["bob"]) == 1


async def test_pipelined_transaction_in_one_write(start_lmtp_server: StartLmtp) -> None:
    h = await start_lmtp_server()
    c = await h.lhlo()
    await c.send(b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<alice@example.com>\r\n"
                 b"RCPT TO:<nobody@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
    replies = [await c.reply() for _ in range(5)]
    assert [r[:3] for r in replies] == ["250", "250", "550", "250", "354"]
    # the data, its terminator and the next commands in one write
    await c.send(dot_stuff(MSG) + b"RSET\r\nMAIL FROM:<x@remote.test>\r\nQUIT\r\n")
    assert [(await c.reply())[:3] for _ in range(5)] == ["250", "250", "250", "250", "221"]
    assert h.delivery.stored["alice"][0].endswith(MSG)


async def test_sequence_and_syntax_errors(start_lmtp_server: StartLmtp) -> None:
    h = await start_lmtp_server()
    c = await h.lhlo()
    assert await c.cmd("RCPT TO:<alice@example.com>") == "503 5.5.1 Need MAIL command first"
    assert await c.cmd("DATA") == "503 5.5.1 Need MAIL command first"
    assert (await c.cmd("MAIL TO:<a@remote.test>")).startswith("501 5.5.2")
    assert (await c.cmd("MAIL FROM:<a@remote.test> FOO=1")).startswith("555 5.5.4")
    assert (await c.cmd("MAIL FROM:<a@remote.test> SIZE=99999999999")).startswith("552 5.3.4")
    assert (await c.cmd("MAIL FROM:<a@remote.test> BODY=8BITMIME")).startswith("250")
    assert await c.cmd("MAIL FROM:<a@remote.test>") == "503 5.5.1 Nested MAIL command"
    assert await c.cmd("DATA") == "503 5.5.1 No valid recipients"     # RFC 2033 4.2
    assert (await c.cmd("RCPT TO:<jörg@example.com>")).startswith("553 5.6.7")
    assert (await c.cmd("RCPT TO:<alice@example.com> NOTIFY=NEVER")).startswith("555")
    assert await c.cmd("FOO") == "500 5.5.2 Command unrecognized"
    assert (await c.cmd(b"MAIL \xff")).startswith("500 5.5.2")
    assert (await c.cmd(b"\x00\x01")).startswith("500 5.5.2")
    assert await c.cmd("LHLO") == "501 5.5.4 Syntax: LHLO hostname"
    assert (await c.cmd("X" * 5000)) == "500 5.5.2 Line too long"
    assert await c.cmd("NOOP") == "250 2.0.0 OK"          # the long line left nothing


async def test_too_many_errors_close(start_lmtp_server: StartLmtp) -> None:
    h = await start_lmtp_server()
    c = await h.lhlo()
    for _ in range(19):
        assert (await c.cmd("BOGUS")).startswith("500")
    assert await c.cmd("BOGUS") == "500 5.5.2 Command unrecognized"
    assert await c.reply() == "421 4.7.0 Too many errors, closing connection"
    assert await c.closed()


async def test_oversized_message_gets_552_per_recipient(start_lmtp_server: StartLmtp) -> None:
    h = await start_lmtp_server(max_message_size=1000)
    c = await h.lhlo()
    await c.cmd("MAIL FROM:<carol@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    await c.cmd("RCPT TO:<bob@example.com>")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 30))
    assert await c.reply() == "552 5.3.4 Message size exceeds fixed maximum of 1000 octets"
    assert await c.reply() == "552 5.3.4 Message size exceeds fixed maximum of 1000 octets"
    assert h.delivery.calls == []
    assert await c.cmd("NOOP") == "250 2.0.0 OK"


async def test_bare_lf_does_not_end_data(start_lmtp_server: StartLmtp) -> None:
    h = await start_lmtp_server()
    c = await h.lhlo()
    await c.cmd("MAIL FROM:<carol@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(b"Subject: x\r\n\r\nhello\n.\nRCPT TO:<bob@example.com>\r\n.\r\n")
    assert (await c.reply()).startswith("550 5.6.0 Bare CR or LF")
    assert h.delivery.calls == []


async def test_directory_down_is_temporary(start_lmtp_server: StartLmtp) -> None:
    h = await start_lmtp_server()
    c = await h.lhlo()
    await c.cmd("MAIL FROM:<carol@remote.test>")
    h.directory.fail = True
    assert (await c.cmd("RCPT TO:<alice@example.com>")).startswith("451 4.4.3")


async def test_smtplib_lmtp_client(start_lmtp_server: StartLmtp) -> None:
    """smtplib.LMTP speaks LHLO, but its sendmail() reads one reply after DATA (as SMTP
    does): the others are read with getreply(), as an LMTP client must."""
    h = await start_lmtp_server()
    h.delivery.fail_permanently.add("carl")

    def send() -> list[tuple[int, bytes]]:
        with smtplib.LMTP("127.0.0.1", h.port) as client:
            client.ehlo_or_helo_if_needed()
            assert client.does_esmtp and client.has_extn("pipelining")
            assert client.mail("carol@remote.test")[0] == 250
            for rcpt in ("alice@example.com", "carl@example.com", "bob@example.com"):
                assert client.rcpt(rcpt)[0] == 250
            replies = [client.data(MSG)]
            replies += [client.getreply() for _ in range(2)]
            assert client.noop()[0] == 250
            return replies
    replies = await asyncio.to_thread(send)
    assert [code for code, _ in replies] == [250, 552, 250]
    assert replies[1][1] == b"5.2.2 Mailbox full"
    assert h.delivery.stored["alice"][0].endswith(MSG)
    assert h.delivery.stored["bob"][0].endswith(MSG)
    assert "carl" not in h.delivery.stored


async def test_shutdown_answers_a_delivery_in_progress(start_lmtp_server: StartLmtp) -> None:
    delivery = EnteredDelivery(gate=asyncio.Event())
    h = await start_lmtp_server(delivery)
    gate = delivery.gate
    assert gate is not None
    c = await h.lhlo()
    await c.cmd("MAIL FROM:<carol@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(MSG))
    await delivery.entered.wait()
    closing = asyncio.ensure_future(h.service.close(grace=10))
    gate.set()
    assert (await c.reply()).startswith("250 2.1.5")
    assert (await c.reply()).startswith("421 4.3.2")
    await closing
