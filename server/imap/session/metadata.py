"""METADATA (RFC 5464): GETMETADATA and SETMETADATA, on the server (mailbox name ``""``)
and on mailboxes (capability METADATA, section 1), stored by the mail layer's
annotations (:mod:`fdb_layers.mail.metadata`) per account and mailbox id.

Both ``/private`` and ``/shared`` entries are kept; nobody but the account reaches
either, so NOPRIVATE is never needed.  Limits: values of at most ``MAX_VALUE`` octets
(NO [METADATA MAXSIZE n]), ``MAX_ANNOTATIONS`` entries per account (NO [METADATA
TOOMANY]).  ``/private/specialuse`` of a special-use mailbox (RFC 6154 section 4) is
its attribute, read-only, as the server's ``/shared/admin`` is (section 3.2.1.1; we have
no value for it).  METADATA unsolicited responses are not sent (section 4.4.2
makes them optional)."""

from __future__ import annotations

from fdb_layers.mail import (
    SERVER,
    Transaction,
    find_mailbox,
    get_annotations,
    set_annotations,
    transact,
)
from server.imap.wire import commands as c
from server.imap.wire.errors import ParseError
from server.imap.wire.metadata import entry_name
from server.imap.wire.responses import Code, MetadataData
from server.imap.wire.values import Atom

from .errors import bad, no
from .mailboxes import SPECIAL_USE, mailbox_path
from .state import Session

SPECIALUSE = "/private/specialuse"  # RFC 6154 section 4
ADMIN = "/shared/admin"  # RFC 5464 section 3.2.1.1: a server entry, always read-only
_DEPTHS: dict[str, int | None] = {"0": 0, "1": 1, "infinity": None}

Entries = list[tuple[str, bytes | None]]


def _entry(raw: str) -> str:
    """RFC 5464 section 3.2: an invalid entry name is a BAD."""
    try:
        return entry_name(raw)
    except ParseError as e:
        raise bad(e.text) from None


def _within(entry: str, name: str, depth: int | None) -> bool:
    """Whether ``name`` is ``entry`` or below it within ``depth`` levels."""
    if name == entry:
        return True
    if not name.startswith(entry + "/"):
        return False
    return depth is None or name[len(entry):].count("/") <= depth


async def _mailbox(tr: Transaction, account_id: str, name: str) -> tuple[str, str | None]:
    """The mailbox id (SERVER for ``""``, RFC 5464 section 3.1) and special use."""
    if name == "":
        return SERVER, None
    box = await find_mailbox(tr, account_id, mailbox_path(name))   # NO [NONEXISTENT]
    return box.id, SPECIAL_USE.get(box.role or "")


async def _get(tr: Transaction, account_id: str, name: str, entries: list[str],
               depth: int | None) -> Entries:
    mailbox_id, special_use = await _mailbox(tr, account_id, name)
    found: dict[str, bytes | None] = {}
    for entry in entries:
        values = await get_annotations(tr, account_id, mailbox_id, entry, depth)
        if special_use is not None and _within(entry, SPECIALUSE, depth):
            values.append((SPECIALUSE, special_use.encode("ascii")))
        if not values and depth == 0:
            found.setdefault(entry, None)   # asked for by name and absent: NIL
        found.update(values)
    return list(found.items())


async def getmetadata(s: Session, cmd: c.Command) -> None:
    """RFC 5464 section 4.2: the entries' values (NIL for one named that does not
    exist), below them to DEPTH (4.2.2), leaving out values longer than MAXSIZE
    (4.2.1) with [METADATA LONGENTRIES n], n the longest left out."""
    assert isinstance(cmd, c.GetMetadata)
    entries = list(dict.fromkeys(_entry(n) for n in cmd.entries))
    found = await transact(s.ctx.engine, _get, s.account_id, cmd.mailbox, entries,
                           _DEPTHS[cmd.depth])
    limit = cmd.max_size
    shown = [(n, v) for n, v in found if limit is None or v is None or len(v) <= limit]
    longest = max((len(v) for _, v in found if v is not None and limit is not None
                   and len(v) > limit), default=0)
    if shown:
        s.write(MetadataData(mailbox_path(cmd.mailbox) if cmd.mailbox else "", tuple(shown)))
    code = Code("METADATA", (Atom("LONGENTRIES"), longest)) if longest else None
    s.ok(cmd.tag, "GETMETADATA completed", code)


async def _set(tr: Transaction, account_id: str, name: str, entries: Entries) -> None:
    mailbox_id, _ = await _mailbox(tr, account_id, name)
    read_only = ADMIN if mailbox_id == SERVER else SPECIALUSE
    if any(e == read_only for e, _ in entries):
        raise no(f"{read_only} is read-only", "CANNOT")
    await set_annotations(tr, account_id, mailbox_id, entries)


async def setmetadata(s: Session, cmd: c.Command) -> None:
    """RFC 5464 section 4.3: every entry set (NIL: removed), or none of them; a value
    too long is NO [METADATA MAXSIZE n], one entry too many NO [METADATA TOOMANY]
    (the refusal table, :mod:`.errors`)."""
    assert isinstance(cmd, c.SetMetadata)
    entries = [(_entry(e), v) for e, v in cmd.entries]
    await transact(s.ctx.engine, _set, s.account_id, cmd.mailbox, entries)
    s.ok(cmd.tag, "SETMETADATA completed")
