"""One complete command in, one :data:`Command` out (RFC 9051 §9 ``command``).

``command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF``.
Which commands the session's state allows is the session's decision, not the grammar's: every
command of every state parses here.
"""

from __future__ import annotations

from collections.abc import Callable

from server.imap.wire import parse_mailbox, parse_message, parse_session
from server.imap.wire.commands import Command
from server.imap.wire.errors import ParseError
from server.imap.wire.lexer import Cursor

__all__ = ["CommandError", "parse_command", "COMMANDS"]

_PARSERS: dict[str, Callable[[Cursor, str], Command]] = {
    **parse_session.PARSERS,
    **parse_mailbox.PARSERS,
    **parse_message.PARSERS,
}
COMMANDS = frozenset(_PARSERS) | {"UID"}


class CommandError(ParseError):
    """A command that could not be parsed, with its tag when the tag was read."""

    def __init__(
        self, text: str, tag: str | None, status: str = "BAD", code: str | None = None
    ) -> None:
        super().__init__(text, status, code)
        self.tag = tag


def parse_command(buf: bytes, utf8: bool = False) -> Command:
    """``buf`` is the whole command with its literals inline, ending in CRLF. ``utf8`` is
    set once IMAP4rev2 or UTF8=ACCEPT is enabled (mailbox names are UTF-8, RFC 9051 §5.1)."""
    cur = Cursor(buf, utf8=utf8)
    tag = None
    try:
        tag = cur.tag()
        cur.sp()
        name = cur.atom("a command name").upper()
        if name == "UID":
            cur.sp()
            sub = cur.atom("a UID command").upper()
            uid_parse = parse_message.UID_PARSERS.get(sub)
            if uid_parse is None:
                raise cur.fail(f"unknown UID command {sub[:40]}")
            command = uid_parse(cur, tag, True)
        else:
            parse = _PARSERS.get(name)
            if parse is None:
                raise cur.fail(f"unknown command {name[:40]}")
            command = parse(cur, tag)
        cur.end()
        return command
    except ParseError as exc:
        raise CommandError(exc.text, tag, exc.status, exc.code) from None
