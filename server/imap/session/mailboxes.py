"""Mailbox commands of the authenticated state (RFC 9051 sections 6.3.3-6.3.11):
LIST (with CHILDREN and SPECIAL-USE attributes), LSUB (IMAP4rev1), CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, STATUS."""

from __future__ import annotations

import re
import secrets
import unicodedata

from fdb_layers.mail import (
    DELETED,
    DELIMITER,
    Mailbox,
    MailboxNotFound,
    RoleExists,
    Transaction,
    create_mailbox,
    create_mailbox_path,
    delete_mailbox,
    find_mailbox,
    get_email,
    get_status,
    list_mailboxes,
    list_messages,
    list_orphan_subscriptions,
    rename_mailbox_path,
    subscribe_name,
    transact,
)
from server.imap.wire import commands as c
from server.imap.wire.responses import Code, ListData, StatusData

from .errors import bad, no
from .state import Session

SPECIAL_USE = {"drafts": "\\Drafts", "sent": "\\Sent", "junk": "\\Junk", "trash": "\\Trash",
               "archive": "\\Archive", "important": "\\Important"}  # RFC 6154, RFC 8457


def new_mailbox_id() -> str:
    """A fresh id for a mailbox IMAP creates (random: a retried transaction reuses it)."""
    return "i" + secrets.token_hex(8)


def canonical(name: str) -> str:
    """``INBOX`` in any case is INBOX (RFC 9051 section 5.1), also as a superior."""
    head, sep, rest = name.partition(DELIMITER)
    return "INBOX" + sep + rest if head.upper() == "INBOX" else name


def _glob(pattern: str) -> str:
    """RFC 9051 section 6.3.9: ``*`` matches anything, ``%`` anything but the delimiter."""
    parts = []
    for ch in pattern:
        parts.append(".*" if ch == "*" else f"[^{re.escape(DELIMITER)}]*" if ch == "%"
                     else re.escape(ch))
    return "".join(parts)


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """The names a LIST pattern matches, the reference prepended (RFC 9051 section 6.3.9).
    INBOX is case-insensitive (section 5.1): a pattern whose first level spells INBOX in
    any case, up to a delimiter, a wildcard or its end, also matches INBOX and the names
    below it (``inbox*``, ``Inbox/%``); other names keep their case."""
    full = reference + pattern
    regex = _glob(full)
    head, rest = full[:5], full[5:]
    if head.upper() == "INBOX" and head != "INBOX" \
            and (not rest or rest[0] in (DELIMITER, "*", "%")):
        inbox = f"(?=INBOX(?:{re.escape(DELIMITER)}|\\Z))" + _glob("INBOX" + rest)
        regex = f"(?:{regex}|{inbox})"
    return re.compile(regex + r"\Z", re.DOTALL)


SELECTION_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})


def _ancestors(paths: list[str]) -> set[str]:
    """The paths that have at least one of ``paths`` below them."""
    out: set[str] = set()
    for path in paths:
        while DELIMITER in path:
            path = path.rpartition(DELIMITER)[0]
            if path in out:
                break
            out.add(path)
    return out


def _attributes(box: Mailbox, parents: set[str], subscribed: bool) -> tuple[str, ...]:
    attrs = []
    if not box.selectable:
        attrs.append("\\Noselect")
    attrs.append("\\HasChildren" if box.path in parents else "\\HasNoChildren")
    if box.role in SPECIAL_USE:
        attrs.append(SPECIAL_USE[box.role])
    if subscribed and box.subscribed:
        attrs.append("\\Subscribed")
    return tuple(attrs)


def _selected(box: Mailbox, selection: set[str]) -> bool:
    """Whether ``box`` meets the selection criteria (RFC 5258 section 3.1, RFC 6154
    section 6); REMOTE changes nothing: every mailbox is local."""
    if "SUBSCRIBED" in selection and not box.subscribed:
        return False
    return "SPECIAL-USE" not in selection or box.role in SPECIAL_USE


async def list_(s: Session, cmd: c.Command) -> None:
    """LIST (RFC 9051 section 6.3.9) with LIST-EXTENDED (RFC 5258), SPECIAL-USE (RFC 6154)
    and LIST-STATUS (RFC 5819)."""
    assert isinstance(cmd, c.ListCmd)
    selection = {x.upper() for x in cmd.selection}
    returns = {x.upper() for x in cmd.returns}
    if selection - SELECTION_OPTIONS or returns - RETURN_OPTIONS:
        raise bad("LIST selection or return option not supported")
    recursive = "RECURSIVEMATCH" in selection
    if recursive and not selection - {"RECURSIVEMATCH", "REMOTE"}:
        # RFC 5258 section 3.1: RECURSIVEMATCH needs another selection option
        raise bad("RECURSIVEMATCH needs another selection option")
    status_items = _check_status_items(cmd.status) if cmd.status is not None else None
    if cmd.patterns == ("",):
        # RFC 9051 section 6.3.9: the hierarchy delimiter and the root of the reference
        s.write(ListData(("\\Noselect",), DELIMITER, ""))
        s.ok(cmd.tag, "LIST completed")
        return
    boxes, orphans = await transact(s.ctx.engine, _listing, s.account_id)
    regexes = [pattern_regex(cmd.reference, p) for p in cmd.patterns]
    criteria = selection - {"RECURSIVEMATCH", "REMOTE"}
    if criteria != {"SUBSCRIBED"}:
        # RFC 5258 section 3.1: names without a mailbox are listed by (SUBSCRIBED) only
        orphans = []
    show_subscribed = "SUBSCRIBED" in selection | returns
    parents = _ancestors([b.path for b in boxes])
    # names with a descendant meeting the criteria (RECURSIVEMATCH)
    wanted_below = _ancestors([b.path for b in boxes if _selected(b, criteria)] + orphans) \
        if recursive else set()
    entries: dict[str, Mailbox | None] = dict.fromkeys(wanted_below)
    entries.update(dict.fromkeys(orphans))
    entries.update((b.path, b) for b in boxes)
    kept = set(orphans)
    for path in sorted(entries):
        if not any(r.match(path) for r in regexes):
            continue
        # RFC 5258 section 3.5: with RECURSIVEMATCH a mailbox whose descendants meet the
        # criteria is listed, with CHILDINFO naming the criteria they meet
        childinfo: tuple[str, ...] = ()
        if path in wanted_below:
            childinfo = tuple(sorted(criteria & {"SUBSCRIBED"}))
        box = entries[path]
        if box is None:
            # RFC 5258 sections 3 and 3.1: a subscribed name without a mailbox, or the
            # superior of one, is \NonExistent (which implies \Noselect); RFC 9051
            # section 6.3.9.5: RETURN (CHILDREN)'s attributes "MUST be returned within a
            # LIST response", this one too (example 10's "\NonExistent \HasChildren")
            attrs = ["\\NonExistent"]
            if "CHILDREN" in returns:
                attrs.append("\\HasChildren" if path in parents else "\\HasNoChildren")
            if path in kept:
                attrs.append("\\Subscribed")
            s.write(ListData(tuple(attrs), DELIMITER, path, childinfo=childinfo))
            continue
        if not _selected(box, criteria) and not childinfo:
            continue
        s.write(ListData(_attributes(box, parents, show_subscribed), DELIMITER, box.path,
                         childinfo=childinfo))
        if status_items is not None and box.selectable:
            # RFC 5819 section 2: STATUS right after the mailbox's LIST, for selectable ones
            values = await transact(s.ctx.engine, _status, s.account_id, box.path,
                                  status_items, s.ctx.append_limit)
            s.write(StatusData(box.path, tuple(values)))
    s.ok(cmd.tag, "LIST completed")


async def _listing(tr: Transaction, account_id: str) -> tuple[list[Mailbox], list[str]]:
    """The mailboxes and the subscribed names without one, as of one moment."""
    return await list_mailboxes(tr, account_id), await list_orphan_subscriptions(tr, account_id)


async def lsub(s: Session, cmd: c.Command) -> None:
    """RFC 3501 section 6.3.9.  RFC 9051 deprecates LSUB (appendix E item 19: "Clients
    should use LIST (SUBSCRIBED) instead"), it does not remove it, and a server offering
    both revisions returns IMAP4rev1's responses when a client asks for them (appendix
    A): LSUB answers after ENABLE IMAP4rev2 too, names in UTF-8 then."""
    assert isinstance(cmd, c.Lsub)
    boxes, orphans = await transact(s.ctx.engine, _listing, s.account_id)
    regex = pattern_regex(cmd.reference, cmd.pattern)
    # RFC 3501 section 6.3.6: a subscribed name whose mailbox does not exist is still
    # listed; it cannot be selected (\Noselect)
    subscribed = {box.path: box.selectable for box in boxes if box.subscribed}
    subscribed.update(dict.fromkeys(orphans, False))
    found: dict[str, tuple[str, ...]] = {
        name: () if selectable else ("\\Noselect",)
        for name, selectable in subscribed.items() if regex.match(name)}
    for name in subscribed:
        # RFC 3501 section 6.3.9: with "%", a superior of a subscribed name that matches
        # the pattern is listed, flagged \Noselect, when it is not subscribed itself
        path = name
        while DELIMITER in path and name not in found:
            path = path.rpartition(DELIMITER)[0]
            if regex.match(path):
                found.setdefault(path, ("\\Noselect",))
                break
    for path in sorted(found):
        s.write(ListData(found[path], DELIMITER, path, lsub=True))
    s.ok(cmd.tag, "LSUB completed")


def mailbox_path(name: str) -> str:
    """A mailbox name as the layer takes it: INBOX canonical, a trailing delimiter dropped
    (RFC 9051 section 6.3.4); empty levels are refused."""
    name = canonical(name)
    if not name or name.startswith(DELIMITER) or DELIMITER * 2 in name:
        raise no("Invalid mailbox name", "CANNOT")
    return name.rstrip(DELIMITER) or name


def new_mailbox_path(name: str) -> str:
    """The path of a mailbox CREATE or RENAME makes: RFC 9051 section 5.1, servers "MUST
    prohibit the creation of 8-bit mailbox names that do not comply with Net-Unicode",
    so in NFC (RFC 5198).  A UTF-8 name came normalized from the parser; a modified UTF-7
    one, kept as sent (appendix A.1), is refused when it is not in NFC."""
    path = mailbox_path(name)
    if not unicodedata.is_normalized("NFC", path):
        raise no("Mailbox names must be in Unicode Normalization Form C", "CANNOT")
    return path


ROLE_OF = {attr.upper(): role for role, attr in SPECIAL_USE.items()}


async def _create_with_role(tr: Transaction, account_id: str, name: str, role: str,
                            mailbox_id: str, parent_id: str) -> Mailbox:
    """CREATE-SPECIAL-USE: missing superiors as CREATE makes them, then the mailbox with
    its role (the layer refuses a role the account has already: RoleExists)."""
    parent, _, leaf = name.rpartition(DELIMITER)
    parent_box: Mailbox | None = None
    if parent:
        try:
            parent_box = await find_mailbox(tr, account_id, parent)
        except MailboxNotFound:
            parent_box = await create_mailbox_path(tr, account_id, parent, mailbox_id=parent_id)
    return await create_mailbox(tr, account_id, leaf, mailbox_id=mailbox_id, role=role,
                                parent_id=parent_box.id if parent_box else None)


async def create(s: Session, cmd: c.Command) -> None:
    """CREATE (RFC 9051 section 6.3.4) with CREATE-SPECIAL-USE's USE (RFC 6154 section 3):
    one special use per mailbox, each role once per account, else NO [USEATTR]."""
    assert isinstance(cmd, c.Create)
    name = new_mailbox_path(cmd.mailbox)
    if name.upper() == "INBOX":
        raise no("INBOX exists", "ALREADYEXISTS")
    if not cmd.special_use:
        box = await transact(s.ctx.engine, create_mailbox_path, s.account_id, name,
                             mailbox_id=new_mailbox_id())
        # RFC 8474 section 4.1: the new mailbox's id in the tagged OK
        s.ok(cmd.tag, "CREATE completed", Code.mailboxid(box.id))
        return
    roles = {ROLE_OF.get(attr.upper()) for attr in cmd.special_use}
    if None in roles or len(roles) != 1:
        raise no("Only one of \\Archive \\Drafts \\Important \\Junk \\Sent \\Trash can be "
                 "given", "USEATTR")
    (role,) = roles
    assert role is not None
    try:
        box = await transact(s.ctx.engine, _create_with_role, s.account_id, name, role,
                       new_mailbox_id(), new_mailbox_id())
    except RoleExists:
        raise no(f"A mailbox is {SPECIAL_USE[role]} already", "USEATTR") from None
    s.ok(cmd.tag, "CREATE completed", Code.mailboxid(box.id))


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
    old, new = mailbox_path(cmd.mailbox), new_mailbox_path(cmd.new_name)
    if new.upper() == "INBOX":
        raise no("INBOX exists", "ALREADYEXISTS")
    source = await transact(s.ctx.engine, find_mailbox, s.account_id, old)
    await transact(s.ctx.engine, rename_mailbox_path, s.account_id, old, new,
                   new_mailbox_id=new_mailbox_id(), source_id=source.id)
    if old == "INBOX":
        from .selected import follow_renamed_inbox

        await follow_renamed_inbox(s)
    s.ok(cmd.tag, "RENAME completed")


async def _subscribe(s: Session, tag: str, mailbox: str, on: bool) -> None:
    """RFC 9051 sections 6.3.7 and 6.3.8: a name can be subscribed whether or not a
    mailbox has it (the server MAY refuse, this one does not); UNSUBSCRIBE "returns a
    tagged OK response if the unsubscription is successful or if the mailbox is not
    subscribed" (section 6.3.8)."""
    await transact(s.ctx.engine, subscribe_name, s.account_id, mailbox_path(mailbox), on)
    s.ok(tag, ("SUBSCRIBE" if on else "UNSUBSCRIBE") + " completed")


async def subscribe(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Subscribe)
    await _subscribe(s, cmd.tag, cmd.mailbox, True)


async def unsubscribe(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Unsubscribe)
    await _subscribe(s, cmd.tag, cmd.mailbox, False)


STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT",
                "DELETED-STORAGE", "HIGHESTMODSEQ",  # RFC 7162 section 3.1.10
                "MAILBOXID",  # RFC 8474 section 4.2: the JMAP Mailbox id
                "APPENDLIMIT")  # RFC 7889 section 5: status-att =/ "APPENDLIMIT"


async def _status(tr: Transaction, account_id: str, name: str, items: tuple[str, ...],
                  append_limit: int) -> list[tuple[str, int | str]]:
    """The STATUS values of ``items``; APPENDLIMIT is the one limit of every mailbox,
    the one the APPENDLIMIT=<n> capability gives (RFC 7889 sections 3 and 4)."""
    box = await find_mailbox(tr, account_id, name)
    if not box.selectable:
        raise MailboxNotFound(name)
    st = await get_status(tr, account_id, box.id)
    values: dict[str, int] = {"MESSAGES": st.messages, "UIDNEXT": st.uidnext,
                              "UIDVALIDITY": st.uidvalidity, "UNSEEN": st.unseen,
                              "SIZE": st.size, "RECENT": 0, "HIGHESTMODSEQ": st.highestmodseq,
                              "APPENDLIMIT": append_limit}
    if "DELETED" in items or "DELETED-STORAGE" in items:
        messages = await list_messages(tr, account_id, box.id)
        deleted = [m for m in messages if DELETED in m.keywords]
        values["DELETED"] = len(deleted)
        if "DELETED-STORAGE" in items:
            # RFC 9208 section 4.2.2: what EXPUNGE would free, in units of 1024 octets
            emails = [await get_email(tr, account_id, m.email_id) for m in deleted]
            values["DELETED-STORAGE"] = sum(e.size for e in emails if e is not None) // 1024
    ids: dict[str, str] = {"MAILBOXID": box.id}
    return [(item, ids[item] if item in ids else values[item]) for item in items]


def _check_status_items(asked: tuple[str, ...]) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(i.upper() for i in asked))
    unknown = [i for i in items if i not in STATUS_ITEMS]
    if unknown:
        raise bad(f"Unsupported STATUS item {unknown[0][:40]}")
    return items


async def status(s: Session, cmd: c.Command) -> None:
    """RFC 9051 section 6.3.11 (DELETED and SIZE are IMAP4rev2 / STATUS=SIZE)."""
    assert isinstance(cmd, c.Status)
    items = _check_status_items(cmd.items)
    if "HIGHESTMODSEQ" in items:
        s.condstore = True   # a CONDSTORE enabling command (RFC 7162 section 3.1)
    name = mailbox_path(cmd.mailbox)
    values = await transact(s.ctx.engine, _status, s.account_id, name, items,
                            s.ctx.append_limit)
    s.write(StatusData(name, tuple(values)))
    s.ok(cmd.tag, "STATUS completed")


__all__ = ["create", "delete", "list_", "lsub", "rename", "status", "subscribe",
           "unsubscribe"]
