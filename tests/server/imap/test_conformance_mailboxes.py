"""Conformance: mailbox names and the mailbox commands' corner cases, on raw connections to
a real node (RFC 9051 sections 5.1, 6.3.4-6.3.9; RFC 3501 sections 5.1.3, 6.3.9; RFC 6855
section 3)."""

from __future__ import annotations

import asyncio

from server.node.node import Node
from tests.server.imap.mutating import fill, login
from tests.server.imap.test_conformance_responses import _listed


async def test_lsub_percent_lists_an_unsubscribed_superior_as_noselect(node: Node) -> None:
    """RFC 3501 section 6.3.9: "foo/bar" subscribed and "foo" not: LSUB with ``%`` must
    return "foo", flagged \\Noselect, and not "foo/bar"; ``*`` returns the subscribed name
    itself."""
    def run() -> None:
        c = login(node)
        assert c.command(b"c1 CREATE top/mid/leaf\r\n")[-1].startswith(b"c1 OK")
        assert c.command(b"s1 SUBSCRIBE top/mid/leaf\r\n")[-1].startswith(b"s1 OK")
        assert c.command(b'l1 LSUB "" "top/%"\r\n') == [
            b'* LSUB (\\Noselect) "/" top/mid\r\n', b"l1 OK LSUB completed\r\n"]
        assert c.command(b'l2 LSUB "" "%"\r\n')[:-1] == [
            b'* LSUB () "/" Archive\r\n', b'* LSUB () "/" Drafts\r\n', b'* LSUB () "/" INBOX\r\n',
            b'* LSUB () "/" Junk\r\n', b'* LSUB () "/" Sent\r\n', b'* LSUB () "/" Trash\r\n',
            b'* LSUB (\\Noselect) "/" top\r\n']
        assert c.command(b'l3 LSUB "" "top/*"\r\n') == [
            b'* LSUB () "/" top/mid/leaf\r\n', b"l3 OK LSUB completed\r\n"]
        # a subscribed superior is listed as itself, once
        assert c.command(b"s2 SUBSCRIBE top/mid\r\n")[-1].startswith(b"s2 OK")
        assert c.command(b'l4 LSUB "" "top/%"\r\n') == [
            b'* LSUB () "/" top/mid\r\n', b"l4 OK LSUB completed\r\n"]
        c.close()
    await asyncio.to_thread(run)


async def test_rename_inbox_moves_its_messages_and_keeps_its_children(node: Node) -> None:
    """RFC 9051 section 6.3.6: renaming INBOX moves its messages to the new name and leaves
    INBOX empty; inferior names of INBOX are unaffected.  INBOX in any case (5.1)."""
    await fill(node, 3)

    def run() -> None:
        c = login(node)
        assert c.command(b"c1 CREATE INBOX/kid\r\n")[-1].startswith(b"c1 OK")
        assert c.command(b"r1 RENAME inbox saved\r\n")[-1].startswith(b"r1 OK")
        assert c.command(b"t1 STATUS INBOX (MESSAGES)\r\n")[0] == \
            b"* STATUS INBOX (MESSAGES 0)\r\n"
        assert c.command(b"t2 STATUS saved (MESSAGES)\r\n")[0] == \
            b"* STATUS saved (MESSAGES 3)\r\n"
        listed = _listed(c.command(b'l1 LIST "" "*"\r\n'))
        assert {b"INBOX", b"INBOX/kid", b"saved"} <= set(listed)
        assert not any(name.startswith(b"saved/") for name in listed)
        assert c.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
        c.close()
    await asyncio.to_thread(run)


async def test_inbox_is_case_insensitive_also_as_a_superior(node: Node) -> None:
    """RFC 9051 section 5.1: "INBOX" in any case is INBOX, also in ``inbox/child``; other
    names are case-sensitive."""
    def run() -> None:
        c = login(node)
        assert c.command(b"c1 CREATE inbox/Child\r\n")[-1].startswith(b"c1 OK")
        assert set(_listed(c.command(b'l1 LIST "" "INBOX/*"\r\n'))) == {b"INBOX/Child"}
        out = c.command(b"t1 STATUS InBoX/Child (MESSAGES)\r\n")
        assert out[0] == b"* STATUS INBOX/Child (MESSAGES 0)\r\n", out
        assert c.command(b"t2 STATUS inbox/child (MESSAGES)\r\n")[-1].startswith(
            b"t2 NO [NONEXISTENT]")
        assert c.command(b"c2 CREATE Inbox\r\n")[-1].startswith(b"c2 NO [ALREADYEXISTS]")
        c.close()
    await asyncio.to_thread(run)


async def test_create_with_a_trailing_delimiter(node: Node) -> None:
    """RFC 9051 section 6.3.4: a trailing delimiter says the client means to create names
    under it; the server creates the name without it (and its missing superiors)."""
    def run() -> None:
        c = login(node)
        assert c.command(b"c1 CREATE a/b/\r\n")[-1].startswith(b"c1 OK")
        listed = _listed(c.command(b'l1 LIST "" "a*"\r\n'))
        assert set(listed) == {b"a", b"a/b"}
        assert c.command(b"c2 CREATE a/b\r\n")[-1].startswith(b"c2 NO [ALREADYEXISTS]")
        assert c.command(b"c3 CREATE a//b\r\n")[-1].startswith(b"c3 NO")
        c.close()
    await asyncio.to_thread(run)


async def test_names_are_modified_utf7_for_rev1_and_utf8_after_enable(node: Node) -> None:
    """RFC 3501 section 5.1.3: an IMAP4rev1 client names mailboxes in modified UTF-7 and
    gets them back so; after ENABLE UTF8=ACCEPT (RFC 6855 section 3) or IMAP4rev2 (RFC
    9051 section 5.1) the same mailbox is a UTF-8 quoted string.  Invalid modified UTF-7
    is refused."""
    def run() -> None:
        old = login(node)
        assert old.command(b"c1 CREATE &AOk-t&AOk-/&ZeVnLIqe-\r\n")[-1].startswith(b"c1 OK")
        assert set(_listed(old.command(b'l1 LIST "" "&AOk-*"\r\n'))) == {
            b"&AOk-t&AOk-", b"&AOk-t&AOk-/&ZeVnLIqe-"}
        for tag, bad in ((b"b1", b"&Jjo"), (b"b2", b"&AGE-"), (b"b3", b"a&b")):
            out = old.command(tag + b" CREATE \"" + bad + b"\"\r\n")
            assert out[-1].startswith(tag + b" BAD") or out[-1].startswith(tag + b" NO"), out
        for enable in (b"UTF8=ACCEPT", b"IMAP4rev2"):
            new = login(node)
            assert new.command(b"e1 ENABLE " + enable + b"\r\n")[-1].startswith(b"e1 OK")
            listed = _listed(new.command(b'l2 LIST "" "\xc3\xa9*"\r\n'))
            assert set(listed) == {"\"été\"".encode(), "\"été/日本語\"".encode()}
            out = new.command("s1 STATUS \"été/日本語\" (MESSAGES)\r\n".encode())
            assert out[0] == "* STATUS \"été/日本語\" (MESSAGES 0)\r\n".encode(), out
            new.close()
        # a name made in UTF-8 is modified UTF-7 for the IMAP4rev1 client
        new = login(node)
        assert new.command(b"e2 ENABLE UTF8=ACCEPT\r\n")[-1].startswith(b"e2 OK")
        assert new.command('c2 CREATE "Ünï"\r\n'.encode())[-1].startswith(b"c2 OK")
        assert set(_listed(old.command(b'l3 LIST "" "&ANw-*"\r\n'))) == {b"&ANw-n&AO8-"}
        new.close()
        old.close()
    await asyncio.to_thread(run)


async def test_a_session_whose_selected_inbox_is_renamed_is_ended(node: Node) -> None:
    """RFC 9051 section 2.3.1.1: UIDs are never reused under one UIDVALIDITY.  When
    another session renames INBOX (its messages move away, INBOX starts again with a new
    UIDVALIDITY, section 6.3.6), a session that has INBOX selected cannot go on with the
    UIDs it announced: it gets an untagged BYE and the connection closes (RFC 9051
    section 7.1.5; RFC 2180 section 3.3), instead of new messages under the old UIDs."""
    await fill(node, 3)

    def run() -> None:
        a, b = login(node), login(node)
        assert a.command(b"s1 SELECT INBOX\r\n")[-1].startswith(b"s1 OK")
        assert b.command(b"r1 RENAME INBOX old\r\n")[-1].startswith(b"r1 OK")
        assert b.command(b"p1 APPEND INBOX {3+}\r\nabc\r\n")[-1].startswith(b"p1 OK")
        out = a.command(b"n1 NOOP\r\n")
        assert out[0].startswith(b"* BYE "), out
        assert not any(b"FETCH" in line or b"EXISTS" in line for line in out), out
        assert a.line() == b""                      # closed
        # the others go on; the renamed messages are where RENAME put them
        assert b.command(b"t1 STATUS old (MESSAGES)\r\n")[0] == b"* STATUS old (MESSAGES 3)\r\n"
        b.close()
    await asyncio.to_thread(run)


async def test_renaming_the_selected_inbox_expunges_and_announces_the_new_uidvalidity(
        node: Node) -> None:
    """RFC 9051 section 6.3.6: the session that renames INBOX while INBOX is selected
    sees its messages expunged (section 7.5.1 allows it during RENAME) and the new
    UIDVALIDITY (section 7.1; 2.3.1.1: no UID reused under the old one); new mail then
    arrives under the new one."""
    await fill(node, 2)

    def run() -> None:
        a = login(node)
        out = a.command(b"s1 SELECT INBOX\r\n")
        old = next(line for line in out if line.startswith(b"* OK [UIDVALIDITY "))
        out = a.command(b"r1 RENAME INBOX old\r\n")
        assert out[:2] == [b"* 1 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"], out
        assert out[2].startswith(b"* OK [UIDVALIDITY ") and out[2].split()[3] != old.split()[3]
        assert out[3] == b"r1 OK RENAME completed\r\n"
        new = out[2].split()[3].rstrip(b"]")
        out = a.command(b"p1 APPEND INBOX {3+}\r\nabc\r\n")
        assert out == [b"* 1 EXISTS\r\n", b"p1 OK [APPENDUID %s 1] APPEND completed\r\n" % new]
        assert a.command(b"f1 UID FETCH 1:* (UID)\r\n")[:-1] == [b"* 1 FETCH (UID 1)\r\n"]
        a.close()
    await asyncio.to_thread(run)


async def test_lsub_still_answers_after_enable_imap4rev2(node: Node) -> None:
    """RFC 9051 appendix E item 19: LSUB is deprecated ("Clients should use LIST
    (SUBSCRIBED) instead"), not removed, and appendix A: a server that advertises both
    IMAP4rev1 and IMAP4rev2 returns the IMAP4rev1 responses a client asks for.  So LSUB
    lists the subscriptions after ENABLE IMAP4rev2 too, names in UTF-8 (section 5.1)."""
    def run() -> None:
        c = login(node)
        assert c.command(b"e1 ENABLE IMAP4rev2\r\n")[0] == b"* ENABLED IMAP4rev2\r\n"
        assert c.command('c1 CREATE "Grüße"\r\n'.encode())[-1].startswith(b"c1 OK")
        assert c.command('u1 SUBSCRIBE "Grüße"\r\n'.encode())[-1].startswith(b"u1 OK")
        assert c.command(b'l1 LSUB "" "Gr*"\r\n') == [
            '* LSUB () "/" "Grüße"\r\n'.encode(), b"l1 OK LSUB completed\r\n"]
        c.close()
    await asyncio.to_thread(run)


async def test_children_attributes_on_nonexistent_entries(node: Node) -> None:
    """RFC 9051 section 6.3.9.5 (RFC 3348, RFC 5258 section 4): RETURN (CHILDREN)'s
    \\HasChildren / \\HasNoChildren "MUST be returned within a LIST response", the
    \\NonExistent entries of LIST (SUBSCRIBED) too (section 6.3.9.8 example 10:
    "\\NonExistent \\HasChildren").  A subscribed name below is no child mailbox
    (example 9: \\HasNoChildren with CHILDINFO); without CHILDREN nothing is added."""
    def run() -> None:
        c = login(node)
        for tag, name in ((b"u1", b"Ghost"), (b"u2", b"Attic/Trunk")):
            assert c.command(tag + b" SUBSCRIBE " + name + b"\r\n")[-1].startswith(tag + b" OK")
        assert c.command(b'l1 LIST (SUBSCRIBED) "" "Ghost" RETURN (CHILDREN)\r\n') == [
            b'* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" Ghost\r\n',
            b"l1 OK LIST completed\r\n"]
        assert c.command(b'l2 LIST (SUBSCRIBED RECURSIVEMATCH) "" "Attic" '
                         b'RETURN (CHILDREN)\r\n') == [
            b'* LIST (\\NonExistent \\HasNoChildren) "/" Attic ("CHILDINFO" ("SUBSCRIBED"))\r\n',
            b"l2 OK LIST completed\r\n"]
        assert c.command(b'l3 LIST (SUBSCRIBED) "" "Ghost"\r\n') == [
            b'* LIST (\\NonExistent \\Subscribed) "/" Ghost\r\n', b"l3 OK LIST completed\r\n"]
        c.close()
    await asyncio.to_thread(run)


async def test_delete_of_a_noselect_name_with_children_is_haschildren(node: Node) -> None:
    """RFC 9051 section 6.3.5: deleting a mailbox with inferiors removes its messages and
    leaves the name \\Noselect; deleting it again "is an error", and section 7.1 names
    that error: NO [HASCHILDREN] ("the mailbox has one or more children")."""
    def run() -> None:
        c = login(node)
        assert c.command(b"c1 CREATE Shelf/Book\r\n")[-1].startswith(b"c1 OK")
        assert c.command(b"d1 DELETE Shelf\r\n") == [b"d1 OK DELETE completed\r\n"]
        assert c.command(b'l1 LIST "" "Shelf"\r\n')[0] == \
            b'* LIST (\\Noselect \\HasChildren) "/" Shelf\r\n'
        out = c.command(b"d2 DELETE Shelf\r\n")
        assert out[-1].startswith(b"d2 NO [HASCHILDREN] "), out
        assert c.command(b"d3 DELETE Shelf/Book\r\n")[-1].startswith(b"d3 OK")
        assert c.command(b"d4 DELETE Shelf\r\n")[-1].startswith(b"d4 OK")
        c.close()
    await asyncio.to_thread(run)


async def test_unsubscribe_of_a_name_not_subscribed_is_ok(node: Node) -> None:
    """RFC 9051 section 6.3.8: UNSUBSCRIBE "returns a tagged OK response if the
    unsubscription is successful or if the mailbox is not subscribed", whether or not a
    mailbox has the name; section 6.3.7: SUBSCRIBE twice is OK too."""
    def run() -> None:
        c = login(node)
        assert c.command(b"u1 UNSUBSCRIBE NeverThere\r\n") == [
            b"u1 OK UNSUBSCRIBE completed\r\n"]
        assert c.command(b"c1 CREATE Plain\r\n")[-1].startswith(b"c1 OK")
        assert c.command(b"u2 UNSUBSCRIBE Plain\r\n") == [b"u2 OK UNSUBSCRIBE completed\r\n"]
        for tag in (b"s1", b"s2"):
            assert c.command(tag + b" SUBSCRIBE Plain\r\n") == [
                tag + b" OK SUBSCRIBE completed\r\n"]
        c.close()
    await asyncio.to_thread(run)


async def test_a_denormalized_utf8_name_is_its_nfc_form_in_every_command(node: Node) -> None:
    """RFC 9051 section 5.1: servers "MUST prohibit the creation of 8-bit mailbox names
    that do not comply with Net-Unicode" (RFC 5198: NFC) or MAY convert a denormalized
    name to NFC, and then "MUST accept them in all IMAP commands ... SELECT <name> must
    open the same mailbox that was successfully created with CREATE <name>"."""
    decomposed, composed = "Cafe\u0301".encode(), "Caf\u00e9".encode()

    def run() -> None:
        c = login(node)
        assert c.command(b"e1 ENABLE IMAP4rev2\r\n")[0] == b"* ENABLED IMAP4rev2\r\n"
        assert c.command(b'c1 CREATE "' + decomposed + b'"\r\n')[-1].startswith(b"c1 OK")
        assert c.command(b'l1 LIST "" "Caf*"\r\n') == [
            b'* LIST (\\HasNoChildren) "/" "' + composed + b'"\r\n', b"l1 OK LIST completed\r\n"]
        assert c.command(b'c2 CREATE "' + composed + b'"\r\n')[-1].startswith(
            b"c2 NO [ALREADYEXISTS]")
        for tag, name in ((b"s1", decomposed), (b"s2", composed)):
            out = c.command(tag + b' SELECT "' + name + b'"\r\n')
            assert out[-1].startswith(tag + b" OK"), out
        assert c.command(b'a1 APPEND "' + decomposed + b'" {3+}\r\nx\r\n\r\n')[-1].startswith(
            b"a1 OK")
        assert c.command(b'q1 STATUS "' + composed + b'" (MESSAGES)\r\n')[0] == \
            b'* STATUS "' + composed + b'" (MESSAGES 1)\r\n'
        c.close()
    await asyncio.to_thread(run)


async def test_a_modified_utf7_name_not_in_nfc_cannot_be_created(node: Node) -> None:
    """RFC 9051 section 5.1: servers "MUST prohibit the creation of 8-bit mailbox names
    that do not comply with Net-Unicode" (NFC); a modified UTF-7 name is kept exactly as
    sent (appendix A.1), so a decomposed one is refused by CREATE and RENAME."""
    decomposed = b"Cafe&AwE-"         # "Cafe" + U+0301 COMBINING ACUTE ACCENT

    def run() -> None:
        c = login(node)
        out = c.command(b"c1 CREATE " + decomposed + b"\r\n")
        assert out[-1].startswith(b"c1 NO [CANNOT]"), out
        assert c.command(b"c2 CREATE Caf&AOk-\r\n")[-1].startswith(b"c2 OK")
        out = c.command(b"r1 RENAME Caf&AOk- " + decomposed + b"\r\n")
        assert out[-1].startswith(b"r1 NO [CANNOT]"), out
        assert c.command(b'l1 LIST "" "Caf*"\r\n') == [
            b'* LIST (\\HasNoChildren) "/" Caf&AOk-\r\n', b"l1 OK LIST completed\r\n"]
        c.close()
    await asyncio.to_thread(run)
