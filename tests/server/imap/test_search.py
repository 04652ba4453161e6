"""SEARCH and UID SEARCH (RFC 9051 §6.4.4), ESEARCH (RFC 4731), SEARCHRES (RFC 5182),
MODSEQ (RFC 7162 §3.1.5), WITHIN (RFC 5032), EMAILID / THREADID (RFC 8474), SAVEDATE keys
(RFC 8514), through a real node, with exact responses on raw connections and imapclient.

The mailbox (:func:`delivered`) is made so that each key separates the messages: internal
dates a second before and after midnight UTC, Date headers whose own day differs from their
UTC day, encoded-word subjects and names, keywords, one large message."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, UTC

import pytest
from imapclient import IMAPClient

from server.delivery import DeliveryRequest, Recipient, Source
from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.test_session import Raw, raw_tls

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py


def _at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


M1 = (b"Message-ID: <m1@x.test>\r\nDate: Mon, 1 Jan 2024 23:30:00 -0500\r\n"
      b"From: Alice Example <alice@a.test>\r\nTo: bob@b.test\r\n"
      b"Subject: =?UTF-8?Q?Caf=C3=A9_menu?=\r\n\r\nhello world\r\n")
M2 = (b"Message-ID: <m2@x.test>\r\nDate: Tue, 2 Jan 2024 00:30:00 +0100\r\n"
      b"From: carol@c.test\r\nTo: alice@example.test\r\nCc: dave@d.test\r\n"
      b"Subject: Re: Caf\xc3\xa9 menu\r\nIn-Reply-To: <m1@x.test>\r\nReferences: <m1@x.test>\r\n"
      b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
      b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 au lait\r\n")
M3 = (b"Message-ID: <m3@x.test>\r\nFrom: =?ISO-8859-1?Q?J=F6rg?= <joerg@e.test>\r\n"
      b"Bcc: secret@f.test\r\nSubject: Report\r\nX-Priority: 1 (Highest)\r\n\r\n"
      + b"x" * 5000 + b"\r\n")
M4 = (b"Message-ID: <m4@x.test>\r\nDate: Thu, 4 Jan 2024 10:00:00 +0000\r\n"
      b"From: bob@b.test\r\nTo: alice@example.test\r\nSubject: Lunch\r\n"
      b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
      + base64.b64encode(b"the secret word is pineapple") + b"\r\n")
MESSAGES = (
    (M1, "2024-01-01 23:59:59", ("$seen", "$flagged")),
    (M2, "2024-01-02 00:00:01", ("$answered", "project")),
    (M3, "2024-01-03 12:00:00", ("$deleted", "$draft")),
    (M4, "2024-01-04 12:00:00", ()),
)


@dataclass
class Box:
    node: Node
    email_ids: list[str]
    thread_ids: list[str]


async def deliver_all(node: Node, messages: tuple[tuple[bytes, str, tuple[str, ...]], ...]
                      ) -> tuple[list[str], list[str]]:
    assert node.directory is not None and node.delivery is not None
    alice = await node.directory.get_principal("alice")
    assert alice is not None
    emails, threads = [], []
    for i, (raw, when, keywords) in enumerate(messages):
        [stored] = await node.delivery.deliver(DeliveryRequest(
            Source.MIGRATION, raw, (Recipient(alice.id),), f"search-{i}", keywords=keywords,
            received_at=_at(when)))
        emails.append(stored.email_id)  # type: ignore[union-attr]
        threads.append(stored.thread_id)  # type: ignore[union-attr]
    return emails, threads


@pytest.fixture
async def box(node: Node) -> AsyncIterator[Box]:
    emails, threads = await deliver_all(node, MESSAGES)
    yield Box(node, emails, threads)


def login(node: Node, select: str | None = "INBOX") -> Raw:
    c = raw_tls(node)
    c.line()
    assert c.command(b'a LOGIN alice "' + PASSWORD.encode() + b'"\r\n')[-1].startswith(b"a OK")
    if select:
        assert c.command(b"s SELECT " + select.encode() + b"\r\n")[-1].startswith(b"s OK")
    return c


def answer(c: Raw, command: bytes) -> tuple[list[bytes], bytes]:
    lines = c.command(command + b"\r\n")
    return lines[:-1], lines[-1]


# Each key against the four messages (RFC 9051 §6.4.4); the expected ``* SEARCH`` numbers.
KEYS: list[tuple[bytes, bytes]] = [
    (b"ALL", b"1 2 3 4"),
    (b"1:*", b"1 2 3 4"),
    (b"2,4", b"2 4"),
    (b"*", b"4"),
    (b"3:2", b"2 3"),
    (b"UID 2:*", b"2 3 4"),
    (b"UID 9:*", b"4"),           # §9: n:* includes the last UID even if n is above it
    (b"ANSWERED", b"2"),
    (b"UNANSWERED", b"1 3 4"),
    (b"DELETED", b"3"),
    (b"UNDELETED", b"1 2 4"),
    (b"DRAFT", b"3"),
    (b"UNDRAFT", b"1 2 4"),
    (b"FLAGGED", b"1"),
    (b"UNFLAGGED", b"2 3 4"),
    (b"SEEN", b"1"),
    (b"UNSEEN", b"2 3 4"),
    (b"KEYWORD project", b"2"),
    (b"KEYWORD PROJECT", b"2"),   # keywords compare case-insensitively
    (b"UNKEYWORD project", b"1 3 4"),
    (b"KEYWORD other", b""),
    (b"NEW", b""),                # RFC 3501: RECENT UNSEEN; no message is \Recent
    (b"OLD", b"1 2 3 4"),
    (b"RECENT", b""),
    # internal dates, by their UTC day (1: 23:59:59 on the 1st, 2: 00:00:01 on the 2nd)
    (b"ON 1-Jan-2024", b"1"),
    (b"ON 2-Jan-2024", b"2"),
    (b"BEFORE 2-Jan-2024", b"1"),
    (b"SINCE 2-Jan-2024", b"2 3 4"),
    (b'SINCE "3-Jan-2024"', b"3 4"),
    # sent dates, by the Date header's own day (1 is Jan 2 in UTC, 2 is Jan 1 in UTC);
    # 3 has no Date header and matches no SENT key
    (b"SENTON 1-Jan-2024", b"1"),
    (b"SENTON 2-Jan-2024", b"2"),
    (b"SENTBEFORE 2-Jan-2024", b"1"),
    (b"SENTSINCE 2-Jan-2024", b"2 4"),
    (b"NOT SENTSINCE 2-Jan-2024", b"1 3"),
    # strings: case-insensitive substrings of decoded header values
    (b"FROM alice", b"1"),
    (b'FROM "alice example"', b"1"),
    (b"FROM {5+}\r\nj\xc3\xb6rg", b"3"),      # RFC 2047 display name, ISO-8859-1
    (b"FROM B.TEST", b"4"),
    (b"TO alice@example.test", b"2 4"),
    (b"CC dave", b"2"),
    (b"BCC secret", b"3"),
    (b"SUBJECT {5+}\r\ncaf\xc3\xa9", b"1 2"),  # encoded word and raw UTF-8 (literals)
    (b"SUBJECT MENU", b"1 2"),
    (b"SUBJECT lunch", b"4"),
    (b'SUBJECT ""', b"1 2 3 4"),
    (b"HEADER X-Priority highest", b"3"),
    (b'HEADER x-priority ""', b"3"),   # empty string: every message with the field
    (b"HEADER In-Reply-To m1@x.test", b"2"),
    (b"BODY hello", b"1"),
    (b"BODY {5+}\r\ncaf\xc3\xa9", b"2"),      # quoted-printable body decoded
    (b"BODY pineapple", b"4"),        # base64 body decoded
    (b"BODY report", b""),            # BODY is not the header
    (b"TEXT report", b"3"),           # TEXT is header and body
    (b"TEXT PINEAPPLE", b"4"),
    (b"LARGER 1000", b"3"),
    (b"SMALLER 1000", b"1 2 4"),
    (b"NOT SEEN", b"2 3 4"),
    (b"OR SEEN DRAFT", b"1 3"),
    (b"OR (SEEN FLAGGED) BODY pineapple", b"1 4"),
    (b"(UNSEEN UNDELETED) SINCE 2-Jan-2024", b"2 4"),
    (b"UNSEEN NOT BODY lait", b"3 4"),
    (b"NOT (OR ANSWERED DELETED)", b"1 4"),
    # RFC 5032 WITHIN: the messages were received in 2024
    (b"OLDER 3600", b"1 2 3 4"),
    (b"YOUNGER 3600", b""),
    # RFC 8514 §4.2: every mailbox keeps save dates (the messages were saved just now)
    (b"SAVEDATESUPPORTED", b"1 2 3 4"),
    (b"SAVEDSINCE 1-Jan-2000", b"1 2 3 4"),
    (b"SAVEDBEFORE 1-Jan-2000", b""),
    (b"NOT SAVEDBEFORE 1-Jan-2000", b"1 2 3 4"),
    (b"CHARSET UTF-8 SUBJECT {5+}\r\ncaf\xc3\xa9", b"1 2"),
    (b"CHARSET US-ASCII FROM carol", b"2"),
]


async def test_each_key_gives_the_rfc_answer(box: Box) -> None:
    def run() -> list[tuple[bytes, list[bytes], bytes]]:
        c = login(box.node)
        wrong = []
        for key, expected in KEYS:
            untagged, tagged = answer(c, b"t SEARCH " + key)
            want = [b"* SEARCH" + (b" " + expected if expected else b"") + b"\r\n"]
            if untagged != want or not tagged.startswith(b"t OK"):
                wrong.append((key, untagged, tagged))  # all of them, not the first
        c.close()
        return wrong
    assert await asyncio.to_thread(run) == []


async def test_uid_search_and_object_ids(box: Box) -> None:
    def run() -> None:
        c = login(box.node)
        assert answer(c, b"u UID SEARCH 2:3")[0] == [b"* SEARCH 2 3\r\n"]
        assert answer(c, b"u UID SEARCH UID 1,4")[0] == [b"* SEARCH 1 4\r\n"]
        # RFC 8474 §6: EMAILID and THREADID
        eid = box.email_ids[2].encode()
        assert answer(c, b"e SEARCH EMAILID " + eid)[0] == [b"* SEARCH 3\r\n"]
        tid = box.thread_ids[3].encode()
        found = answer(c, b"e SEARCH THREADID " + tid)[0][0]
        assert b" 4" in found
        assert answer(c, b"e SEARCH EMAILID nosuchid")[0] == [b"* SEARCH\r\n"]
        c.close()
    await asyncio.to_thread(run)


async def test_modseq_key_reports_the_highest_modseq(box: Box) -> None:
    """RFC 7162 §3.1.5: ``* SEARCH ... (MODSEQ n)``, n the highest modseq of the matches."""
    def run() -> None:
        c = login(box.node)
        [line] = answer(c, b"m SEARCH MODSEQ 1")[0]
        assert line.startswith(b"* SEARCH 1 2 3 4 (MODSEQ ")
        top = int(line.rsplit(b" ", 1)[1].rstrip(b")\r\n"))
        assert answer(c, b"m SEARCH MODSEQ %d" % (top + 1))[0] == [b"* SEARCH\r\n"]
        [line] = answer(c, b"m SEARCH MODSEQ %d" % top)[0]
        assert line == b"* SEARCH 4 (MODSEQ %d)\r\n" % top
        [line] = answer(c, b'm SEARCH MODSEQ "/flags/\\\\draft" all %d' % top)[0]
        assert line == b"* SEARCH 4 (MODSEQ %d)\r\n" % top
        [line] = answer(c, b"m SEARCH RETURN (COUNT) MODSEQ %d" % top)[0]
        assert line == b'* ESEARCH (TAG "m") COUNT 1 MODSEQ %d\r\n' % top
        c.close()
    await asyncio.to_thread(run)


async def test_esearch_return_options(box: Box) -> None:
    """RFC 4731 §3.1: MIN, MAX, ALL (a compressed set), COUNT; RETURN () is ALL."""
    def run() -> None:
        c = login(box.node)
        cases = [
            (b"a SEARCH RETURN (MIN MAX COUNT) UNDELETED",
             b'* ESEARCH (TAG "a") MIN 1 MAX 4 COUNT 3\r\n'),
            (b"a SEARCH RETURN (ALL) UNDELETED", b'* ESEARCH (TAG "a") ALL 1:2,4\r\n'),
            (b"a SEARCH RETURN () ALL", b'* ESEARCH (TAG "a") ALL 1:4\r\n'),
            (b"a UID SEARCH RETURN (MIN) SINCE 2-Jan-2024", b'* ESEARCH (TAG "a") UID MIN 2\r\n'),
            (b"a SEARCH RETURN (MIN MAX ALL) KEYWORD none", b'* ESEARCH (TAG "a")\r\n'),
            (b"a SEARCH RETURN (COUNT) KEYWORD none", b'* ESEARCH (TAG "a") COUNT 0\r\n'),
        ]
        for command, line in cases:
            untagged, tagged = answer(c, command)
            assert untagged == [line], command
            assert tagged.startswith(b"a OK")
        c.close()
    await asyncio.to_thread(run)


async def test_imap4rev2_answers_in_esearch_form(box: Box) -> None:
    """RFC 9051 §7.3.4 / §6.4.4: after ENABLE IMAP4rev2 a plain SEARCH answers ESEARCH."""
    def run() -> None:
        c = login(box.node, select=None)
        assert answer(c, b"e ENABLE IMAP4rev2")[1].startswith(b"e OK")
        assert answer(c, b"s SELECT INBOX")[1].startswith(b"s OK")
        assert answer(c, b"x SEARCH UNSEEN")[0] == [b'* ESEARCH (TAG "x") ALL 2:4\r\n']
        assert answer(c, b"y UID SEARCH SEEN")[0] == [b'* ESEARCH (TAG "y") UID ALL 1\r\n']
        assert answer(c, b"z SEARCH KEYWORD none")[0] == [b'* ESEARCH (TAG "z")\r\n']
        c.close()
    await asyncio.to_thread(run)


async def test_searchres_saves_the_result_for_dollar(box: Box) -> None:
    """RFC 5182 §2: RETURN (SAVE) keeps the result (no ESEARCH when SAVE is alone); ``$``
    names it in later commands; with MIN / MAX alone only those are saved; a failed SEARCH
    empties it."""
    def run() -> None:
        c = login(box.node)
        assert answer(c, b"a SEARCH $")[0] == [b"* SEARCH\r\n"]  # empty before any SAVE
        untagged, tagged = answer(c, b"b SEARCH RETURN (SAVE) UNSEEN")
        assert untagged == [] and tagged.startswith(b"b OK")
        assert answer(c, b"c SEARCH $")[0] == [b"* SEARCH 2 3 4\r\n"]
        assert answer(c, b"d UID SEARCH UID $ UNDELETED")[0] == [b"* SEARCH 2 4\r\n"]
        assert answer(c, b"e SEARCH OR $ SEEN")[0] == [b"* SEARCH 1 2 3 4\r\n"]
        untagged, _ = answer(c, b"f SEARCH RETURN (SAVE MIN MAX) UNSEEN")
        assert untagged == [b'* ESEARCH (TAG "f") MIN 2 MAX 4\r\n']
        assert answer(c, b"g SEARCH $")[0] == [b"* SEARCH 2 4\r\n"]
        untagged, tagged = answer(c, b"h SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
        assert tagged.startswith(b"h NO [BADCHARSET")
        assert answer(c, b"i SEARCH $")[0] == [b"* SEARCH\r\n"]
        c.close()
    await asyncio.to_thread(run)


async def test_bad_input_gets_bad_and_the_session_lives(box: Box) -> None:
    def run() -> None:
        c = login(box.node)
        for command in (b"a SEARCH (SEEN", b"a SEARCH SEEN)", b"a SEARCH NOSUCHKEY",
                        b"a SEARCH BEFORE 32-Jan-2024", b"a SEARCH BEFORE yesterday",
                        b"a SEARCH OR SEEN", b"a SEARCH", b"a SEARCH LARGER x",
                        b"a SEARCH " + b"NOT " * 200 + b"ALL", b"a SEARCH RETURN (BOGUS) ALL"):
            untagged, tagged = answer(c, command)
            assert tagged.startswith(b"a BAD"), (command, tagged)
        # §6.4.4: an unknown charset is a NO with the supported ones
        untagged, tagged = answer(c, b"b SEARCH CHARSET KOI8-R ALL")
        assert tagged == b"b NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
        assert answer(c, b"c SEARCH SEEN")[0] == [b"* SEARCH 1\r\n"]
        c.close()
        n = login(box.node, select=None)
        assert answer(n, b"d SEARCH ALL")[1].startswith(b"d BAD")  # not selected
        n.close()
    await asyncio.to_thread(run)


async def test_imapclient_search(box: Box) -> None:
    def run() -> None:
        c = IMAPClient("127.0.0.1", port=box.node.ports["imaps"], ssl=True,
                       ssl_context=tls_client_context(), timeout=30)
        c.login("alice", PASSWORD)
        c.select_folder("INBOX")
        assert c.search(["UNSEEN"]) == [2, 3, 4]
        assert c.search(["SUBJECT", "Café"], charset="UTF-8") == [1, 2]
        assert c.search(["OR", "FLAGGED", "LARGER", 1000]) == [1, 3]
        assert c.search(["SINCE", datetime(2024, 1, 2).date()]) == [2, 3, 4]
        c.logout()
    await asyncio.to_thread(run)


async def test_blobs_are_read_only_when_a_text_key_needs_them(box: Box) -> None:
    """Issue 12's correct scan: envelope keys never read a blob; a BODY key reads the blobs
    of the messages the cheaper keys left (SEEN leaves one); HEADER reads headers only."""
    blobs = box.node.blobs
    assert blobs is not None
    reads: list[str] = []
    get, read_range = blobs.get, blobs.read_range

    async def counting_get(blob_id: str) -> bytes:
        reads.append("get")
        return await get(blob_id)

    async def counting_range(blob_id: str, start: int, end: int) -> bytes:
        reads.append("range")
        return await read_range(blob_id, start, end)

    blobs.get = counting_get  # type: ignore[method-assign]
    blobs.read_range = counting_range  # type: ignore[method-assign]

    def run() -> list[tuple[bytes, list[str]]]:
        c = login(box.node)
        seen = []
        for key in (b"SUBJECT lunch FROM bob SENTSINCE 1-Jan-2024", b"SEEN BODY hello",
                    b"OR SEEN BODY pineapple", b"HEADER X-Priority 1", b"UNSEEN SEEN TEXT x"):
            reads.clear()
            assert answer(c, b"t SEARCH " + key)[1].startswith(b"t OK")
            seen.append((key, list(reads)))
        c.close()
        return seen
    assert await asyncio.to_thread(run) == [
        (b"SUBJECT lunch FROM bob SENTSINCE 1-Jan-2024", []),
        (b"SEEN BODY hello", ["get"]),
        (b"OR SEEN BODY pineapple", ["get"] * 3),
        (b"HEADER X-Priority 1", ["range"] * 4),
        (b"UNSEEN SEEN TEXT x", []),
    ]


async def test_keys_decided_by_place_read_no_message_record(
        box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12's benchmark: ALL, sequence sets, UID sets and ``$`` (RFC 9051 §6.4.4, RFC
    5182 §2.1) need no message data; they are answered from the mailbox's UID map without a
    read of the message records, with the same answers as the full scan.  A flag key still
    reads them."""
    from server.imap.session import search as search_module

    calls: list[int] = []
    list_messages = search_module.list_messages

    async def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return await list_messages(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(search_module, "list_messages", counting)

    def run() -> list[tuple[bytes, bytes, int]]:
        c = login(box.node)
        out = []
        for key in (b"ALL", b"UID 2:*", b"NOT 2", b"OR 1 3:*", b"2,4 ALL", b"SEEN"):
            calls.clear()
            lines, tagged = answer(c, b"t SEARCH " + key)
            assert tagged.startswith(b"t OK")
            [found] = [x for x in lines if x.startswith(b"* SEARCH")]
            out.append((key, found.rstrip(), len(calls)))
        assert answer(c, b"t SEARCH RETURN (SAVE) 2:3")[1].startswith(b"t OK")
        calls.clear()
        lines, _ = answer(c, b"t UID SEARCH NOT $")
        out.append((b"UID NOT $", [x for x in lines if x.startswith(b"* SEARCH")][0].rstrip(),
                    len(calls)))
        c.close()
        return out
    result = await asyncio.to_thread(run)
    assert result == [
        (b"ALL", b"* SEARCH 1 2 3 4", 0),
        (b"UID 2:*", b"* SEARCH 2 3 4", 0),
        (b"NOT 2", b"* SEARCH 1 3 4", 0),
        (b"OR 1 3:*", b"* SEARCH 1 3 4", 0),
        (b"2,4 ALL", b"* SEARCH 2 4", 0),
        (b"SEEN", b"* SEARCH 1", 1),
        (b"UID NOT $", b"* SEARCH 1 4", 0),
    ]


async def test_search_by_place_leaves_out_messages_expunged_elsewhere(box: Box) -> None:
    """RFC 9051 §7.5.1: a SEARCH may not announce an expunge; a message another session
    expunged keeps its sequence number in this session, and, having no data any more, is
    not matched: by UID SEARCH ALL as by a key that reads the messages."""
    def run() -> tuple[bytes, bytes, bytes]:
        a = login(box.node)
        b = login(box.node)
        assert answer(b, b"b UID STORE 2 +FLAGS.SILENT (\\Deleted)")[1].startswith(b"b OK")
        assert answer(b, b"b UID EXPUNGE 2")[1].startswith(b"b OK")
        b.close()
        out = []
        # not UID SEARCH first: that may announce the expunge (RFC 9051 §7.5.1)
        for command in (b"a SEARCH ALL", b"a SEARCH UNDELETED", b"a UID SEARCH ALL"):
            lines, tagged = answer(a, command)
            assert tagged.startswith(b"a OK")
            out.append([x for x in lines if x.startswith(b"* SEARCH")][0].rstrip())
        a.close()
        return out[0], out[1], out[2]
    assert await asyncio.to_thread(run) == (
        b"* SEARCH 1 3 4", b"* SEARCH 1 4", b"* SEARCH 1 3 4")
