"""CHUNKING and BINARYMIME (RFC 3030) on the MX listener: BDAT chunks through a raw
client, alone and pipelined, with the errors a client can make."""

from __future__ import annotations

import asyncio
import smtplib

from hypothesis import given, strategies as st

from mailtext.smtp import is_text
from server.smtp.wire.bdat import BdatSyntaxError, check_text, parse_bdat
from server.smtp.wire.data import DataProblem
from tests.server.smtp.conftest import Client, StartHarness

MSG = b"From: x@remote.test\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nHello\r\n"


def bdat(chunk: bytes, last: bool = False) -> bytes:
    return f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode() + chunk


async def send_chunk(c: Client, raw: bytes) -> str:
    await c.send(raw)
    return await c.reply()


async def test_ehlo_offers_chunking_binarymime_and_dsn(start: StartHarness) -> None:
    """RFC 3030 sections 2 and 3, RFC 3461 section 4: the EHLO keywords."""
    h = await start()
    c = await h.connect()
    keywords = {line[4:] for line in (await c.cmd("EHLO client.test")).split("\n")[1:]}
    assert {"CHUNKING", "BINARYMIME", "DSN"} <= keywords


async def test_chunks_make_one_message(start: StartHarness) -> None:
    """RFC 3030 section 2: chunks are joined as sent (no dot-stuffing: a line "." is
    data); each chunk but the last gets 250, LAST ends the message."""
    h = await start()
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    body = MSG + b".\r\n..two dots\r\n"
    assert (await send_chunk(c, bdat(body[:10]))).startswith("250 2.0.0 10 octets")
    assert (await send_chunk(c, bdat(body[10:40]))).startswith("250 2.0.0 30 octets")
    assert (await send_chunk(c, bdat(body[40:], last=True))).startswith("250 2.0.0 OK")
    [raw] = h.delivery.stored["alice"]
    assert raw.endswith(body) and b"Return-Path: <x@remote.test>" in raw
    # BDAT 0 LAST ends a message too; the session goes on
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<bob@example.com>")
    assert (await send_chunk(c, bdat(MSG))).startswith("250")
    assert (await c.cmd("BDAT 0 LAST")).startswith("250 2.0.0 OK")
    assert h.delivery.stored["bob"][0].endswith(MSG)


async def test_pipelined_bdat_transactions(start: StartHarness) -> None:
    """RFC 3030 section 4.2 with RFC 2920: MAIL, RCPT and BDAT sent in one go, twice;
    the replies come in order and each message is stored once."""
    h = await start()
    c = await h.ehlo()
    batch = b""
    for rcpt in (b"alice", b"bob"):
        batch += (b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<" + rcpt + b"@example.com>\r\n"
                  + bdat(MSG[:20]) + bdat(MSG[20:] + rcpt, last=True))
    await c.send(batch + b"QUIT\r\n")
    codes = [(await c.reply())[:3] for _ in range(9)]
    assert codes == ["250"] * 8 + ["221"]
    assert h.delivery.stored["alice"][0].endswith(MSG + b"alice")
    assert h.delivery.stored["bob"][0].endswith(MSG + b"bob")


async def test_bdat_after_failed_rcpt_reads_and_drops_the_chunks(start: StartHarness) -> None:
    """RFC 3030 section 2 and RFC 2920 section 3.1: a BDAT with no valid recipient
    fails (554); its octets, and those of the chunks pipelined after it, are read and
    dropped, never taken for commands."""
    h = await start()
    c = await h.ehlo()
    smuggled = b"RSET\r\nMAIL FROM:<evil@remote.test>\r\n"
    await c.send(b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<nobody@example.com>\r\n"
                 + bdat(smuggled) + bdat(smuggled, last=True) + b"NOOP\r\n")
    codes = [(await c.reply())[:3] for _ in range(5)]
    assert codes == ["250", "550", "554", "503", "250"]
    assert h.delivery.calls == []
    # the transaction was reset: a new one starts cleanly
    assert (await c.cmd("MAIL FROM:<x@remote.test>")).startswith("250")


async def test_bdat_without_transaction(start: StartHarness) -> None:
    """RFC 3030 section 2: BDAT needs MAIL and RCPT (503), and the chunk is dropped."""
    h = await start()
    c = await h.ehlo()
    assert (await send_chunk(c, bdat(b"NOOP\r\n", last=True))).startswith("503 5.5.1")
    assert (await c.cmd("NOOP")).startswith("250")
    assert h.delivery.calls == []


async def test_malformed_bdat_size_closes_the_connection(start: StartHarness) -> None:
    """RFC 3030 section 2 (chunk-size is 1*DIGIT): with no size the chunk's end is
    unknown, so the server says 501 and closes rather than read data as commands."""
    for arg in ("", "abc", "-1", "1.5", "10 NOTLAST", "10 LAST extra", "１０",
                "1" * 21, "10  LAST"):
        h = await start()
        c = await h.ehlo()
        await c.cmd("MAIL FROM:<x@remote.test>")
        await c.cmd("RCPT TO:<alice@example.com>")
        await c.send(f"BDAT {arg}\r\nMAIL FROM:<evil@remote.test>\r\n".encode())
        assert (await c.reply()).startswith("501 5.5.4"), arg
        assert (await c.reply()).startswith("421"), arg
        assert await c.closed(), arg
        assert h.delivery.calls == []


async def test_bdat_size_limit_while_streaming(start: StartHarness) -> None:
    """RFC 1870 with RFC 3030 section 2: chunks past the SIZE limit are refused (552)
    and dropped; the transaction fails and the session goes on."""
    h = await start(max_message_size=1000)
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    assert (await send_chunk(c, bdat(b"x" * 600))).startswith("250")
    assert (await send_chunk(c, bdat(b"y" * 600, last=True))).startswith("552 5.3.4")
    assert h.delivery.calls == []
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    assert (await send_chunk(c, bdat(MSG, last=True))).startswith("250")


async def test_binarymime_only_with_bdat(start: StartHarness) -> None:
    """RFC 3030 section 3: BODY=BINARYMIME takes any octets, by BDAT only (DATA gets
    503); a text message by BDAT keeps DATA's rule on bare line endings."""
    h = await start()
    c = await h.ehlo()
    binary = b"Content-Type: application/octet-stream\r\n\r\n\x00\x01\r\x02\n\xff" * 3
    assert (await c.cmd("MAIL FROM:<x@remote.test> BODY=BINARYMIME")).startswith("250")
    await c.cmd("RCPT TO:<alice@example.com>")
    assert (await c.cmd("DATA")).startswith("503 5.5.1")
    await c.cmd("MAIL FROM:<x@remote.test> BODY=BINARYMIME")
    await c.cmd("RCPT TO:<alice@example.com>")
    assert (await send_chunk(c, bdat(binary, last=True))).startswith("250")
    assert h.delivery.stored["alice"][0].endswith(binary)
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<bob@example.com>")
    assert (await send_chunk(c, bdat(b"Subject: x\r\n\r\nbare\nLF\r\n", last=True))).startswith(
        "550 5.6.0")
    # DATA after BDAT in one transaction: 503 (RFC 3030 section 2)
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<bob@example.com>")
    assert (await send_chunk(c, bdat(MSG[:5]))).startswith("250")
    assert (await c.cmd("DATA")).startswith("503")
    assert "bob" not in h.delivery.stored
    assert (await c.cmd("MAIL FROM:<x@remote.test> BODY=BINARY")).startswith("501 5.5.4")


async def test_connection_lost_mid_chunk_stores_nothing(start: StartHarness) -> None:
    """RFC 5321 section 4.1.1.4 (by way of RFC 3030): nothing is kept of a message
    whose last chunk never came."""
    h = await start()
    c = await h.ehlo()
    await c.cmd("MAIL FROM:<x@remote.test>")
    await c.cmd("RCPT TO:<alice@example.com>")
    await c.send(b"BDAT 100 LAST\r\n" + MSG[:30])
    await c.close()
    c = await h.ehlo()
    assert (await c.cmd("NOOP")).startswith("250")
    assert h.delivery.calls == []


async def test_smtplib_bdat(start: StartHarness) -> None:
    """A real client: smtplib speaks raw commands; BDAT then LAST as RFC 3030 section 2."""
    h = await start()
    port = h.service.ports["mx"]

    def run() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.ehlo("client.test")
            assert s.has_extn("chunking") and s.has_extn("binarymime")
            assert s.mail("x@remote.test", ["BODY=BINARYMIME"])[0] == 250
            assert s.rcpt("alice@example.com")[0] == 250
            s.send(b"BDAT %d LAST\r\n" % len(MSG) + MSG)
            code, _ = s.getreply()
            assert code == 250
    await asyncio.to_thread(run)
    assert h.delivery.stored["alice"][0].endswith(MSG)


@given(st.text(max_size=30))
def test_parse_bdat_never_raises_anything_else(arg: str) -> None:
    """RFC 3030 section 2: chunk-size [SP end-marker]; anything else is BdatSyntaxError."""
    try:
        cmd = parse_bdat(arg)
    except BdatSyntaxError:
        return
    assert cmd.size >= 0 and str(cmd.size) == arg.split(" ")[0].lstrip("0") or cmd.size == 0


@given(st.binary(max_size=200))
def test_check_text_agrees_with_is_text(content: bytes) -> None:
    """RFC 5321 section 2.3.8: a text message has no bare CR or LF."""
    _, problem = check_text(content)
    if is_text(content):
        assert problem is None
    bare = content.replace(b"\r\n", b"").count(b"\r") + \
        content.replace(b"\r\n", b"").count(b"\n")
    assert (problem is DataProblem.BARE_LINE_ENDING) == (bare > 0)
    fixed, problem = check_text(content, normalize=True)
    assert problem is None and fixed.count(b"\r") == fixed.count(b"\r\n")
    assert check_text(b"a" * 20 + b"\r\n", max_line=10)[1] is DataProblem.LINE_TOO_LONG
