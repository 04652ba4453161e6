"""LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE and CREATE-SPECIAL-USE
(RFC 6154) and mailbox names in modified UTF-7 / UTF-8 (RFC 9051 section 5.1) with raw
commands through a real node, checking exact responses."""

from __future__ import annotations

import asyncio
import re

from imapclient import IMAPClient

from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.test_session import Raw, raw_tls

TREE = ("Fruit", "Fruit/Apple", "Fruit/Banana", "Tofu", "Vegetable", "Vegetable/Broccoli")
SUBSCRIBED = ("Fruit/Banana", "Tofu", "Vegetable")


def _session(node: Node) -> Raw:
    c = raw_tls(node)
    c.line()
    assert c.command(b'l LOGIN alice "correct horse"\r\n')[-1].startswith(b"l OK")
    for name in TREE:
        assert c.command(f'c CREATE "{name}"\r\n'.encode())[-1].startswith(b"c OK")
    for name in SUBSCRIBED:
        assert c.command(f'c SUBSCRIBE "{name}"\r\n'.encode())[-1].startswith(b"c OK")
    return c


def _mine(out: list[bytes]) -> list[bytes]:
    """The LIST/STATUS lines about the test's tree."""
    return [line for line in out[:-1]
            if any(n.encode() in line.rstrip(b"\r\n").split(b" ") for n in TREE)]


async def test_selection_options(node: Node) -> None:
    def run() -> None:
        c = _session(node)
        out = c.command(b'a LIST (SUBSCRIBED) "" "*"\r\n')
        assert out[-1] == b"a OK LIST completed\r\n"
        assert _mine(out) == [
            b'* LIST (\\HasNoChildren \\Subscribed) "/" Fruit/Banana\r\n',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" Tofu\r\n',
            b'* LIST (\\HasChildren \\Subscribed) "/" Vegetable\r\n',
        ]
        # RFC 5258 section 3.5: Fruit is not subscribed, but a child is
        out = c.command(b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"\r\n')
        assert _mine(out) == [
            b'* LIST (\\HasChildren) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))\r\n',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" Tofu\r\n',
            b'* LIST (\\HasChildren \\Subscribed) "/" Vegetable\r\n',
        ]
        # REMOTE changes nothing here (every mailbox is local, section 3.1)
        out2 = c.command(b'a LIST (REMOTE SUBSCRIBED RECURSIVEMATCH) "" "%"\r\n')
        assert _mine(out2) == _mine(out)
        # RETURN (SUBSCRIBED) marks without selecting; multiple patterns (section 3)
        out = c.command(b'a LIST "" ("Tofu" "Fruit/%") RETURN (SUBSCRIBED CHILDREN)\r\n')
        assert _mine(out) == [
            b'* LIST (\\HasNoChildren) "/" Fruit/Apple\r\n',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" Fruit/Banana\r\n',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" Tofu\r\n',
        ]
        c.close()
    await asyncio.to_thread(run)


async def test_bad_options(node: Node) -> None:
    def run() -> None:
        c = _session(node)
        for cmd in (b'LIST (RECURSIVEMATCH) "" "*"',            # RFC 5258 section 3.1
                    b'LIST (REMOTE RECURSIVEMATCH) "" "*"',
                    b'LIST (NOSUCHOPTION) "" "*"',
                    b'LIST "" "*" RETURN (NOSUCHOPTION)',
                    b'LIST "" "*" RETURN (STATUS (NOSUCHITEM))',
                    b'LIST "" "*" RETURN (STATUS ())'):
            out = c.command(b"b " + cmd + b"\r\n")
            assert out[-1].startswith(b"b BAD") and len(out) == 1, (cmd, out)
        assert c.command(b"n NOOP\r\n")[-1].startswith(b"n OK")
        c.close()
    await asyncio.to_thread(run)


async def test_list_status(node: Node) -> None:
    def run() -> None:
        c = _session(node)
        out = c.command(b'a LIST "" "Fruit*" RETURN (STATUS (MESSAGES UIDNEXT UNSEEN))\r\n')
        # RFC 5819 section 2: each STATUS follows its LIST
        assert _mine(out) == [
            b'* LIST (\\HasChildren) "/" Fruit\r\n',
            b'* STATUS Fruit (MESSAGES 0 UIDNEXT 1 UNSEEN 0)\r\n',
            b'* LIST (\\HasNoChildren) "/" Fruit/Apple\r\n',
            b'* STATUS Fruit/Apple (MESSAGES 0 UIDNEXT 1 UNSEEN 0)\r\n',
            b'* LIST (\\HasNoChildren) "/" Fruit/Banana\r\n',
            b'* STATUS Fruit/Banana (MESSAGES 0 UIDNEXT 1 UNSEEN 0)\r\n',
        ]
        c.close()
    await asyncio.to_thread(run)


async def test_special_use_selection_and_create_special_use(node: Node) -> None:
    def run() -> None:
        c = raw_tls(node)
        c.line()
        c.command(b'l LOGIN alice "correct horse"\r\n')
        out = c.command(b'a LIST (SPECIAL-USE) "" "*"\r\n')
        listed = sorted(out[:-1])
        assert listed == sorted([
            b'* LIST (\\HasNoChildren \\Archive) "/" Archive\r\n',
            b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts\r\n',
            b'* LIST (\\HasNoChildren \\Junk) "/" Junk\r\n',
            b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n',
            b'* LIST (\\HasNoChildren \\Trash) "/" Trash\r\n',
        ]), out
        # RFC 6154 section 3: the role exists already / unknown / several -> NO [USEATTR]
        for use in (b"\\Sent", b"\\Flagged", b"\\Sent \\Drafts", b"\\Nonsense"):
            out = c.command(b"c CREATE MySent (USE (" + use + b"))\r\n")
            assert out[-1].startswith(b"c NO [USEATTR]"), (use, out)
        assert c.command(b'a LIST "" "MySent"\r\n') == [b"a OK LIST completed\r\n"]
        assert c.command(b"d DELETE Archive\r\n")[-1].startswith(b"d OK")
        out = c.command(b'c CREATE "Old/Archived" (USE (\\Archive))\r\n')
        # RFC 8474 section 4.1: CREATE's OK names the new mailbox's id
        assert len(out) == 1 and re.fullmatch(
            rb"c OK \[MAILBOXID \([A-Za-z0-9_-]+\)\] CREATE completed\r\n", out[0]), out
        out = c.command(b'a LIST "" "Old*"\r\n')
        assert out[:-1] == [b'* LIST (\\HasChildren) "/" Old\r\n',
                            b'* LIST (\\HasNoChildren \\Archive) "/" Old/Archived\r\n']
        # RFC 8457 section 3: \Important, a special use no account is made with
        assert c.command(b"c CREATE Keep (USE (\\Important))\r\n")[-1].startswith(b"c OK")
        out = c.command(b'a LIST "" "Keep"\r\n')
        assert out[:-1] == [b'* LIST (\\HasNoChildren \\Important) "/" Keep\r\n'], out
        c.close()
    await asyncio.to_thread(run)


async def test_names_are_utf7_for_rev1_and_utf8_after_enable(node: Node) -> None:
    def run() -> None:
        c = raw_tls(node)
        c.line()
        c.command(b'l LOGIN alice "correct horse"\r\n')
        assert c.command(b'c CREATE "Caf&AOk-"\r\n')[-1].startswith(b"c OK")
        out = c.command(b'a LIST "" "Caf*"\r\n')
        assert out[0] == b'* LIST (\\HasNoChildren) "/" Caf&AOk-\r\n'
        c.command(b"e ENABLE IMAP4rev2\r\n")
        out = c.command(b'a LIST "" "Caf*"\r\n')
        assert out[0] == '* LIST (\\HasNoChildren) "/" "Café"\r\n'.encode()
        out = c.command('a LIST "" "Café" RETURN (STATUS (MESSAGES))\r\n'.encode())
        assert out[1] == '* STATUS "Café" (MESSAGES 0)\r\n'.encode()
        c.close()
        # imapclient decodes modified UTF-7 itself
        ic = IMAPClient("127.0.0.1", port=node.ports["imaps"], ssl=True,
                        ssl_context=tls_client_context(), timeout=30)
        ic.login("alice", PASSWORD)
        assert "Café" in [name for _, _, name in ic.list_folders()]
        ic.logout()
    await asyncio.to_thread(run)
