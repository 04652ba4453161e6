"""SORT and UID SORT (RFC 5256 §3), ESORT (RFC 5267 §3), SORT=DISPLAY (RFC 5957) on the
mailbox of :mod:`tests.server.imap.test_search`: exact responses and imapclient's ``sort``."""

from __future__ import annotations

import asyncio

from imapclient import IMAPClient

from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.test_search import MESSAGES, Box, answer, box, login

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

__all__ = ["box"]  # the fixture

# M1 was sent Jan 2 04:30 UTC, M2 Jan 1 23:30 UTC, M3 has no Date (its internal date, Jan 3,
# counts: RFC 5256 §2.2), M4 Jan 4.  Base subjects: "Café menu" twice, "Report", "Lunch".
CASES: list[tuple[bytes, bytes]] = [
    (b"(ARRIVAL)", b"1 2 3 4"),
    (b"(REVERSE ARRIVAL)", b"4 3 2 1"),
    (b"(DATE)", b"2 1 3 4"),
    (b"(SUBJECT)", b"1 2 4 3"),                 # ties broken by sequence number
    (b"(REVERSE SUBJECT)", b"3 4 1 2"),         # REVERSE does not reverse the tie-break
    (b"(SUBJECT DATE)", b"2 1 4 3"),
    (b"(FROM)", b"1 4 2 3"),                    # addr-mailbox: alice bob carol joerg
    (b"(TO)", b"3 2 4 1"),                      # none sorts first
    (b"(CC)", b"1 3 4 2"),
    (b"(DISPLAYFROM)", b"1 4 2 3"),             # RFC 5957: "Alice Example", bob@, carol@, Jörg
    (b"(DISPLAYTO)", b"3 2 4 1"),
]


async def test_each_sort_key(box: Box) -> None:
    sizes = [len(raw) for raw, _, _ in MESSAGES]
    by_size = b" ".join(b"%d" % (i + 1) for i in sorted(range(4), key=lambda i: (sizes[i], i)))

    def run() -> list[tuple[bytes, list[bytes], bytes]]:
        c = login(box.node)
        wrong = []
        for criteria, expected in [*CASES, (b"(SIZE)", by_size)]:
            untagged, tagged = answer(c, b"t SORT " + criteria + b" UTF-8 ALL")
            if untagged != [b"* SORT " + expected + b"\r\n"] or not tagged.startswith(b"t OK"):
                wrong.append((criteria, untagged, tagged))
        c.close()
        return wrong
    assert await asyncio.to_thread(run) == []


async def test_uid_sort_search_criteria_and_esort(box: Box) -> None:
    def run() -> None:
        c = login(box.node)
        assert answer(c, b"u UID SORT (REVERSE ARRIVAL) UTF-8 UNDELETED")[0] == [
            b"* SORT 4 2 1\r\n"]
        assert answer(c, b"u SORT (DATE) US-ASCII KEYWORD none")[0] == [b"* SORT\r\n"]
        # RFC 5267 §3.2: MIN / MAX are the first and last in sort order, ALL keeps the order
        assert answer(c, b"e SORT RETURN (MIN MAX ALL COUNT) (DATE) UTF-8 ALL")[0] == [
            b'* ESEARCH (TAG "e") MIN 2 MAX 4 ALL 2,1,3:4 COUNT 4\r\n']
        assert answer(c, b"e UID SORT RETURN (COUNT) (DATE) UTF-8 SEEN")[0] == [
            b'* ESEARCH (TAG "e") UID COUNT 1\r\n']
        # RFC 5182 §2.4: SORT RETURN (SAVE) keeps the result for $
        assert answer(c, b"f SORT RETURN (SAVE) (SUBJECT) UTF-8 UNSEEN")[0] == []
        assert answer(c, b"g SEARCH $")[0] == [b"* SEARCH 2 3 4\r\n"]
        c.close()
    await asyncio.to_thread(run)


async def test_bad_sort_commands(box: Box) -> None:
    def run() -> None:
        c = login(box.node)
        for command in (b"a SORT (NOSUCH) UTF-8 ALL", b"a SORT DATE UTF-8 ALL",
                        b"a SORT (DATE) UTF-8", b"a SORT (DATE UTF-8 ALL", b"a SORT () UTF-8 ALL",
                        b"a SORT (REVERSE) UTF-8 ALL"):
            assert answer(c, command)[1].startswith(b"a BAD"), command
        assert answer(c, b"b SORT (DATE) KOI8-R ALL")[1] == (
            b"b NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n")
        assert answer(c, b"c SORT (ARRIVAL) UTF-8 SEEN")[0] == [b"* SORT 1\r\n"]
        c.close()
    await asyncio.to_thread(run)


async def test_imapclient_sort(box: Box) -> None:
    def run() -> None:
        c = IMAPClient("127.0.0.1", port=box.node.ports["imaps"], ssl=True,
                       ssl_context=tls_client_context(), timeout=30)
        c.login("alice", PASSWORD)
        assert b"SORT" in c.capabilities() and b"SORT=DISPLAY" in c.capabilities()
        c.select_folder("INBOX")
        assert c.sort(["SUBJECT"]) == [1, 2, 4, 3]
        assert c.sort(["REVERSE", "DATE"], ["UNDELETED"]) == [4, 1, 2]
        c.logout()
    await asyncio.to_thread(run)
