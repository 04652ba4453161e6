"""FETCH at the byte level (RFC 9051 sections 6.4.5, 6.4.9, 7.5.2; RFC 3516 BINARY;
RFC 7162 CONDSTORE; RFC 8474 OBJECTID; RFC 8970 PREVIEW) through a real node: a
multipart/mixed with an attachment and a nested message/rfc822 is delivered by SMTP and
read back part by part."""

from __future__ import annotations

import asyncio
import re
import smtplib

import pytest
from imapclient import IMAPClient

from fdb_layers.mail import destroy_email, transact
from server.imap.session import messages
from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.test_session import Raw, raw_tls

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

MIXED = (
    b"From: Someone <someone@remote.test>\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: parts\r\n"
    b"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n"
    b"Message-ID: <parts@remote.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Language: en\r\n"
    b"\r\n"
    b"Hello there\r\n"
    b"--XX\r\n"
    b'Content-Type: application/octet-stream; name="a.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="a.bin"\r\n'
    b"\r\n"
    b"AAECAwQ=\r\n"
    b"--XX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: Inner <inner@remote.test>\r\n"
    b"Subject: inner\r\n"
    b"Message-ID: <inner@remote.test>\r\n"
    b"\r\n"
    b"Inner body\r\n"
    b"--XX--\r\n"
)

UUENCODED = (
    b"From: Someone <someone@remote.test>\r\nTo: alice@example.test\r\nSubject: uu\r\n"
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
    b"begin 644 a\r\n`\r\nend\r\n"
)


def _copy(n: int) -> bytes:
    """MIXED with its own Message-ID (delivery drops a repeated Message-ID)."""
    return MIXED.replace(b"<parts@", b"<parts%d@" % n)


def _deliver(node: Node, *messages_: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", node.ports["mx"], timeout=30) as s:
        for m in messages_:
            s.sendmail("someone@remote.test", ["alice@example.test"], m)


def _login(node: Node, mailbox: bytes = b"SELECT INBOX") -> Raw:
    r = raw_tls(node)
    r.line()
    assert r.command(b"a LOGIN alice \"%s\"\r\n" % PASSWORD.encode())[-1].startswith(b"a OK")
    assert r.command(b"b " + mailbox + b"\r\n")[-1].startswith(b"b OK")
    return r


def _joined(lines: list[bytes]) -> bytes:
    return b"".join(lines)


async def test_bodystructure_of_mixed_with_attachment_and_nested_message(node: Node) -> None:
    """RFC 9051 section 7.5.2 (BODYSTRUCTURE, extension data) and section 9 body-type-msg."""
    await asyncio.to_thread(_deliver, node, MIXED)

    def run() -> None:
        r = _login(node)
        got = _joined(r.command(b"c FETCH 1 BODYSTRUCTURE\r\n"))
        assert got == (
            b'* 1 FETCH (BODYSTRUCTURE ('
            b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 11 1 NIL NIL "en" NIL)'
            b'("APPLICATION" "OCTET-STREAM" ("NAME" "a.bin") NIL NIL "BASE64" 8 NIL'
            b' ("ATTACHMENT" ("FILENAME" "a.bin")) NIL NIL)'
            b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 94'
            b' (NIL "inner" (("Inner" NIL "inner" "remote.test")) (("Inner" NIL "inner"'
            b' "remote.test")) (("Inner" NIL "inner" "remote.test")) NIL NIL NIL NIL'
            b' "<inner@remote.test>")'
            b' ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL)'
            b' 5 NIL NIL NIL NIL)'
            b' "MIXED" ("BOUNDARY" "XX") NIL NIL NIL))\r\n'
            b"c OK FETCH completed\r\n")
        # BODY is BODYSTRUCTURE without extension data (section 7.5.2)
        body = _joined(r.command(b"d FETCH 1 BODY\r\n"))
        assert b'"utf-8") NIL NIL "7BIT" 11 1)' in body and b'"MIXED")' in body
        assert b"ATTACHMENT" not in body
        r.close()
    await asyncio.to_thread(run)


async def test_sections_parts_mime_and_partials(node: Node) -> None:
    """RFC 9051 section 6.4.5: part numbers, n.MIME, n.HEADER / n.TEXT of an encapsulated
    message, HEADER.FIELDS with case-insensitive names, partials <0.10> and past the end."""
    await asyncio.to_thread(_deliver, node, MIXED)

    def run() -> None:
        r = _login(node)
        assert r.command(b"c FETCH 1 (BODY.PEEK[1] BODY.PEEK[1]<0.5> BODY.PEEK[1]<100.5>)\r\n")[0] \
            == b'* 1 FETCH (BODY[1] "Hello there" BODY[1]<0> "Hello" BODY[1]<100> "")\r\n'
        got = _joined(r.command(b"d FETCH 1 (BODY.PEEK[2.MIME] BODY.PEEK[3.HEADER])\r\n"))
        mime = (b'Content-Type: application/octet-stream; name="a.bin"\r\n'
                b"Content-Transfer-Encoding: base64\r\n"
                b'Content-Disposition: attachment; filename="a.bin"\r\n\r\n')
        assert b"BODY[2.MIME] {%d}\r\n%s" % (len(mime), mime) in got
        inner = (b"From: Inner <inner@remote.test>\r\nSubject: inner\r\n"
                 b"Message-ID: <inner@remote.test>\r\n\r\n")
        assert b"BODY[3.HEADER] {%d}\r\n%s" % (len(inner), inner) in got
        assert r.command(b"e FETCH 1 (BODY.PEEK[3.TEXT])\r\n")[0] == (
            b'* 1 FETCH (BODY[3.TEXT] "Inner body")\r\n')
        fields = b"Subject: parts\r\nFrom: Someone <someone@remote.test>\r\n\r\n"
        got = _joined(r.command(b"f FETCH 1 BODY.PEEK[HEADER.FIELDS (subject FROM)]\r\n"))
        # the fields come in the message's order; the names are echoed as asked
        assert b"BODY[HEADER.FIELDS (subject FROM)] {%d}\r\n" % len(
            b"From: Someone <someone@remote.test>\r\nSubject: parts\r\n\r\n") in got
        assert b"From: Someone <someone@remote.test>\r\nSubject: parts\r\n\r\n" in got
        assert fields not in got
        got = _joined(r.command(b"g FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (To Date From"
                                b" Message-ID MIME-Version Content-Type Received"
                                b" Return-Path Delivered-To X-Spam-Status)]\r\n"))
        assert b"Subject: parts\r\n" in got and b"To:" not in got and b"From:" not in got
        assert b"* 1 FETCH (BODY[TEXT]<0> \"--XX\\r\\nConte\")" not in got
        assert r.command(b"h FETCH 1 BODY.PEEK[TEXT]<0.10>\r\n")[0].startswith(
            b"* 1 FETCH (BODY[TEXT]<0> {10}\r\n")
        # a part that does not exist is NIL
        assert r.command(b"i FETCH 1 BODY.PEEK[9]\r\n")[0] == b"* 1 FETCH (BODY[9] NIL)\r\n"
        # PEEK left \Seen alone; BODY[1] sets it and reports FLAGS in the same response
        assert r.command(b"j FETCH 1 FLAGS\r\n")[0] == b"* 1 FETCH (FLAGS ())\r\n"
        assert r.command(b"k FETCH 1 BODY[1]\r\n")[0] == (
            b'* 1 FETCH (BODY[1] "Hello there" FLAGS (\\Seen))\r\n')
        r.close()
    await asyncio.to_thread(run)


async def test_binary_and_binary_size(node: Node) -> None:
    """RFC 3516 section 4.2: BINARY decodes the transfer encoding, as literal8 when the
    octets hold NUL and as a string otherwise ("the server SHOULD return the data in a
    <string> instead of a <literal8>"); section 4.3: an unknown encoding is NO [UNKNOWN-CTE]."""
    await asyncio.to_thread(_deliver, node, MIXED, UUENCODED)

    def run() -> None:
        r = _login(node)
        got = r.command(b"c FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2] BINARY.PEEK[1]<0.5>)\r\n")
        assert _joined(got) == (b"* 1 FETCH (BINARY.SIZE[2] 5 BINARY[2] ~{5}\r\n"
                                b"\x00\x01\x02\x03\x04 BINARY[1]<0> \"Hello\")\r\n"
                                b"c OK FETCH completed\r\n")
        answer = r.command(b"d FETCH 2 BINARY.PEEK[1]\r\n")[-1]
        assert answer.startswith(b"d NO [UNKNOWN-CTE]")
        assert r.command(b"e NOOP\r\n")[-1].startswith(b"e OK")   # the session lives
        r.close()
    await asyncio.to_thread(run)


async def test_uid_fetch_always_returns_uid_and_rfc822_forms(node: Node) -> None:
    """RFC 9051 section 6.4.9 (UID in every UID FETCH response); RFC 3501 section 6.4.5
    RFC822, RFC822.HEADER, RFC822.TEXT; RFC 8474 EMAILID/THREADID; RFC 8970 PREVIEW."""
    await asyncio.to_thread(_deliver, node, MIXED)

    def run() -> None:
        r = _login(node)
        assert r.command(b"c UID FETCH 1 FLAGS\r\n")[0] == b"* 1 FETCH (UID 1 FLAGS ())\r\n"
        got = _joined(r.command(b"d FETCH 1 (EMAILID THREADID PREVIEW RFC822.SIZE)\r\n"))
        m = re.match(rb"\* 1 FETCH \(EMAILID \((\S+)\) THREADID \((\S+)\) PREVIEW \"([^\"]*)\""
                     rb" RFC822.SIZE (\d+)\)", got)
        assert m is not None, got
        assert m.group(3).startswith(b"Hello there")
        size = int(m.group(4))
        got = _joined(r.command(b"e FETCH 1 RFC822.HEADER\r\n"))
        assert got.startswith(b"* 1 FETCH (RFC822.HEADER {") and b"Subject: parts" in got
        assert r.command(b"f FETCH 1 FLAGS\r\n")[0] == b"* 1 FETCH (FLAGS ())\r\n"
        got = _joined(r.command(b"g FETCH 1 RFC822\r\n"))       # RFC822 sets \Seen
        assert got.startswith(b"* 1 FETCH (RFC822 {%d}\r\n" % size) and b"\\Seen" in got
        got = _joined(r.command(b"h FETCH 1 ALL\r\n"))
        assert b"FLAGS (\\Seen) INTERNALDATE \"" in got and b"ENVELOPE (" in got
        assert b"RFC822.SIZE %d" % size in got
        got = _joined(r.command(b"i FETCH 1 FULL\r\n"))
        assert b" BODY ((" in got
        r.close()
    await asyncio.to_thread(run)


async def test_sequence_set_errors_are_bad(node: Node) -> None:
    """RFC 9051 section 9: seq-number is nz-number or "*"; a number past the mailbox is
    BAD (section 6.4.5), a reversed range is the same range; UID sets may name no message."""
    await asyncio.to_thread(_deliver, node, MIXED, _copy(2))

    def run() -> None:
        r = _login(node)
        assert r.command(b"c FETCH 0 FLAGS\r\n")[-1].startswith(b"c BAD")
        assert r.command(b"d FETCH 3 FLAGS\r\n")[-1].startswith(b"d BAD")
        assert r.command(b"e FETCH 2:1 UID\r\n") == [
            b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 2)\r\n", b"e OK FETCH completed\r\n"]
        assert r.command(b"f FETCH * UID\r\n")[0] == b"* 2 FETCH (UID 2)\r\n"
        assert r.command(b"g UID FETCH 7:5 UID\r\n") == [b"g OK UID FETCH completed\r\n"]
        assert r.command(b"h UID FETCH 9:* UID\r\n")[0] == b"* 2 FETCH (UID 2)\r\n"
        assert r.command(b"i FETCH 1 NONSENSE\r\n")[-1].startswith(b"i BAD")
        r.close()
    await asyncio.to_thread(run)


async def test_fetch_of_a_message_expunged_elsewhere(node: Node) -> None:
    """RFC 9051 section 7.5.1: no EXPUNGE during FETCH; the message still has its number
    but is gone from the store: the others are returned, then NO [EXPUNGEISSUED]."""
    await asyncio.to_thread(_deliver, node, MIXED, _copy(2))
    r = await asyncio.to_thread(_login, node)
    got = await asyncio.to_thread(r.command, b"c FETCH 1 EMAILID\r\n")
    email_id = re.search(rb"EMAILID \(([^)\s]+)\)", got[0]).group(1).decode()  # type: ignore[union-attr]
    assert node.parts is not None
    principal = await node.parts.directory.get_principal("alice")
    assert principal is not None
    assert await transact(node.parts.engine, destroy_email, principal.id, email_id, op_id=None)

    def run() -> None:
        got = r.command(b"d FETCH 1:2 (FLAGS BODY.PEEK[1])\r\n")
        assert got[0] == b'* 2 FETCH (FLAGS () BODY[1] "Hello there")\r\n'
        assert got[-1].startswith(b"d NO [EXPUNGEISSUED]")
        assert not any(b"EXPUNGE\r\n" in line for line in got)
        # STORE to the expunged message: nothing to do, and no EXPUNGE during STORE
        assert r.command(b"f STORE 1 +FLAGS (\\Seen)\r\n") == [b"f OK STORE completed\r\n"]
        # a UID FETCH may announce the expunge (RFC 9051 section 7.5.1), after its FETCH
        assert r.command(b"e UID FETCH 1:2 FLAGS\r\n") == [
            b"* 2 FETCH (UID 2 FLAGS ())\r\n", b"* 1 EXPUNGE\r\n",
            b"e OK UID FETCH completed\r\n"]
        r.close()
    await asyncio.to_thread(run)


async def test_fetch_in_batches_gives_every_message_once(node: Node,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A FETCH is read and written batch by batch (streaming); the result is the same."""
    monkeypatch.setattr(messages, "BATCH", 2)
    await asyncio.to_thread(_deliver, node, *[_copy(n) for n in range(5)])

    def run() -> None:
        c = IMAPClient("127.0.0.1", port=node.ports["imaps"], ssl=True,
                       ssl_context=tls_client_context(), timeout=30)
        c.login("alice", PASSWORD)
        c.select_folder("INBOX")
        c.add_flags([2, 4], ["\\Flagged"])
        got = c.fetch([1, 2, 3, 4, 5], ["FLAGS"])
        assert {u: d[b"FLAGS"] for u, d in got.items()} == {
            1: (), 2: (b"\\Flagged",), 3: (), 4: (b"\\Flagged",), 5: ()}
        seen = c.fetch([1, 2, 3, 4, 5], ["BODY[1]"])
        assert all(d[b"BODY[1]"] == b"Hello there" for d in seen.values()) and len(seen) == 5
        assert c.folder_status("INBOX", ["UNSEEN"])[b"UNSEEN"] == 0
        c.logout()
    await asyncio.to_thread(run)


async def test_imaplib_reads_parts_and_preview(node: Node) -> None:
    """The standard library client: PREVIEW is advertised (RFC 8970 section 3), FETCH
    PREVIEW (LAZY), BODY.PEEK of a part and of HEADER.FIELDS, UID FETCH."""
    await asyncio.to_thread(_deliver, node, MIXED)

    def run() -> None:
        import imaplib
        m = imaplib.IMAP4_SSL("127.0.0.1", node.ports["imaps"], ssl_context=tls_client_context(),
                              timeout=30)
        m.login("alice", PASSWORD)
        assert "PREVIEW" in m.capabilities
        m.select("INBOX")
        typ, data = m.fetch("1", "(PREVIEW (LAZY))")
        assert typ == "OK" and data[0] == b'1 (PREVIEW "Hello there")'
        typ, data = m.fetch("1", "(BODY.PEEK[3.TEXT] BODY.PEEK[HEADER.FIELDS (Subject)])")
        assert typ == "OK"
        assert data[0] == (b'1 (BODY[3.TEXT] "Inner body" BODY[HEADER.FIELDS (Subject)] {18}',
                           b"Subject: parts\r\n\r\n")
        typ, data = m.uid("FETCH", "1", "(FLAGS)")
        assert typ == "OK" and data[0] == b"1 (UID 1 FLAGS ())"
        m.logout()
    await asyncio.to_thread(run)


async def test_envelope_is_kept_and_the_summary_read_once(node: Node,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12's benchmark: FETCH ENVELOPE (RFC 9051 §7.5.2) of a message already fetched
    reads no stored summary again and answers the same bytes; BODYSTRUCTURE still reads it."""
    monkeypatch.setattr(messages, "_ENVELOPES", {})
    reads: list[str] = []
    get_summary = messages.get_summary

    async def counting(tr: object, account_id: str, email_id: str) -> object:
        reads.append(email_id)
        return await get_summary(tr, account_id, email_id)  # type: ignore[arg-type]

    monkeypatch.setattr(messages, "get_summary", counting)
    await asyncio.to_thread(_deliver, node, _copy(1), _copy(2))

    def run() -> list[tuple[bytes, int]]:
        r = _login(node)
        out = []
        for command in (b"f FETCH 1:2 (FLAGS ENVELOPE)\r\n", b"g UID FETCH 1:* ENVELOPE\r\n",
                        b"h FETCH 1 BODYSTRUCTURE\r\n"):
            reads.clear()
            lines = r.command(command)
            assert lines[-1].split(b" ")[1] == b"OK", lines
            out.append((_joined(lines[:-1]), len(reads)))
        r.close()
        return out
    first, second, structure = await asyncio.to_thread(run)
    assert first[1] == 2 and second[1] == 0 and structure[1] == 1
    assert b'"parts"' in first[0] and b"<parts1@remote.test>" in first[0]
    envelopes = re.findall(rb"ENVELOPE \(.*\)\)\r\n", first[0])
    assert len(envelopes) == 2 and envelopes == re.findall(rb"ENVELOPE \(.*\)\)\r\n", second[0])


async def test_whole_message_fetch_reads_no_summary(node: Node,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """BODY[] (RFC 9051 §6.4.5: the whole message) and RFC822 are one blob read: the stored
    summary (part offsets) is not read for them; BODY[1] and RFC822.HEADER still read it."""
    reads: list[str] = []
    get_summary = messages.get_summary

    async def counting(tr: object, account_id: str, email_id: str) -> object:
        reads.append(email_id)
        return await get_summary(tr, account_id, email_id)  # type: ignore[arg-type]

    monkeypatch.setattr(messages, "get_summary", counting)
    raw = _copy(7)
    await asyncio.to_thread(_deliver, node, raw)

    def run() -> list[tuple[bytes, int]]:
        r = _login(node)
        out = []
        for command in (b"f FETCH 1 BODY.PEEK[]\r\n", b"g UID FETCH 1 RFC822\r\n",
                        b"h FETCH 1 BODY[1]\r\n", b"i FETCH 1 RFC822.HEADER\r\n"):
            reads.clear()
            lines = r.command(command)
            assert lines[-1].split(b" ")[1] == b"OK", lines
            out.append((_joined(lines[:-1]), len(reads)))
        r.close()
        return out
    peek, rfc822, part, header = await asyncio.to_thread(run)
    assert (peek[1], rfc822[1], part[1], header[1]) == (0, 0, 1, 1)
    assert peek[0].startswith(b"* 1 FETCH (BODY[] {") and peek[0].endswith(raw + b")\r\n")
    assert b"RFC822 {" in rfc822[0] and raw in rfc822[0]
    assert b'BODY[1] "Hello there"' in part[0]
    assert b"Subject: parts\r\n" in header[0] and b"Hello there" not in header[0]
