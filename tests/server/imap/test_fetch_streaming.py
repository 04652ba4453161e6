"""A long FETCH writes its responses batch by batch through ``Session.flush``, which the
connection sets to write ``out`` and wait for the socket (server/imap/connection.py)."""

from __future__ import annotations

from server.imap.session.state import Session


async def test_flush_hands_out_to_the_connection() -> None:
    s = Session.__new__(Session)
    s.out = [b"* 1 FETCH (FLAGS ())\r\n"]
    s.drain = None
    await s.flush()                          # no connection: out stays for the end
    assert s.out == [b"* 1 FETCH (FLAGS ())\r\n"]
    sent: list[bytes] = []

    async def drain() -> None:
        sent.extend(s.out)
        s.out = []

    s.drain = drain
    await s.flush()
    assert sent == [b"* 1 FETCH (FLAGS ())\r\n"] and s.out == []
