"""The connection driven without a socket: any octets give well-formed replies and never
an internal error; the same input whole or in pieces gives the same replies."""

from __future__ import annotations

import asyncio
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from server.smtp.handler import SmtpHandler
from server.smtp.lmtp.connection import LmtpConnection, LmtpContext
from server.smtp.lmtp.session import LmtpOptions
from tests.server.smtp.conftest import FakeDelivery, FakeDirectory

_REPLY = re.compile(rb"[2-5]\d\d[ -][^\r\n]*\r\n")


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default


async def _drive(pieces: list[bytes]) -> bytes:
    directory = FakeDirectory()
    directory.add("alice", "alice@example.com")
    ctx = LmtpContext(LmtpOptions("lmtp.test", max_message_size=2000, timeout=0,
                                  max_command_length=600),
                      SmtpHandler(directory, FakeDelivery(), "lmtp.test"))
    conn = LmtpConnection(ctx)
    transport = Transport()
    conn.connection_made(transport)
    for piece in pieces:
        conn.data_received(piece)
        await asyncio.sleep(0)
    conn.eof_received()
    assert conn._task is not None
    await conn._task
    conn.connection_lost(None)
    assert transport.closed
    return bytes(transport.out)


def drive(pieces: list[bytes]) -> bytes:
    return asyncio.run(_drive(pieces))


_SESSION = (b"LHLO mta\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.com>\r\n"
            b"DATA\r\nSubject: x\r\n\r\n..hi\r\n.\r\nQUIT\r\n")

_commands = st.sampled_from([b"LHLO mta", b"MAIL FROM:<a@remote.test>", b"RSET", b"NOOP",
                             b"RCPT TO:<alice@example.com>", b"DATA", b".", b"QUIT",
                             b"HELO x", b"VRFY a"])
_garbage = st.lists(st.one_of(_commands, st.binary(max_size=80)), max_size=12)


def test_a_session_whole_and_octet_by_octet() -> None:
    whole = drive([_SESSION])
    assert whole.split(b"\r\n")[:-1] == [
        b"220 lmtp.test LMTP fdbmail ready", b"250-lmtp.test", b"250-PIPELINING",
        b"250-SIZE 2000", b"250-8BITMIME", b"250-ENHANCEDSTATUSCODES", b"250 SMTPUTF8",
        b"250 2.1.0 Sender OK", b"250 2.1.5 Recipient OK",
        b"354 Start mail input; end with <CRLF>.<CRLF>",
        whole.split(b"\r\n")[10], b"221 2.0.0 lmtp.test Bye"]
    assert whole.split(b"\r\n")[10].startswith(b"250 2.1.5 <alice@example.com> OK id=")
    assert drive([bytes([b]) for b in _SESSION]) == whole


@settings(max_examples=150, deadline=None)
@given(_garbage, st.integers(min_value=1, max_value=9))
def test_garbage_gives_replies_never_an_error(lines: list[bytes], step: int) -> None:
    data = b"".join(line + b"\r\n" for line in lines)
    out = drive([data[i:i + step] for i in range(0, len(data), step)] or [b""])
    assert _REPLY.sub(b"", out) == b"", out         # nothing but whole reply lines
    assert b"Internal error" not in out
    assert drive([data]) == out                     # split anywhere, the same replies
