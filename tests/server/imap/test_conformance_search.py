"""Conformance: SEARCH results (RFC 9051 section 6.4.4, 7.3.4; RFC 3501 section 7.2.5),
ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and the charsets (RFC 9051 section 6.4.4,
BADCHARSET) on raw connections to a real node."""

from __future__ import annotations

import asyncio

from server.node.node import Node
from tests.server.imap.mutating import fill, login
from tests.server.imap.test_session import Raw

UTF8_MESSAGE = ("From: a@example.test\r\nSubject: =?UTF-8?Q?caf=C3=A9_cr=C3=A8me?=\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\nna\u00efve body\r\n").encode()


def _selected(node: Node, rev2: bool = False) -> Raw:
    c = login(node)
    if rev2:
        assert c.command(b"e1 ENABLE IMAP4rev2\r\n")[-1].startswith(b"e1 OK")
    assert c.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
    return c


async def test_esearch_result_options_and_empty_results(node: Node) -> None:
    """RFC 4731 section 3.1 / RFC 9051 section 7.3.4: MIN MAX COUNT ALL, in the order the
    server chooses, the UID marker for UID SEARCH; with no match MIN, MAX and ALL are left
    out (COUNT 0 stays), the response still names its tag."""
    await fill(node, 5)

    def run() -> None:
        c = _selected(node)
        out = c.command(b"a1 SEARCH RETURN (MIN MAX COUNT ALL) 2:4\r\n")
        assert out[0].startswith(b'* ESEARCH (TAG "a1") ')
        words = out[0][len(b'* ESEARCH (TAG "a1") '):].split()
        pairs = dict(zip(words[::2], words[1::2], strict=True))
        assert pairs == {b"MIN": b"2", b"MAX": b"4", b"COUNT": b"3", b"ALL": b"2:4"}
        assert c.command(b"a2 SEARCH RETURN () 1:2\r\n")[0] == b'* ESEARCH (TAG "a2") ALL 1:2\r\n'
        assert c.command(b"a3 SEARCH RETURN (ALL) 99\r\n")[0] == b'* ESEARCH (TAG "a3")\r\n'
        assert c.command(b"a4 UID SEARCH RETURN (MIN MAX ALL) 99\r\n")[0] == \
            b'* ESEARCH (TAG "a4") UID\r\n'
        assert c.command(b"a5 UID SEARCH RETURN (COUNT) 99\r\n")[0] == \
            b'* ESEARCH (TAG "a5") UID COUNT 0\r\n'
        # IMAP4rev1 SEARCH without RETURN stays "* SEARCH", also when empty
        assert c.command(b"a6 SEARCH 99\r\n")[0] == b"* SEARCH\r\n"
        c.close()
    await asyncio.to_thread(run)


async def test_rev2_search_answers_esearch(node: Node) -> None:
    """RFC 9051 section 6.4.4: after ENABLE IMAP4rev2 SEARCH answers ESEARCH (ALL when
    no RETURN is given), never ``* SEARCH``."""
    await fill(node, 3)

    def run() -> None:
        c = _selected(node, rev2=True)
        assert c.command(b"a1 SEARCH 2:3\r\n")[0] == b'* ESEARCH (TAG "a1") ALL 2:3\r\n'
        assert c.command(b"a2 SEARCH 99\r\n")[:-1] == [b'* ESEARCH (TAG "a2")\r\n']
        assert c.command(b"a3 UID SEARCH ALL\r\n")[0] == b'* ESEARCH (TAG "a3") UID ALL 1:3\r\n'
        c.close()
    await asyncio.to_thread(run)


async def test_saved_result_names_messages_in_fetch_store_and_copy(node: Node) -> None:
    """RFC 5182 section 2.1: after RETURN (SAVE), ``$`` stands for the saved result in
    FETCH, STORE, COPY and their UID forms; an expunged message drops out of it; an empty
    ``$`` names nothing and is not an error (section 2.1)."""
    await fill(node, 4)

    def run() -> None:
        c = _selected(node)
        assert c.command(b"a1 SEARCH RETURN (SAVE) 2:3\r\n") == [b"a1 OK SEARCH completed\r\n"]
        assert c.command(b"f1 FETCH $ (UID)\r\n") == [
            b"* 2 FETCH (UID 2)\r\n", b"* 3 FETCH (UID 3)\r\n", b"f1 OK FETCH completed\r\n"]
        assert c.command(b"f2 UID FETCH $ (FLAGS)\r\n")[:-1] == [
            b"* 2 FETCH (UID 2 FLAGS ())\r\n", b"* 3 FETCH (UID 3 FLAGS ())\r\n"]
        out = c.command(b"t1 STORE $ +FLAGS (\\Deleted)\r\n")
        assert out == [b"* 2 FETCH (FLAGS (\\Deleted))\r\n", b"* 3 FETCH (FLAGS (\\Deleted))\r\n",
                       b"t1 OK STORE completed\r\n"], out
        out = c.command(b"c1 COPY $ Sent\r\n")
        assert out[-1].startswith(b"c1 OK [COPYUID ") and b" 2:3 " in out[-1], out
        assert c.command(b"x1 UID EXPUNGE 2\r\n")[:-1] == [b"* 2 EXPUNGE\r\n"]
        assert c.command(b"f3 FETCH $ (UID)\r\n")[:-1] == [b"* 2 FETCH (UID 3)\r\n"]
        assert c.command(b"a2 SEARCH RETURN (SAVE) 99\r\n")[-1].startswith(b"a2 OK")
        assert c.command(b"f4 FETCH $ (UID)\r\n") == [b"f4 OK FETCH completed\r\n"]
        out = c.command(b"t2 UID STORE $ +FLAGS (\\Seen)\r\n")
        assert len(out) == 1 and out[0].startswith(b"t2 OK"), out
        c.close()
    await asyncio.to_thread(run)


async def test_unknown_charset_is_badcharset_with_the_supported_list(node: Node) -> None:
    """RFC 9051 section 6.4.4: an unsupported CHARSET fails with NO [BADCHARSET] that
    lists the supported charsets (section 7.1); UTF-8 and US-ASCII are supported."""
    await fill(node, 1)

    def run() -> None:
        c = _selected(node)
        out = c.command(b"a1 SEARCH CHARSET KOI8-R TEXT hello\r\n")
        assert out[-1].startswith(b"a1 NO [BADCHARSET (")
        listed = out[-1].split(b"(", 1)[1].split(b")", 1)[0].split()
        assert {b"UTF-8", b"US-ASCII"} <= set(listed)
        for tag, charset in ((b"a2", b"UTF-8"), (b"a3", b'"utf-8"'), (b"a4", b"US-ASCII")):
            out = c.command(tag + b" SEARCH CHARSET " + charset + b" ALL\r\n")
            assert out == [b"* SEARCH 1\r\n", tag + b" OK SEARCH completed\r\n"], out
        c.close()
    await asyncio.to_thread(run)


async def test_utf8_search_strings_match_decoded_headers_and_bodies(node: Node) -> None:
    """RFC 9051 section 6.4.4: strings are in the given charset (UTF-8) and match
    case-insensitively the decoded header (encoded words, RFC 2047) and body text."""
    def run() -> None:
        c = _selected(node)
        out = c.command(b"p1 APPEND INBOX {%d+}\r\n" % len(UTF8_MESSAGE) + UTF8_MESSAGE + b"\r\n")
        assert out[-1].startswith(b"p1 OK")
        for tag, key in ((b"a1", "SUBJECT café"), (b"a2", "SUBJECT CAFÉ CRÈME"),
                         (b"a3", "BODY naïve"), (b"a4", "TEXT crème")):
            word, text = key.split(" ", 1)
            data = text.encode()
            cmd = tag + b" SEARCH CHARSET UTF-8 " + word.encode() + b" {%d+}\r\n" % len(data) \
                + data + b"\r\n"
            assert c.command(cmd) == [b"* SEARCH 1\r\n", tag + b" OK SEARCH completed\r\n"], key
        data = "thé".encode()
        cmd = b"a5 SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n" % len(data) + data + b"\r\n"
        assert c.command(cmd)[0] == b"* SEARCH\r\n"
        c.close()
    await asyncio.to_thread(run)


async def test_charset_labels_conflict_after_enable_utf8_accept(node: Node) -> None:
    """RFC 6855 section 3 with its verified erratum 4029: once UTF8=ACCEPT is enabled, a
    SEARCH with a charset SHOULD be BAD, and for SORT and THREAD, whose charset is
    mandatory, any value but UTF-8 SHOULD be BAD; before ENABLE, US-ASCII is fine (RFC
    5256 section 3 requires US-ASCII and UTF-8)."""
    await fill(node, 2)

    def run() -> None:
        c = login(node)
        assert c.command(b"s0 SELECT INBOX\r\n")[-1].startswith(b"s0 OK")
        assert c.command(b"o1 SORT (DATE) US-ASCII ALL\r\n")[-2:] == [
            b"* SORT 1 2\r\n", b"o1 OK SORT completed\r\n"]
        assert c.command(b"t1 THREAD REFERENCES US-ASCII ALL\r\n")[-1].startswith(b"t1 OK")
        assert c.command(b"u0 UNSELECT\r\n")[-1].startswith(b"u0 OK")
        assert c.command(b"e1 ENABLE UTF8=ACCEPT\r\n")[0] == b"* ENABLED UTF8=ACCEPT\r\n"
        assert c.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
        for tag, command in ((b"q1", b"SEARCH CHARSET US-ASCII ALL"),
                             (b"q2", b"SEARCH RETURN (COUNT) CHARSET UTF-8 ALL"),
                             (b"o2", b"SORT (DATE) US-ASCII ALL"),
                             (b"o3", b"UID SORT (ARRIVAL) us-ascii ALL"),
                             (b"t2", b"THREAD REFERENCES US-ASCII ALL"),
                             (b"t3", b"UID THREAD ORDEREDSUBJECT US-ASCII ALL")):
            out = c.command(tag + b" " + command + b"\r\n")
            assert out[-1].startswith(tag + b" BAD"), (command, out)
        assert c.command(b"o4 SORT (DATE) UTF-8 ALL\r\n")[-2:] == [
            b"* SORT 1 2\r\n", b"o4 OK SORT completed\r\n"]
        assert c.command(b"t4 THREAD REFERENCES utf-8 ALL\r\n")[-1].startswith(b"t4 OK")
        assert c.command(b"q3 SEARCH ALL\r\n")[-2:] == [b"* SEARCH 1 2\r\n",
                                                          b"q3 OK SEARCH completed\r\n"]
        c.close()
    await asyncio.to_thread(run)
