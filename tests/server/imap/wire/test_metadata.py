"""GETMETADATA / SETMETADATA grammar (RFC 5464 section 5) and entry names (section 3.2):
an RFC table, and hypothesis properties -- any octets after the command name give a
command or a BAD, never another exception, and an entry name is accepted lower-cased or
refused with a ParseError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.imap.wire.commands import GetMetadata, SetMetadata
from server.imap.wire.errors import ParseError
from server.imap.wire.metadata import MAX_ENTRY, entry_name
from server.imap.wire.parser import CommandError, parse_command

VALID = [
    ("RFC 5464 §3.2.1", "/shared/comment", "/shared/comment"),
    ("RFC 5464 §3.2.1", "/shared/admin", "/shared/admin"),
    ("RFC 5464 §3.2.2", "/private/comment", "/private/comment"),
    ("RFC 5464 §3.2 vendor", "/shared/vendor/example.com/x y", "/shared/vendor/example.com/x y"),
    ("RFC 5464 §3.2 vendor", "/private/vendor/vendor.dovecot/a",
     "/private/vendor/vendor.dovecot/a"),
    ("RFC 5464 §3.2 case-insensitive", "/Private/Comment", "/private/comment"),
    ("RFC 6154 §4", "/private/specialuse", "/private/specialuse"),
]

INVALID = [
    ("RFC 5464 §3.2 no asterisk", "/shared/a*"),
    ("RFC 5464 §3.2 no percent", "/shared/50%"),
    ("RFC 5464 §3.2 no consecutive slashes", "/shared//comment"),
    ("RFC 5464 §3.2 no trailing slash", "/shared/comment/"),
    ("RFC 5464 §3.2 /private or /shared", "/public/comment"),
    ("RFC 5464 §3.2 /private or /shared", "/privatex"),
    ("RFC 5464 §3.2 /private or /shared", "comment"),
    ("RFC 5464 §3.2 no controls", "/shared/a\x19b"),
    ("RFC 5464 §3.2 no NUL", "/shared/a\x00"),
    ("RFC 5464 §3.2 US-ASCII", "/shared/\u00e9t\u00e9"),
    ("RFC 5464 §3.2 empty", ""),
    ("RFC 5464 §3.2 at least two components", "/shared"),
    ("RFC 5464 §3.2 at least two components", "/private"),
    ("RFC 5464 §3.2 vendor: at least four", "/shared/vendor"),
    ("RFC 5464 §3.2 vendor: at least four", "/private/vendor/vendor.dovecot"),
    ("our limit", "/shared/" + "x" * MAX_ENTRY),
]


@pytest.mark.parametrize(("section", "raw", "name"), VALID)
def test_valid_entry_names(section: str, raw: str, name: str) -> None:
    assert entry_name(raw) == name, section


@pytest.mark.parametrize(("section", "raw"), INVALID)
def test_invalid_entry_names(section: str, raw: str) -> None:
    with pytest.raises(ParseError):
        entry_name(raw)


def test_commands_parse() -> None:
    """RFC 5464 section 4.2.1's and 4.3's examples (section 5: ``value = nstring /
    literal8``)."""
    assert parse_command(b"a GETMETADATA (MAXSIZE 1024) INBOX /private/comment\r\n") == \
        GetMetadata("a", "INBOX", ("/private/comment",), 1024)
    assert parse_command(b'a SETMETADATA "" (/shared/comment ~{3}\r\n\x00\x01\x02)\r\n') == \
        SetMetadata("a", "", (("/shared/comment", b"\x00\x01\x02"),))


_HEADS = [b"a GETMETADATA ", b"a SETMETADATA ", b"a GETMETADATA (", b"a SETMETADATA INBOX (",
          b"a GETMETADATA INBOX ", b"a SETMETADATA INBOX (/shared/x "]
_OCTETS = st.sampled_from(list(b' ()"\\{}~+0129*%/NILnil\x00\r\x80\xffDEPTHMAXSIZEinfinity'))


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(_HEADS), st.binary(max_size=40) | st.lists(_OCTETS, max_size=40)
       .map(bytes))
def test_any_octets_give_a_command_or_a_bad(head: bytes, tail: bytes) -> None:
    try:
        command = parse_command(head + tail + b"\r\n")
    except CommandError as e:
        assert e.status == "BAD" and e.tag == "a"
        return
    assert isinstance(command, (GetMetadata, SetMetadata))
    names = command.entries if isinstance(command, GetMetadata) \
        else tuple(n for n, _ in command.entries)
    for name in names:
        try:
            checked = entry_name(name)
        except ParseError:
            continue
        assert checked == name.lower() and checked.startswith(("/private/", "/shared/"))


@given(st.text(max_size=60))
def test_entry_name_accepts_lowercased_or_refuses(raw: str) -> None:
    try:
        name = entry_name(raw)
    except ParseError:
        return
    assert name == raw.lower() and name.isascii() and "//" not in name
    assert not name.endswith("/") and not set(name) & {"*", "%"}
    assert entry_name(name) == name
