"""Subscriptions are names, not mailboxes: raw commands through a real node.

RFC 3501 section 6.3.6: "The server MUST NOT unilaterally remove an existing mailbox name
from the subscription list even if a mailbox by that name no longer exists" (RFC 9051
section 6.3.7: SHOULD NOT), and the server MAY (so need not) check that a name exists
before subscribing to it.  RFC 5258 sections 3 and 3.1: LIST (SUBSCRIBED) lists such
names with \\NonExistent \\Subscribed, and RECURSIVEMATCH reports their superiors with
CHILDINFO.  RFC 3501 section 6.3.9: LSUB lists them too, flagged \\Noselect."""

from __future__ import annotations

import asyncio

from server.node.node import Node
from tests.server.imap.mutating import login
from tests.server.imap.test_session import Raw


def ok(c: Raw, line: bytes) -> list[bytes]:
    out = c.command(line)
    tag = line.split(b" ", 1)[0]
    assert out[-1].startswith(tag + b" OK"), out
    return out


def mine(out: list[bytes], prefix: bytes) -> list[bytes]:
    """The untagged lines naming a mailbox under ``prefix``."""
    return [line for line in out[:-1] if b'"/" ' + prefix in line]


async def test_deleted_mailbox_stays_subscribed(node: Node) -> None:
    def run() -> None:
        c = login(node)
        ok(c, b"c1 CREATE News\r\n")
        ok(c, b"s1 SUBSCRIBE News\r\n")
        ok(c, b"d1 DELETE News\r\n")
        # LIST shows existing mailboxes only; LIST (SUBSCRIBED) still has the name
        assert mine(ok(c, b'l1 LIST "" "News"\r\n'), b"News") == []
        assert mine(ok(c, b'l2 LIST (SUBSCRIBED) "" "News"\r\n'), b"News") == [
            b'* LIST (\\NonExistent \\Subscribed) "/" News\r\n']
        assert mine(ok(c, b'l3 LSUB "" "*"\r\n'), b"News") == [
            b'* LSUB (\\Noselect) "/" News\r\n']
        # created again: the mailbox is subscribed (the name always was)
        ok(c, b"c2 CREATE News\r\n")
        assert mine(ok(c, b'l4 LIST (SUBSCRIBED) "" "News"\r\n'), b"News") == [
            b'* LIST (\\HasNoChildren \\Subscribed) "/" News\r\n']
        c.close()
    await asyncio.to_thread(run)


async def test_subscribe_a_name_that_does_not_exist(node: Node) -> None:
    def run() -> None:
        c = login(node)
        ok(c, b"s1 SUBSCRIBE Later/Box\r\n")
        ok(c, b"s2 SUBSCRIBE Later/Box\r\n")  # already subscribed: OK (section 6.3.7)
        assert mine(ok(c, b'l1 LIST (SUBSCRIBED) "" "*"\r\n'), b"Later") == [
            b'* LIST (\\NonExistent \\Subscribed) "/" Later/Box\r\n']
        # RFC 5258 section 3.5: the superior, which does not exist either, with CHILDINFO
        assert mine(ok(c, b'l2 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"\r\n'), b"Later") == [
            b'* LIST (\\NonExistent) "/" Later ("CHILDINFO" ("SUBSCRIBED"))\r\n']
        # RETURN (SUBSCRIBED) without the selection option lists existing mailboxes only
        assert mine(ok(c, b'l3 LIST "" "*" RETURN (SUBSCRIBED)\r\n'), b"Later") == []
        # RFC 3501 section 6.3.9: LSUB "%" gives the superior as \Noselect
        assert mine(ok(c, b'l4 LSUB "" "%"\r\n'), b"Later") == [
            b'* LSUB (\\Noselect) "/" Later\r\n']
        ok(c, b"u1 UNSUBSCRIBE Later/Box\r\n")
        assert mine(ok(c, b'l5 LIST (SUBSCRIBED) "" "*"\r\n'), b"Later") == []
        # not subscribed: nothing to do, as for a mailbox that is not (section 6.3.8)
        ok(c, b"u2 UNSUBSCRIBE Later/Box\r\n")
        assert mine(ok(c, b'l6 LIST (SUBSCRIBED) "" "*"\r\n'), b"Later") == []
        c.close()
    await asyncio.to_thread(run)


async def test_rename_keeps_the_old_name_subscribed(node: Node) -> None:
    """RFC 9051 section 6.3.6 says nothing of subscriptions; the old name is not dropped
    (RFC 3501 section 6.3.6) and the renamed mailbox keeps its own subscription."""
    def run() -> None:
        c = login(node)
        ok(c, b"c1 CREATE Old/Kid\r\n")
        ok(c, b"s1 SUBSCRIBE Old\r\n")
        ok(c, b"s2 SUBSCRIBE Old/Kid\r\n")
        ok(c, b"r1 RENAME Old New\r\n")
        out = ok(c, b'l1 LIST (SUBSCRIBED) "" "*"\r\n')
        assert mine(out, b"Old") + mine(out, b"New") == [
            b'* LIST (\\NonExistent \\Subscribed) "/" Old\r\n',
            b'* LIST (\\NonExistent \\Subscribed) "/" Old/Kid\r\n',
            b'* LIST (\\HasChildren \\Subscribed) "/" New\r\n',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" New/Kid\r\n']
        c.close()
    await asyncio.to_thread(run)


async def test_subscription_of_an_existing_mailbox_is_its_jmap_flag(node: Node) -> None:
    """A subscribed name that is also a mailbox is listed once, as the mailbox."""
    def run() -> None:
        c = login(node)
        ok(c, b"s1 SUBSCRIBE Twice\r\n")
        ok(c, b"c1 CREATE Twice\r\n")
        ok(c, b"u1 UNSUBSCRIBE Twice\r\n")
        assert mine(ok(c, b'l1 LIST (SUBSCRIBED) "" "*"\r\n'), b"Twice") == []
        assert mine(ok(c, b'l2 LIST "" "Twice" RETURN (SUBSCRIBED)\r\n'), b"Twice") == [
            b'* LIST (\\HasNoChildren) "/" Twice\r\n']
        ok(c, b"d1 DELETE Twice\r\n")  # not subscribed: nothing kept
        assert mine(ok(c, b'l3 LIST (SUBSCRIBED) "" "*"\r\n'), b"Twice") == []
        c.close()
    await asyncio.to_thread(run)
