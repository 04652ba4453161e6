"""Conformance: NOTIFY (RFC 5465) events about subscriptions, on raw connections to a real
node: SubscriptionChange (section 5.5) of names that have no mailbox, which the list of
subscriptions holds by name (RFC 9051 section 6.3.7)."""

from __future__ import annotations

from server.node.node import Node
from tests.server.imap.test_metadata import login, run
from tests.server.imap.test_notify import ok


async def test_subscription_change_of_a_name_without_a_mailbox(node: Node) -> None:
    """RFC 5465 section 5.5: subscribing or unsubscribing a name is a SubscriptionChange
    whether or not a mailbox has the name; for one without a mailbox the LIST carries
    \\NonExistent (RFC 9051 section 6.3.9.3's "\\Subscribed \\NonExistent" reading), with
    \\Subscribed while subscribed.  Another session's change arrives between commands."""
    def body() -> None:
        a, b = login(node), login(node)
        ok(a, b"n NOTIFY SET (subscribed (SubscriptionChange)) "
              b"(personal (SubscriptionChange))\r\n")
        ok(b, b"b1 SUBSCRIBE Nowhere\r\n")
        assert a.line() == b'* LIST (\\NonExistent \\Subscribed) "/" Nowhere\r\n'
        ok(b, b"b2 UNSUBSCRIBE Nowhere\r\n")
        assert a.line() == b'* LIST (\\NonExistent) "/" Nowhere\r\n'
        ok(b, b"b3 SUBSCRIBE Later/Deeper\r\n")
        assert a.line() == b'* LIST (\\NonExistent \\Subscribed) "/" Later/Deeper\r\n'
        a.close()
        b.close()
    await run(node, body)


async def test_a_deleted_subscribed_mailbox_is_no_subscription_change(node: Node) -> None:
    """RFC 5465 sections 5.4 and 5.5: deleting a subscribed mailbox keeps its name
    subscribed (RFC 9051 section 6.3.7), so MailboxName reports it \\NonExistent and no
    SubscriptionChange follows; re-creating it moves the subscription back onto the
    mailbox, again without one."""
    def body() -> None:
        a, b = login(node), login(node)
        ok(a, b"n NOTIFY SET (personal (MailboxName SubscriptionChange))\r\n")
        ok(b, b"b1 CREATE Kept\r\n")
        assert a.line() == b'* LIST (\\HasNoChildren) "/" Kept\r\n'
        ok(b, b"b2 SUBSCRIBE Kept\r\n")
        assert a.line() == b'* LIST (\\HasNoChildren \\Subscribed) "/" Kept\r\n'
        ok(b, b"b3 DELETE Kept\r\n")
        assert a.line() == b'* LIST (\\NonExistent) "/" Kept\r\n'
        ok(b, b"b4 CREATE Marker\r\n")       # the next event: nothing came in between
        assert a.line() == b'* LIST (\\HasNoChildren) "/" Marker\r\n'
        ok(b, b"b5 CREATE Kept\r\n")
        assert a.line() == b'* LIST (\\HasNoChildren) "/" Kept\r\n'
        ok(b, b"b6 SUBSCRIBE Other\r\n")
        assert a.line() == b'* LIST (\\NonExistent \\Subscribed) "/" Other\r\n'
        a.close()
        b.close()
    await run(node, body)
