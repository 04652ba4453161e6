"""SAVEDATE (RFC 8514) on a real node: FETCH SAVEDATE is when the message was saved in this
mailbox (delivery, APPEND, COPY, MOVE), not its internal date; SEARCH SAVEDBEFORE / SAVEDON /
SAVEDSINCE / SAVEDATESUPPORTED; NIL for a message stored before save dates were kept."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

from fdb_layers.mail import transact
from fdb_layers.mail.layout import account_keys
from fdb_layers.mail.mailboxes import storage_of
from server.node.node import Node
from tests.server.imap.mutating import account, client, fill, login, mailbox_id, message

_DATE = re.compile(rb'SAVEDATE "([^"]+)"')
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def _when(line: bytes) -> datetime:
    m = _DATE.search(line)
    assert m is not None, line
    return datetime.strptime(m.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S %z")


def _day(when: datetime) -> bytes:
    d = when.astimezone(UTC)
    return b"%d-%s-%d" % (d.day, MONTHS[d.month - 1].encode(), d.year)


async def test_fetch_savedate_is_when_saved_here_and_search_uses_it(node: Node) -> None:
    """RFC 8514 section 3 (the save date is set when the message is saved in the mailbox:
    APPEND with an old INTERNALDATE, COPY, MOVE each give the time of that command) and
    section 4 (FETCH SAVEDATE, SEARCH SAVED* keys, SAVEDATESUPPORTED)."""
    before = datetime.now(UTC).replace(microsecond=0)

    def run() -> dict[str, list[bytes]]:
        m = client(node)
        assert "SAVEDATE" in m.capabilities
        typ, _ = m.append("INBOX", None, '"01-Jan-2001 10:00:00 +0000"', message(1))
        assert typ == "OK"
        m.logout()
        c = login(node)
        out = {"select": c.command(b"s SELECT INBOX\r\n")}
        out["fetch"] = c.command(b"f FETCH 1 (INTERNALDATE SAVEDATE)\r\n")
        out["copy"] = c.command(b"c COPY 1 Archive\r\n")
        out["move"] = c.command(b"m MOVE 1 Trash\r\n")
        c.command(b"s2 SELECT Archive\r\n")
        out["archive"] = c.command(b"f2 FETCH 1 SAVEDATE\r\n")
        out["supported"] = c.command(b"q1 SEARCH SAVEDATESUPPORTED\r\n")
        c.command(b"s3 SELECT Trash\r\n")
        out["trash"] = c.command(b"f3 UID FETCH 1:* SAVEDATE\r\n")
        c.close()
        return out

    out = await asyncio.to_thread(run)
    fetched = out["fetch"][0]
    assert b'INTERNALDATE " 1-Jan-2001 10:00:00 +0000"' in fetched
    saved = _when(fetched)
    after = datetime.now(UTC)
    assert before <= saved <= after
    assert out["copy"][-1].startswith(b"c OK") and out["move"][-1].startswith(b"m OK")
    assert saved <= _when(out["archive"][0]) <= after
    assert saved <= _when(out["trash"][0]) <= after
    assert out["supported"][0] == b"* SEARCH 1\r\n"

    def search() -> list[bytes]:
        c = login(node)
        c.command(b"s SELECT Archive\r\n")
        day = _day(_when(out["archive"][0]))
        answers = [c.command(b"a SEARCH SAVEDON " + day + b"\r\n")[0],
                   c.command(b"b SEARCH SAVEDSINCE " + day + b"\r\n")[0],
                   c.command(b"d SEARCH SAVEDBEFORE " + day + b"\r\n")[0],
                   c.command(b"e SEARCH SAVEDBEFORE 1-Jan-2001 SINCE 1-Jan-2001\r\n")[0],
                   # the internal date is 2001, the save date today: they are not mixed up
                   c.command(b"g SEARCH SAVEDON 1-Jan-2001\r\n")[0]]
        c.close()
        return answers

    on, since, before_day, mixed, internal = await asyncio.to_thread(search)
    assert on == since == b"* SEARCH 1\r\n"
    assert before_day == mixed == internal == b"* SEARCH\r\n"


async def test_a_message_without_save_date_fetches_nil(node: Node) -> None:
    """RFC 8514 section 4.1: NIL when the save date is not known (a message stored before
    save dates were kept); it matches no SAVED* key and the session goes on."""
    [first, second] = await fill(node, 2)
    account_id = await account(node)
    box = await mailbox_id(node, "alice", "INBOX")

    async def forget(tr: object) -> None:   # as a store of layout 1.2 has it
        keys = account_keys(account_id)
        storage = await storage_of(tr, keys, box)  # type: ignore[arg-type]
        tr.clear(keys.saved.pack((storage, first)))  # type: ignore[attr-defined]

    await transact(node.engine, forget)

    def run() -> list[list[bytes]]:
        c = login(node)
        c.command(b"s SELECT INBOX\r\n")
        out = [c.command(b"f UID FETCH 1:* (SAVEDATE)\r\n"),
               c.command(b"g SEARCH SAVEDSINCE 1-Jan-2000\r\n"),
               c.command(b"h SEARCH SAVEDATESUPPORTED\r\n")]
        c.close()
        return out

    fetched, since, supported = await asyncio.to_thread(run)
    assert fetched[0] == b"* 1 FETCH (UID %d SAVEDATE NIL)\r\n" % first
    assert b"UID %d SAVEDATE \"" % second in fetched[1]
    assert since[0] == b"* SEARCH 2\r\n"
    assert supported[0] == b"* SEARCH 1 2\r\n"
