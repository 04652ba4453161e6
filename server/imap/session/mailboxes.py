"""Mailbox commands of the authenticated state (RFC 9051 sections 6.3.3-6.3.11):
LIST (with CHILDREN and SPECIAL-USE attributes), LSUB (IMAP4rev1), CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, STATUS."""

from __future__ import annotations

import re
import secrets

from fdb_layers.mail import (
    DELETED,
    DELIMITER,
    Mailbox,
    MailboxNotFound,
    Transaction,
    create_mailbox_path,
    delete_mailbox,
    find_mailbox,
    get_status,
    list_mailboxes,
    list_messages,
    rename_mailbox_path,
    set_subscribed,
    transact,
)
from server.imap.wire import commands as c
from server.imap.wire.responses import ListData, StatusData

from .errors import bad, no
from .state import Session

SPECIAL_USE = {"drafts": "\\Drafts", "sent": "\\Sent", "junk": "\\Junk", "trash": "\\Trash",
               "archive": "\\Archive"}


def new_mailbox_id() -> str:
    """A fresh id for a mailbox IMAP creates (random: a retried transaction reuses it)."""
    return "i" + secrets.token_hex(8)


def canonical(name: str) -> str:
    """``INBOX`` in any case is INBOX (RFC 9051 section 5.1), also as a superior."""
    head, sep, rest = name.partition(DELIMITER)
    return "INBOX" + sep + rest if head.upper() == "INBOX" else name


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 9051 section 6.3.9: ``*`` matches anything, ``%`` anything but the delimiter;
    the reference is prepended to the pattern."""
    full = canonical(reference + pattern)
    parts = []
    for ch in full:
        parts.append(".*" if ch == "*" else f"[^{re.escape(DELIMITER)}]*" if ch == "%"
                     else re.escape(ch))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _attributes(box: Mailbox, boxes: list[Mailbox], subscribed: bool) -> tuple[str, ...]:
    attrs = []
    if not box.selectable:
        attrs.append("\\Noselect")
    children = any(b.path.startswith(box.path + DELIMITER) for b in boxes)
    attrs.append("\\HasChildren" if children else "\\HasNoChildren")
    if box.role in SPECIAL_USE:
        attrs.append(SPECIAL_USE[box.role])
    if subscribed and box.subscribed:
        attrs.append("\\Subscribed")
    return tuple(attrs)


async def list_(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.ListCmd)
    selection = {x.upper() for x in cmd.selection}
    returns = {x.upper() for x in cmd.returns}
    if selection - {"SUBSCRIBED", "SPECIAL-USE"} or returns - {"CHILDREN", "SPECIAL-USE",
                                                                "SUBSCRIBED"}:
        raise bad("LIST selection or return option not supported")
    if cmd.patterns == ("",):
        # RFC 9051 section 6.3.9: the hierarchy delimiter and the root of the reference
        s.write(ListData(("\\Noselect",), DELIMITER, ""))
        s.ok(cmd.tag, "LIST completed")
        return
    boxes = await transact(s.ctx.engine, list_mailboxes, s.account_id)
    regexes = [pattern_regex(cmd.reference, p) for p in cmd.patterns]
    for box in boxes:
        if not any(r.match(box.path) for r in regexes):
            continue
        if "SUBSCRIBED" in selection and not box.subscribed:
            continue
        if "SPECIAL-USE" in selection and box.role not in SPECIAL_USE:
            continue
        s.write(ListData(_attributes(box, boxes, "SUBSCRIBED" in selection | returns),
                         DELIMITER, box.path))
    s.ok(cmd.tag, "LIST completed")


async def lsub(s: Session, cmd: c.Command) -> None:
    """RFC 3501 section 6.3.9 (IMAP4rev1 only; RFC 9051 dropped it)."""
    assert isinstance(cmd, c.Lsub)
    if s.rev2:
        raise bad("LSUB is not an IMAP4rev2 command; use LIST (SUBSCRIBED)")
    boxes = await transact(s.ctx.engine, list_mailboxes, s.account_id)
    regex = pattern_regex(cmd.reference, cmd.pattern)
    for box in boxes:
        if box.subscribed and regex.match(box.path):
            attrs = () if box.selectable else ("\\Noselect",)
            s.write(ListData(attrs, DELIMITER, box.path, lsub=True))
    s.ok(cmd.tag, "LSUB completed")


def mailbox_path(name: str) -> str:
    """A mailbox name as the layer takes it: INBOX canonical, a trailing delimiter dropped
    (RFC 9051 section 6.3.4); empty levels are refused."""
    name = canonical(name)
    if not name or name.startswith(DELIMITER) or DELIMITER * 2 in name:
        raise no("Invalid mailbox name", "CANNOT")
    return name.rstrip(DELIMITER) or name


async def create(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Create)
    if cmd.special_use:
        raise no("CREATE-SPECIAL-USE is not supported", "USEATTR")
    name = mailbox_path(cmd.mailbox)
    if name.upper() == "INBOX":
        raise no("INBOX exists", "ALREADYEXISTS")
    await transact(s.ctx.engine, create_mailbox_path, s.account_id, name,
                   mailbox_id=new_mailbox_id())
    s.ok(cmd.tag, "CREATE completed")


async def delete(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Delete)
    name = mailbox_path(cmd.mailbox)
    if name == "INBOX":
        raise no("INBOX cannot be deleted", "CANNOT")
    box = await transact(s.ctx.engine, find_mailbox, s.account_id, name)
    if s.selected is not None and s.selected.mailbox_id == box.id:
        raise no("Mailbox is selected", "INUSE")
    await transact(s.ctx.engine, delete_mailbox, s.account_id, box.id, keep_if_children=True,
                   op_id=secrets.token_hex(8))
    s.ok(cmd.tag, "DELETE completed")


async def rename(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Rename)
    old, new = mailbox_path(cmd.mailbox), mailbox_path(cmd.new_name)
    if new.upper() == "INBOX":
        raise no("INBOX exists", "ALREADYEXISTS")
    source = await transact(s.ctx.engine, find_mailbox, s.account_id, old)
    await transact(s.ctx.engine, rename_mailbox_path, s.account_id, old, new,
                   new_mailbox_id=new_mailbox_id(), source_id=source.id)
    s.ok(cmd.tag, "RENAME completed")


async def _subscribe(s: Session, tag: str, mailbox: str, on: bool) -> None:
    box = await transact(s.ctx.engine, find_mailbox, s.account_id, mailbox_path(mailbox))
    await transact(s.ctx.engine, set_subscribed, s.account_id, box.id, on)
    s.ok(tag, ("SUBSCRIBE" if on else "UNSUBSCRIBE") + " completed")


async def subscribe(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Subscribe)
    await _subscribe(s, cmd.tag, cmd.mailbox, True)


async def unsubscribe(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Unsubscribe)
    await _subscribe(s, cmd.tag, cmd.mailbox, False)


STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT",
                "HIGHESTMODSEQ")  # RFC 7162 section 3.1.10


async def _status(tr: Transaction, account_id: str, name: str,
                  items: tuple[str, ...]) -> list[tuple[str, int | str]]:
    box = await find_mailbox(tr, account_id, name)
    if not box.selectable:
        raise MailboxNotFound(name)
    st = await get_status(tr, account_id, box.id)
    values: dict[str, int] = {"MESSAGES": st.messages, "UIDNEXT": st.uidnext,
                              "UIDVALIDITY": st.uidvalidity, "UNSEEN": st.unseen,
                              "SIZE": st.size, "RECENT": 0, "HIGHESTMODSEQ": st.highestmodseq}
    if "DELETED" in items:
        messages = await list_messages(tr, account_id, box.id)
        values["DELETED"] = sum(1 for m in messages if DELETED in m.keywords)
    return [(item, values[item]) for item in items]


async def status(s: Session, cmd: c.Command) -> None:
    """RFC 9051 section 6.3.11 (DELETED and SIZE are IMAP4rev2 / STATUS=SIZE)."""
    assert isinstance(cmd, c.Status)
    items = tuple(dict.fromkeys(i.upper() for i in cmd.items))
    unknown = [i for i in items if i not in STATUS_ITEMS]
    if unknown:
        raise bad(f"Unsupported STATUS item {unknown[0][:40]}")
    if "HIGHESTMODSEQ" in items:
        s.condstore = True   # a CONDSTORE enabling command (RFC 7162 section 3.1)
    name = mailbox_path(cmd.mailbox)
    values = await transact(s.ctx.engine, _status, s.account_id, name, items)
    s.write(StatusData(name, tuple(values)))
    s.ok(cmd.tag, "STATUS completed")


__all__ = ["create", "delete", "list_", "lsub", "rename", "status", "subscribe",
           "unsubscribe"]
