"""METADATA (RFC 5464) through a real node, raw bytes and imaplib: server and mailbox
annotations, /private and /shared, GETMETADATA's MAXSIZE and DEPTH, SETMETADATA's NIL,
the METADATA response codes, entry name checks, literals and literal8, and what RENAME,
DELETE and another account see (sections 4.1, 3.3)."""

from __future__ import annotations

import asyncio
import imaplib

from fdb_layers.mail import MAX_ANNOTATIONS, MAX_VALUE
from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context
from tests.server.imap.test_session import Raw, raw_tls

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

# imaplib sends only the commands it knows; RFC 5464 section 4: both states after login
imaplib.Commands.setdefault("GETMETADATA", ("AUTH", "SELECTED"))


def login(node: Node, user: str = "alice") -> Raw:
    c = raw_tls(node)
    assert c.line().startswith(b"* OK")
    assert c.command(f'l LOGIN {user} "{PASSWORD}"\r\n'.encode())[-1].startswith(b"l OK")
    return c


def finish(c: Raw, tag: bytes, rest: bytes) -> list[bytes]:
    """Send the rest of command ``tag`` (after a literal's continuation): its lines."""
    c.send(rest)
    out = []
    while not out or not out[-1].startswith(tag + b" "):
        line = c.line()
        assert line, out
        out.append(line)
    return out


def run(node: Node, body: object) -> object:
    return asyncio.to_thread(body)  # type: ignore[arg-type]


async def test_capability_and_server_comment(node: Node) -> None:
    """RFC 5464 section 1 (METADATA: server and mailbox annotations), 4.3 and 4.2's
    example of a server annotation (mailbox name "")."""
    def body() -> None:
        c = login(node)
        caps = c.command(b"a CAPABILITY\r\n")[0].split()
        assert b"METADATA" in caps
        out = c.command(b'b SETMETADATA "" (/shared/comment "Shared comment")\r\n')
        assert out == [b"b OK SETMETADATA completed\r\n"]
        out = c.command(b'c GETMETADATA "" /shared/comment\r\n')
        assert out == [b'* METADATA "" (/shared/comment "Shared comment")\r\n',
                       b"c OK GETMETADATA completed\r\n"]
        c.close()
    await run(node, body)


async def test_nil_for_absent_and_nil_removes(node: Node) -> None:
    """RFC 5464 section 4.3: NIL removes an entry; an entry asked for by name that does
    not exist comes back as NIL (section 4.4.1's value is an nstring)."""
    def body() -> None:
        c = login(node)
        out = c.command(b"a GETMETADATA INBOX (/private/comment /shared/comment)\r\n")
        assert out[0] == b"* METADATA INBOX (/private/comment NIL /shared/comment NIL)\r\n"
        assert c.command(b'b SETMETADATA INBOX (/private/comment "mine")\r\n')[-1] \
            .startswith(b"b OK")
        out = c.command(b"c GETMETADATA INBOX (/private/comment /shared/comment)\r\n")
        assert out[0] == b'* METADATA INBOX (/private/comment "mine" /shared/comment NIL)\r\n'
        assert c.command(b"d SETMETADATA INBOX (/private/comment NIL)\r\n")[-1] \
            .startswith(b"d OK")
        out = c.command(b"e GETMETADATA INBOX /private/comment\r\n")
        assert out[0] == b"* METADATA INBOX (/private/comment NIL)\r\n"
        # entry names are case-insensitive (section 3.2)
        assert c.command(b'f SETMETADATA inbox (/Private/Comment "x")\r\n')[-1] \
            .startswith(b"f OK")
        out = c.command(b"g GETMETADATA INBOX /PRIVATE/COMMENT\r\n")
        assert out[0] == b'* METADATA INBOX (/private/comment "x")\r\n'
        c.close()
    await run(node, body)


async def test_literal_and_literal8_values(node: Node) -> None:
    """RFC 5464 section 4.3's example (a literal with CRLF) and section 5's ``value =
    nstring / literal8``: binary values, NUL included, go back as they came."""
    def body() -> None:
        c = login(node)
        c.send(b"a SETMETADATA INBOX (/private/comment {15}\r\n")
        assert c.line().startswith(b"+ ")
        assert finish(c, b"a", b"My new\r\ncomment)\r\n")[-1].startswith(b"a OK")
        out = c.command(b"b GETMETADATA INBOX /private/comment\r\n")
        assert b"".join(out) == (b"* METADATA INBOX (/private/comment {15}\r\nMy new\r\n"
                                 b"comment)\r\nb OK GETMETADATA completed\r\n")
        blob = b"\x00\x01\xff\r\n\x00"
        out = c.command(b"c SETMETADATA INBOX (/shared/vendor/test/bin ~{6+}\r\n" + blob
                        + b")\r\n")
        assert out[-1].startswith(b"c OK")
        out = c.command(b"d GETMETADATA INBOX /shared/vendor/test/bin\r\n")
        assert b"".join(out) == (b"* METADATA INBOX (/shared/vendor/test/bin ~{6}\r\n" + blob
                                 + b")\r\nd OK GETMETADATA completed\r\n")
        c.close()
    await run(node, body)


async def test_depth(node: Node) -> None:
    """RFC 5464 section 4.2.2's example: DEPTH 1 gives the entries right below, not the
    named one when it does not exist; infinity everything below; 0 (the default) the
    entry alone."""
    def body() -> None:
        c = login(node)
        assert c.command(b'a SETMETADATA INBOX (/private/filters/values/small "By size" '
                         b'/private/filters/values/boss "By boss" '
                         b'/private/filters/values/boss/deep "deeper")\r\n')[-1] \
            .startswith(b"a OK")
        out = c.command(b"b GETMETADATA (DEPTH 1) INBOX (/private/filters/values)\r\n")
        assert out == [b'* METADATA INBOX (/private/filters/values/boss "By boss" '
                       b'/private/filters/values/small "By size")\r\n',
                       b"b OK GETMETADATA completed\r\n"]
        out = c.command(b"c GETMETADATA (DEPTH infinity) INBOX /private/filters\r\n")
        assert out[0] == (b'* METADATA INBOX (/private/filters/values/boss "By boss" '
                          b'/private/filters/values/boss/deep "deeper" '
                          b'/private/filters/values/small "By size")\r\n')
        out = c.command(b"d GETMETADATA (DEPTH 0) INBOX /private/filters/values\r\n")
        assert out[0] == b"* METADATA INBOX (/private/filters/values NIL)\r\n"
        # nothing to give: no METADATA response at all
        out = c.command(b"e GETMETADATA (DEPTH infinity) INBOX /shared/comment\r\n")
        assert out == [b"e OK GETMETADATA completed\r\n"]
        c.close()
    await run(node, body)


async def test_maxsize_and_longentries(node: Node) -> None:
    """RFC 5464 section 4.2.1: values longer than MAXSIZE are left out and the tagged OK
    carries [METADATA LONGENTRIES n], n the longest of them."""
    def body() -> None:
        c = login(node)
        assert c.command(b'a SETMETADATA INBOX (/private/short "12345" /private/long '
                         b'"1234567890" /private/longer "123456789012")\r\n')[-1] \
            .startswith(b"a OK")
        out = c.command(b"b GETMETADATA (MAXSIZE 8) INBOX (/private/short /private/long "
                        b"/private/longer)\r\n")
        assert out == [b'* METADATA INBOX (/private/short "12345")\r\n',
                       b"b OK [METADATA LONGENTRIES 12] GETMETADATA completed\r\n"]
        out = c.command(b"c GETMETADATA (MAXSIZE 12) INBOX (/private/longer /private/none)\r\n")
        assert out == [b'* METADATA INBOX (/private/longer "123456789012" /private/none NIL)'
                       b"\r\n", b"c OK GETMETADATA completed\r\n"]
        c.close()
    await run(node, body)


async def test_set_limits_are_all_or_nothing(node: Node) -> None:
    """RFC 5464 section 4.3: NO [METADATA MAXSIZE n] for a value over the limit, NO
    [METADATA TOOMANY] past the entry cap; a refused SETMETADATA sets none of its
    entries."""
    def body() -> None:
        c = login(node)
        big = b"x" * (MAX_VALUE + 1)
        c.send(b'a SETMETADATA INBOX (/private/ok "fine" /private/big {%d}\r\n' % len(big))
        assert c.line().startswith(b"+ ")
        out = finish(c, b"a", big + b")\r\n")
        assert out[-1] == b"a NO [METADATA MAXSIZE %d] Values are limited to %d octets\r\n" \
            % (MAX_VALUE, MAX_VALUE)
        out = c.command(b"b GETMETADATA INBOX /private/ok\r\n")
        assert out[0] == b"* METADATA INBOX (/private/ok NIL)\r\n"
        names = b" ".join(b'/shared/n%d "v"' % i for i in range(MAX_ANNOTATIONS))
        assert c.command(b'c SETMETADATA "" (' + names + b")\r\n")[-1].startswith(b"c OK")
        out = c.command(b'd SETMETADATA INBOX (/private/ok "fine")\r\n')
        assert out[-1].startswith(b"d NO [METADATA TOOMANY]")
        # replacing a value or removing one adds no entry
        assert c.command(b'e SETMETADATA "" (/shared/n0 "new" /shared/n1 NIL)\r\n')[-1] \
            .startswith(b"e OK")
        assert c.command(b'f SETMETADATA INBOX (/private/ok "fine")\r\n')[-1] \
            .startswith(b"f OK")
        c.close()
    await run(node, body)


async def test_invalid_entry_names_are_bad(node: Node) -> None:
    """RFC 5464 section 3.2: below /private or /shared, no "*" or "%", no "//" or trailing
    "/", US-ASCII without 0x00-0x19; an invalid name is a BAD."""
    def body() -> None:
        c = login(node)
        for i, name in enumerate([b"/private/a*b", b'"/shared/50%"', b"/private//x",
                                  b"/private/x/", b"/other/x", b"comment", b"/privatex/y",
                                  b'"/shared/tab\tx"', b"{13}\r\n/shared/\xc3\xa9t\xc3\xa9"]):
            tag = b"g%d" % i
            if name.startswith(b"{"):
                head, literal = name.split(b"\r\n")
                c.send(tag + b" GETMETADATA INBOX " + head + b"\r\n")
                assert c.line().startswith(b"+ ")
                out = finish(c, tag, literal + b"\r\n")
            else:
                out = c.command(tag + b" GETMETADATA INBOX " + name + b"\r\n")
            assert out[-1].startswith(tag + b" BAD"), (name, out)
            out = c.command(b"s%d SETMETADATA INBOX (/shared/ok NIL %s NIL)\r\n" % (i, name)
                            if not name.startswith(b"{") else b"s%d NOOP\r\n" % i)
            assert name.startswith(b"{") or out[-1].startswith(b"s%d BAD" % i), (name, out)
        # at least two components, four under vendor (section 3.2)
        for tag, name in ((b"r1", b"/shared"), (b"r2", b"/private"),
                          (b"r3", b"/shared/vendor/example.com")):
            out = c.command(tag + b" GETMETADATA (DEPTH infinity) INBOX " + name + b"\r\n")
            assert out[-1].startswith(tag + b" BAD"), (name, out)
        out = c.command(b'y GETMETADATA "" (/private/vendor/example.com/ok)\r\n')
        assert out[-1].startswith(b"y OK")
        c.close()
    await run(node, body)


async def test_missing_mailbox_and_state(node: Node) -> None:
    """A mailbox that does not exist: NO [NONEXISTENT] (RFC 9051 section 7.1); both
    commands belong to the authenticated and selected states (RFC 5464 section 4)."""
    def body() -> None:
        c = raw_tls(node)
        c.line()
        out = c.command(b'a GETMETADATA "" /shared/comment\r\n')
        assert out[-1].startswith(b"a BAD")
        c.command(f'l LOGIN alice "{PASSWORD}"\r\n'.encode())
        out = c.command(b"b GETMETADATA nosuch /shared/comment\r\n")
        assert out[-1].startswith(b"b NO [NONEXISTENT]")
        out = c.command(b'c SETMETADATA nosuch (/shared/comment "x")\r\n')
        assert out[-1].startswith(b"c NO [NONEXISTENT]")
        assert c.command(b"d SELECT INBOX\r\n")[-1].startswith(b"d OK")
        out = c.command(b'e SETMETADATA INBOX (/shared/comment "in selected")\r\n')
        assert out[-1].startswith(b"e OK")
        c.close()
    await run(node, body)


async def test_rename_keeps_delete_drops_accounts_apart(node: Node) -> None:
    """RFC 5464 section 4.1: a renamed mailbox keeps its annotations, a deleted one loses
    them (a new mailbox of the same name starts empty); another account sees neither
    alice's server annotations nor her mailboxes'."""
    def body() -> None:
        c = login(node)
        assert c.command(b"a CREATE Work\r\n")[-1].startswith(b"a OK")
        assert c.command(b'b SETMETADATA Work (/private/comment "w")\r\n')[-1] \
            .startswith(b"b OK")
        assert c.command(b'c SETMETADATA "" (/private/comment "alice")\r\n')[-1] \
            .startswith(b"c OK")
        assert c.command(b"d RENAME Work Play\r\n")[-1].startswith(b"d OK")
        out = c.command(b"e GETMETADATA Play /private/comment\r\n")
        assert out[0] == b'* METADATA Play (/private/comment "w")\r\n'
        assert c.command(b"f DELETE Play\r\n")[-1].startswith(b"f OK")
        assert c.command(b"g CREATE Play\r\n")[-1].startswith(b"g OK")
        out = c.command(b"h GETMETADATA Play /private/comment\r\n")
        assert out[0] == b"* METADATA Play (/private/comment NIL)\r\n"
        c.close()
        bob = imaplib.IMAP4_SSL("127.0.0.1", node.ports["imaps"],
                                ssl_context=tls_client_context(), timeout=30)
        bob.login("bob", PASSWORD)
        typ, data = bob._simple_command("GETMETADATA", '""', "/private/comment")
        assert typ == "OK"
        assert bob._untagged_response(typ, data, "METADATA")[1] == \
            [b'"" (/private/comment NIL)']
        bob.logout()
    await run(node, body)


async def test_specialuse_is_read_only(node: Node) -> None:
    """RFC 6154 section 4: /private/specialuse gives a special-use mailbox's attribute;
    it is read-only here, as the server's /shared/admin is."""
    def body() -> None:
        c = login(node)
        out = c.command(b"a GETMETADATA Sent /private/specialuse\r\n")
        assert out[0] == b'* METADATA Sent (/private/specialuse "\\\\Sent")\r\n'
        out = c.command(b"b GETMETADATA (DEPTH 1) Sent /private/specialuse\r\n")
        assert out[0] == b'* METADATA Sent (/private/specialuse "\\\\Sent")\r\n'
        out = c.command(b"c GETMETADATA INBOX /private/specialuse\r\n")
        assert out[0] == b"* METADATA INBOX (/private/specialuse NIL)\r\n"
        out = c.command(b'd SETMETADATA Sent (/private/specialuse "\\\\Junk")\r\n')
        assert out[-1].startswith(b"d NO [CANNOT]")
        # RFC 5464 section 3.2.1.1: the server's /shared/admin is always read-only
        out = c.command(b'e SETMETADATA "" (/shared/admin "mailto:me@example.test")\r\n')
        assert out[-1].startswith(b"e NO")
        c.close()
    await run(node, body)


async def test_rename_of_inbox_copies(node: Node) -> None:
    """RFC 5464 section 4.1: RENAME INBOX copies INBOX's annotations to the new mailbox;
    INBOX keeps them."""
    def body() -> None:
        c = login(node)
        assert c.command(b'a SETMETADATA INBOX (/shared/comment "in")\r\n')[-1] \
            .startswith(b"a OK")
        assert c.command(b"b RENAME INBOX Old\r\n")[-1].startswith(b"b OK")
        for tag, box in ((b"c", b"INBOX"), (b"d", b"Old")):
            out = c.command(tag + b" GETMETADATA " + box + b" /shared/comment\r\n")
            assert out[0] == b'* METADATA ' + box + b' (/shared/comment "in")\r\n'
        c.close()
    await run(node, body)
