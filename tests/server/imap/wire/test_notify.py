"""NOTIFY's grammar (RFC 5465 section 8): any octets after the command name give a
NOTIFY command or a BAD with the tag, never another exception (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server.imap.wire.commands import Notify
from server.imap.wire.parse_mailbox import NOTIFY_EVENTS, NOTIFY_FILTERS
from server.imap.wire.parser import CommandError, parse_command

_HEADS = [b"a NOTIFY ", b"a NOTIFY SET ", b"a NOTIFY SET STATUS (", b"a NOTIFY SET (",
          b"a NOTIFY SET (selected (MessageNew ", b"a NOTIFY SET (mailboxes "]
_WORDS = st.sampled_from([b" ", b"(", b")", b'"', b"{1}\r\nx", b"NONE", b"SET", b"STATUS",
                          b"UID", b"BODY.PEEK[HEADER]", b"INBOX", b"*", b"\x00", b"\xff",
                          *(f.encode() for f in NOTIFY_FILTERS),
                          *(e.encode() for e in NOTIFY_EVENTS)])


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(_HEADS), st.binary(max_size=40) | st.lists(_WORDS, max_size=16)
       .map(b"".join))
def test_any_octets_give_a_command_or_a_bad(head: bytes, tail: bytes) -> None:
    try:
        command = parse_command(head + tail + b"\r\n")
    except CommandError as e:
        assert e.status == "BAD" and e.tag == "a"
        return
    assert isinstance(command, Notify)
    for group in command.groups or ():
        assert group.filter in NOTIFY_FILTERS
        assert set(group.events) <= NOTIFY_EVENTS | {"NONE"}


def test_rfc_example_parses() -> None:
    """RFC 5465 section 3.1's example."""
    cmd = parse_command(b"a NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header."
                        b"fields (from to subject)]) MessageExpunge)) (subtree Lists "
                        b"(MessageNew MessageExpunge))\r\n")
    assert isinstance(cmd, Notify) and cmd.status and cmd.groups is not None
    assert [g.filter for g in cmd.groups] == ["SELECTED", "SUBTREE"]
