"""UTF8=ACCEPT (RFC 6855) on a real node: ENABLE in the authenticated state only, UTF-8 in
quoted strings and mailbox names once enabled (modified UTF-7 for others), SEARCH CHARSET
refused after it, APPEND of 8-bit headers refused without it and accepted through the UTF8
data item with it, and ENVELOPE without UTF-8 for a client that did not enable it."""

from __future__ import annotations

import asyncio
from email.header import decode_header, make_header

from server.node.node import Node
from tests.server.imap.mutating import client, login, stored, uids

RAW = ("From: Jörg <jörg@bücher.example>\r\nTo: alice@example.test\r\n"
       "Subject: Grüße\r\n\r\nhé\r\n").encode()


async def test_enable_and_utf8_mailbox_names_with_imaplib(node: Node) -> None:
    """RFC 6855 section 3: the client MUST ENABLE UTF8=ACCEPT; then quoted strings carry
    UTF-8 and LIST answers in UTF-8; a session that did not enable it sees modified UTF-7
    (RFC 3501 section 5.1.3)."""
    def run() -> tuple[tuple[str, ...], object, list[bytes], list[bytes]]:
        m = client(node)
        caps = m.capabilities
        typ, _ = m.enable("UTF8=ACCEPT")    # imaplib switches itself to UTF-8
        assert typ == "OK"
        enabled = m.response("ENABLED")[1]
        assert m.create('"Grüße/Ünïcødé"')[0] == "OK"
        _, listed = m.list('""', '"Grüße*"')
        m.logout()
        legacy = client(node)
        _, old = legacy.list('""', '"Gr*"')
        legacy.logout()
        return caps, enabled, listed, old

    caps, enabled, listed, old = await asyncio.to_thread(run)
    assert "UTF8=ACCEPT" in caps
    assert enabled == [b"UTF8=ACCEPT"]
    assert listed == ['(\\HasChildren) "/" "Grüße"'.encode(),
                      '(\\HasNoChildren) "/" "Grüße/Ünïcødé"'.encode()]
    assert old == [b'(\\HasChildren) "/" Gr&APwA3w-e',
                   b'(\\HasNoChildren) "/" Gr&APwA3w-e/&ANw-n&AO8-c&APg-d&AOk-']


async def test_enable_rules_search_charset_and_bad_utf8(node: Node) -> None:
    """RFC 6855 section 3: ENABLE UTF8=ACCEPT is only valid in the authenticated state;
    once enabled, SEARCH with a charset SHOULD be BAD, and octets with the high bit set that
    are not UTF-8 MUST be BAD; RFC 5161 section 3.1: enabling twice lists nothing new."""
    def run() -> list[list[bytes]]:
        c = login(node)
        out = [c.command(b"s SELECT INBOX\r\n")[-1:],
               c.command(b"e1 ENABLE UTF8=ACCEPT\r\n"),    # selected: not valid
               c.command(b"q1 SEARCH CHARSET UTF-8 ALL\r\n")[-1:],
               c.command(b"u UNSELECT\r\n")[-1:],
               c.command(b"e2 ENABLE UTF8=ACCEPT\r\n"),
               c.command(b"e3 ENABLE UTF8=ACCEPT\r\n"),
               c.command(b"s2 SELECT INBOX\r\n")[-1:],
               c.command(b"q2 SEARCH CHARSET UTF-8 ALL\r\n")[-1:],
               c.command(b"q3 SEARCH ALL\r\n")[-1:],
               c.command(b'c1 CREATE "bad\xff\xfename"\r\n')[-1:],
               c.command(b"n NOOP\r\n")[-1:]]
        c.close()
        return out

    (_, e1, q1, _, e2, e3, _, q2, q3, c1, n) = await asyncio.to_thread(run)
    assert e1[-1].startswith(b"e1 BAD")
    assert q1[0].startswith(b"q1 OK")
    assert e2 == [b"* ENABLED UTF8=ACCEPT\r\n", e2[-1]] and e2[-1].startswith(b"e2 OK")
    assert e3[0] == b"* ENABLED\r\n" and e3[-1].startswith(b"e3 OK")
    assert q2[0].startswith(b"q2 BAD") and q3[0].startswith(b"q3 OK")
    assert c1[0].startswith(b"c1 BAD") and n[0].startswith(b"n OK")


async def test_append_of_utf8_headers_needs_enable(node: Node) -> None:
    """RFC 6855 section 4: without ENABLE UTF8=ACCEPT, an APPEND whose header fields hold
    8-bit characters MUST be NO; with it, the UTF8 data item stores the message unchanged."""
    def run() -> list[bytes]:
        c = login(node)
        out = [c.command(b"a1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(RAW), RAW))[-1]]
        # a body with 8-bit octets and an ASCII header is fine (8BITMIME content)
        plain = b"From: a@example.test\r\nSubject: x\r\n\r\nh\xc3\xa9\r\n"
        out.append(c.command(b"a2 APPEND INBOX {%d+}\r\n%s\r\n" % (len(plain), plain))[-1])
        c.command(b"e ENABLE UTF8=ACCEPT\r\n")
        out.append(c.command(b"a3 APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n" % (len(RAW), RAW))[-1])
        c.close()
        return out

    refused, plain, accepted = await asyncio.to_thread(run)
    assert refused.startswith(b"a1 NO ")
    assert plain.startswith(b"a2 OK") and accepted.startswith(b"a3 OK [APPENDUID ")
    assert await uids(node) == [1, 2]
    assert (await stored(node, 2))[0] == RAW


async def test_envelope_has_no_utf8_for_a_client_that_did_not_enable_it(node: Node) -> None:
    """RFC 6855 sections 3 and 7-8: no UTF-8 in quoted strings (nor ENVELOPE's header
    information) unless enabled: encoded words and A-labels instead (RFC 6857 section 3);
    with UTF8=ACCEPT the same ENVELOPE carries the UTF-8 as quoted strings."""
    def run() -> tuple[list[bytes], list[bytes]]:
        c = login(node)
        c.command(b"e ENABLE UTF8=ACCEPT\r\n")
        assert c.command(b"a APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n" % (len(RAW), RAW))[-1] \
            .startswith(b"a OK")
        c.command(b"s SELECT INBOX\r\n")
        modern = c.command(b"f FETCH 1 ENVELOPE\r\n")
        c.close()
        legacy = login(node)
        legacy.command(b"s SELECT INBOX\r\n")
        old = legacy.command(b"f FETCH 1 ENVELOPE\r\n")
        legacy.close()
        return modern, old

    modern, old = await asyncio.to_thread(run)
    assert '"Grüße"'.encode() in modern[0]
    assert '"jörg" "bücher.example"'.encode() in modern[0]
    line = old[0]
    assert line.isascii(), line
    subject = line.split(b"ENVELOPE (NIL \"", 1)[1].split(b'"', 1)[0].decode()
    assert str(make_header(decode_header(subject))) == "Grüße"
    assert b'"alice" "example.test"' in line


async def test_unauthenticate_forgets_utf8_accept(node: Node) -> None:
    """RFC 8437 section 3: after UNAUTHENTICATE nothing ENABLEd stays in force, so UTF-8 is
    refused in APPEND's header fields again and ENABLE lists UTF8=ACCEPT anew."""
    def run() -> list[bytes]:
        c = login(node)
        c.command(b"e1 ENABLE UTF8=ACCEPT\r\n")
        c.command(b"u UNAUTHENTICATE\r\n")
        assert c.command(b'l LOGIN alice "correct horse"\r\n')[-1].startswith(b"l OK")
        out = [c.command(b"a1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(RAW), RAW))[-1],
               c.command(b"e2 ENABLE UTF8=ACCEPT\r\n")[0]]
        c.close()
        return out

    refused, enabled = await asyncio.to_thread(run)
    assert refused.startswith(b"a1 NO ") and enabled == b"* ENABLED UTF8=ACCEPT\r\n"
