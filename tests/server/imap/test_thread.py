"""THREAD and UID THREAD (RFC 5256 §3): the REFERENCES and ORDEREDSUBJECT algorithms on
built messages (dummies, pruning, subject merging, loops, duplicates, deep chains), and the
command through a real node with exact responses and imapclient's ``thread``."""

from __future__ import annotations

import asyncio

from imapclient import IMAPClient

from fdb_layers.mail import Email, Message
from server.imap.session.search import Candidate
from server.imap.session.thread import ordered_subject, references
from server.imap.wire.responses import ThreadData
from server.mime import parse_message
from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.test_search import Box, answer, box, login

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

__all__ = ["box"]  # the fixture


def cand(seq: int, subject: str, mid: str | None = None, refs: str = "",
         in_reply_to: str = "", day: int | None = None) -> Candidate:
    """Message ``seq`` sent on January ``day`` (default: ``seq``) of 2024."""
    head = f"Subject: {subject}\r\nDate: {day or seq} Jan 2024 10:00:00 +0000\r\n"
    if mid:
        head += f"Message-ID: <{mid}>\r\n"
    if refs:
        head += f"References: {refs}\r\n"
    if in_reply_to:
        head += f"In-Reply-To: {in_reply_to}\r\n"
    raw = (head + "\r\nbody\r\n").encode()
    email = Email(f"e{seq}", "blob", len(raw), 0.0, "t", (), {}, 1)
    return Candidate(seq, Message(seq, f"e{seq}", 1, ()), email, parse_message(raw))


def render(trees: list) -> bytes:  # type: ignore[type-arg]
    return ThreadData(tuple(trees)).render()


def test_references_links_by_references_and_in_reply_to() -> None:
    """§3 step 1: References, else the first In-Reply-To id; the last one is the parent."""
    found = [
        cand(1, "a", "1@x"),
        cand(2, "Re: a", "2@x", refs="<1@x>"),
        cand(3, "Re: a", "3@x", refs="<1@x> <2@x>"),
        cand(4, "b", "4@x"),
        cand(5, "Re: a", "5@x", in_reply_to="<1@x> <4@x>"),
    ]
    assert render(references(found)) == b"* THREAD (1 (2 3)(5))(4)\r\n"


def test_references_dummies_are_pruned_or_kept() -> None:
    """§3 step 4: a missing parent of one message disappears; of two at the top it stays."""
    found = [
        cand(1, "one", "1@x", refs="<gone@x>"),
        cand(2, "two", "2@x", refs="<lost@x>"),
        cand(3, "three", "3@x", refs="<lost@x>"),
    ]
    assert render(references(found)) == b"* THREAD (1)((2)(3))\r\n"


def test_references_merges_by_base_subject() -> None:
    """§3 step 6: a reply subject goes under the original; two originals share a dummy;
    an empty subject is never merged."""
    found = [
        cand(1, "Hello", "1@x"),
        cand(2, "Re: hello", "2@x"),
        cand(3, "Hi", "3@x"),
        cand(4, "Hi", "4@x"),
        cand(5, "", "5@x"),
        cand(6, "", "6@x"),
    ]
    assert render(references(found)) == b"* THREAD (1 2)((3)(4))(5)(6)\r\n"


def test_references_sorts_by_sent_date() -> None:
    """§3 steps 5 and 7: siblings and roots by sent date, ties by sequence number."""
    found = [
        cand(1, "late", "1@x", day=20),
        cand(2, "x", "2@x", refs="<1@x>", day=25),
        cand(3, "y", "3@x", refs="<1@x>", day=21),
        cand(4, "early", "4@x", day=2),
        cand(5, "tie", "5@x", day=2),
    ]
    assert render(references(found)) == b"* THREAD (4)(5)(1 (3)(2))\r\n"


def test_references_survives_loops_duplicates_and_deep_chains() -> None:
    loop = [cand(1, "a", "a@x", refs="<b@x>"), cand(2, "b", "b@x", refs="<a@x>")]
    # 1 made b@x its parent; 2 (b@x) replying to 1 would close a loop: the link is not made
    assert render(references(loop)) == b"* THREAD (2 1)\r\n"
    dup = [cand(1, "a", "same@x"), cand(2, "b", "same@x"), cand(3, "c", "3@x", refs="<same@x>")]
    assert render(references(dup)) == b"* THREAD (1 3)(2)\r\n"
    chain = [cand(1, "deep", "m1@x", day=1)]
    chain += [cand(n, "deep", f"m{n}@x", refs=f"<m{n - 1}@x>", day=1) for n in range(2, 3001)]
    out = render(references(chain))
    assert out.startswith(b"* THREAD (1 2 3 ") and out.endswith(b" 3000)\r\n")


def test_ordered_subject() -> None:
    """§3 ORDEREDSUBJECT: groups by base subject, each thread's first message the parent
    of the rest, threads by the date of their first message."""
    found = [
        cand(1, "Re: lunch", day=5),
        cand(2, "Lunch", day=3),
        cand(3, "Report", day=1),
        cand(4, "[list] Fwd: lunch", day=4),
    ]
    assert render(ordered_subject(found)) == b"* THREAD (3)(2 (4)(1))\r\n"


async def test_thread_command(box: Box) -> None:
    """M2 replies to M1 but was sent before it; M3 has no Date (its internal date counts)."""
    def run() -> None:
        c = login(box.node)
        assert answer(c, b"t THREAD REFERENCES UTF-8 ALL")[0] == [b"* THREAD (1 2)(3)(4)\r\n"]
        assert answer(c, b"t THREAD ORDEREDSUBJECT UTF-8 ALL")[0] == [
            b"* THREAD (2 1)(3)(4)\r\n"]
        assert answer(c, b"t UID THREAD REFERENCES US-ASCII UNDELETED")[0] == [
            b"* THREAD (1 2)(4)\r\n"]
        assert answer(c, b"t THREAD REFERENCES UTF-8 KEYWORD none")[0] == [b"* THREAD\r\n"]
        for bad in (b"b THREAD NOSUCH UTF-8 ALL", b"b THREAD REFERENCES UTF-8",
                    b"b THREAD REFERENCES UTF-8 (ALL"):
            assert answer(c, bad)[1].startswith(b"b BAD"), bad
        assert answer(c, b"n THREAD REFERENCES KOI8-R ALL")[1].startswith(
            b"n NO [BADCHARSET (UTF-8 US-ASCII)]")
        assert answer(c, b"t THREAD REFERENCES UTF-8 SEEN")[0] == [b"* THREAD (1)\r\n"]
        c.close()
    await asyncio.to_thread(run)


async def test_imapclient_thread(box: Box) -> None:
    def run() -> None:
        c = IMAPClient("127.0.0.1", port=box.node.ports["imaps"], ssl=True,
                       ssl_context=tls_client_context(), timeout=30)
        c.login("alice", PASSWORD)
        caps = c.capabilities()
        assert b"THREAD=REFERENCES" in caps and b"THREAD=ORDEREDSUBJECT" in caps
        c.select_folder("INBOX")
        assert c.thread() == ((1, 2), (3,), (4,))
        assert c.thread("ORDEREDSUBJECT") == ((2, 1), (3,), (4,))
        c.logout()
    await asyncio.to_thread(run)
