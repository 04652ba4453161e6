"""Mailbox commands (RFC 9051 §6.3; RFC 7162 SELECT parameters, RFC 6154 CREATE USE,
RFC 5258 / 5819 LIST, RFC 3502 MULTIAPPEND, RFC 3516 / 6855 APPEND data, RFC 9208 QUOTA,
RFC 5464 METADATA, RFC 5465 NOTIFY)."""

from __future__ import annotations

from collections.abc import Callable

from server.imap.wire.commands import (
    Append, AppendMessage, Command, Create, Delete, GetMetadata, GetQuota, GetQuotaRoot,
    ListCmd, Lsub, Notify, NotifyEventGroup, QResync, Rename, Select, SetMetadata, SetQuota,
    Status, Subscribe, Unsubscribe,
)
from server.imap.wire.fetch import FetchItem, fetch_att
from server.imap.wire.lexer import MAX_NUMBER64, Cursor

__all__ = ["PARSERS", "STATUS_ATTS", "append_message"]

STATUS_ATTS = frozenset(
    {
        "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT",
        "HIGHESTMODSEQ", "APPENDLIMIT", "MAILBOXID", "DELETED-STORAGE",
    }
)
NOTIFY_FILTERS = ("SELECTED-DELAYED", "SELECTED", "INBOXES", "PERSONAL", "SUBSCRIBED",
                  "SUBTREE", "MAILBOXES")
NOTIFY_EVENTS = frozenset(
    {
        "MESSAGENEW", "MESSAGEEXPUNGE", "FLAGCHANGE", "ANNOTATIONCHANGE", "MAILBOXNAME",
        "SUBSCRIPTIONCHANGE", "MAILBOXMETADATACHANGE", "SERVERMETADATACHANGE",
    }
)


def _atoms(cur: Cursor, what: str) -> tuple[str, ...]:
    """"(" [atom *(SP atom)] ")", upper-cased."""
    return tuple(cur.items(lambda: cur.atom(what).upper(), empty_ok=True))


def select(cur: Cursor, tag: str, readonly: bool) -> Command:
    """select / examine = "SELECT" SP mailbox [select-params] (RFC 7162 §7)."""
    cur.sp()
    mailbox = cur.mailbox()
    condstore = False
    qresync = None
    if cur.take(b" "):
        cur.expect(b"(")
        while True:
            name = cur.atom("a select parameter").upper()
            if name == "CONDSTORE":
                condstore = True
            elif name == "QRESYNC" and qresync is None:
                cur.sp()
                qresync = _qresync(cur)
            else:
                raise cur.fail(f"unknown select parameter {name[:40]}")
            if cur.take(b")"):
                break
            cur.sp()
    return Select(tag, mailbox, readonly, condstore, qresync)


def _qresync(cur: Cursor) -> QResync:
    """"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"."""
    cur.expect(b"(")
    uidvalidity = cur.nz_number(what="a UIDVALIDITY")
    cur.sp()
    modseq = cur.nz_number(MAX_NUMBER64, "a mod-sequence")
    known = None
    match = None
    if cur.take(b" ") and cur.peek() != b"(":
        known = cur.sequence_set()
        if known.saved:
            raise cur.fail("$ is not a set of known UIDs")
        cur.take(b" ")
    if cur.take(b"("):
        seqs = cur.sequence_set()
        cur.sp()
        uids = cur.sequence_set()
        if seqs.saved or uids.saved:
            raise cur.fail("$ is not allowed in seq-match-data")
        cur.expect(b")")
        match = (seqs, uids)
    cur.expect(b")")
    return QResync(uidvalidity, modseq, known, match)


def create(cur: Cursor, tag: str) -> Command:
    """create = "CREATE" SP mailbox [create-params] (RFC 6154 §6)."""
    cur.sp()
    mailbox = cur.mailbox()
    uses: tuple[str, ...] = ()
    if cur.take(b" "):
        cur.expect(b"(")
        cur.expect(b"USE", "USE")
        cur.sp()
        uses = tuple(cur.items(cur.flag, empty_ok=True))
        cur.expect(b")")
    return Create(tag, mailbox, uses)


def _one_mailbox(make: Callable[[str, str], Command]) -> Callable[[Cursor, str], Command]:
    def parse(cur: Cursor, tag: str) -> Command:
        cur.sp()
        return make(tag, cur.mailbox())

    return parse


def rename(cur: Cursor, tag: str) -> Command:
    cur.sp()
    old = cur.mailbox()
    cur.sp()
    return Rename(tag, old, cur.mailbox())


def list_(cur: Cursor, tag: str) -> Command:
    """list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
    (RFC 5258 §5, RFC 5819 §6, RFC 9051 §9)."""
    cur.sp()
    extended = False
    selection: tuple[str, ...] = ()
    if cur.peek() == b"(":
        selection = _atoms(cur, "a selection option")
        extended = True
        cur.sp()
    reference = cur.mailbox()
    cur.sp()
    if cur.peek() == b"(":
        patterns = cur.items(cur.list_mailbox)
        extended = True
    else:
        patterns = [cur.list_mailbox()]
    returns: list[str] = []
    status = None
    if cur.take(b" "):
        cur.expect(b"RETURN", "RETURN")
        cur.sp()
        extended = True
        if not cur.paren_list():
            while True:
                name = cur.atom("a return option").upper()
                if name == "STATUS" and status is None:
                    cur.sp()
                    status = _status_atts(cur)
                returns.append(name)
                if cur.take(b")"):
                    break
                cur.sp()
    return ListCmd(tag, reference, tuple(patterns), selection, tuple(returns), status, extended)


def lsub(cur: Cursor, tag: str) -> Command:
    cur.sp()
    reference = cur.mailbox()
    cur.sp()
    return Lsub(tag, reference, cur.list_mailbox())


def _status_atts(cur: Cursor) -> tuple[str, ...]:
    items = _atoms(cur, "a status item")
    if not items:
        raise cur.fail("at least one status item is needed")
    for item in items:
        if item not in STATUS_ATTS:
            raise cur.fail(f"unknown status item {item[:40]}")
    return items


def status(cur: Cursor, tag: str) -> Command:
    """status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"."""
    cur.sp()
    mailbox = cur.mailbox()
    cur.sp()
    return Status(tag, mailbox, _status_atts(cur))


def append_message(cur: Cursor) -> AppendMessage:
    """[flag-list SP] [date-time SP] append-data, after the SP (RFC 9051 §9, RFC 3502 §6,
    RFC 6855 §4 ``"UTF8" SP "(" literal8 ")"``, RFC 3516 literal8)."""
    flags: tuple[str, ...] = ()
    when = None
    if cur.peek() == b"(":
        flags = cur.flag_list()
        cur.sp()
    if cur.peek() == b'"':
        when = cur.date_time()
        cur.sp()
    if cur.take_keyword(b"UTF8"):
        cur.sp()
        cur.expect(b"(")
        if not cur.is_literal8():
            raise cur.fail("UTF8 APPEND data must be a literal8")
        data = cur.string(allow8=True)
        cur.expect(b")")
        return AppendMessage(data, flags, when, utf8=True)
    if cur.peek() not in (b"{", b"~"):
        raise cur.fail("message data must be a literal")
    binary = cur.is_literal8()
    return AppendMessage(cur.string(allow8=True), flags, when, binary=binary)


def append(cur: Cursor, tag: str) -> Command:
    """append = "APPEND" SP mailbox 1*append-message (RFC 3502 MULTIAPPEND)."""
    cur.sp()
    mailbox = cur.mailbox()
    messages = []
    while cur.take(b" "):
        messages.append(append_message(cur))
    if not messages:
        raise cur.fail("APPEND needs a message")
    return Append(tag, mailbox, tuple(messages))


def getquota(cur: Cursor, tag: str) -> Command:
    cur.sp()
    return GetQuota(tag, cur.text_astring())


def setquota(cur: Cursor, tag: str) -> Command:
    """setquota = "SETQUOTA" SP quota-root-name SP setquota-list (RFC 9208 §7)."""
    cur.sp()
    root = cur.text_astring()
    cur.sp()

    def resource() -> tuple[str, int]:
        name = cur.atom("a resource name").upper()
        cur.sp()
        return name, cur.number(MAX_NUMBER64, "a resource limit")

    return SetQuota(tag, root, tuple(cur.items(resource, empty_ok=True)))


def getmetadata(cur: Cursor, tag: str) -> Command:
    """getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries (RFC 5464)."""
    cur.sp()
    max_size = None
    depth = "0"
    if cur.take(b"("):
        while True:
            name = cur.atom("a metadata option").upper()
            cur.sp()
            if name == "MAXSIZE":
                max_size = cur.number()
            elif name == "DEPTH":
                depth = cur.atom("a depth").lower()
                if depth not in ("0", "1", "infinity"):
                    raise cur.fail("DEPTH must be 0, 1 or infinity")
            else:
                raise cur.fail(f"unknown metadata option {name[:40]}")
            if cur.take(b")"):
                break
            cur.sp()
        cur.sp()
    mailbox = cur.mailbox()
    cur.sp()
    if cur.peek() == b"(":
        entries = cur.items(cur.text_astring)
    else:
        entries = [cur.text_astring()]
    return GetMetadata(tag, mailbox, tuple(entries), max_size, depth)


def setmetadata(cur: Cursor, tag: str) -> Command:
    """setmetadata = "SETMETADATA" SP mailbox SP "(" entry-value *(SP entry-value) ")"."""
    cur.sp()
    mailbox = cur.mailbox()
    cur.sp()

    def entry_value() -> tuple[str, bytes | None]:
        name = cur.text_astring()
        cur.sp()
        return name, cur.nstring(allow8=True)

    return SetMetadata(tag, mailbox, tuple(cur.items(entry_value)))


def notify(cur: Cursor, tag: str) -> Command:
    """notify = "NOTIFY" SP (notify-set / notify-none) (RFC 5465 §8)."""
    cur.sp()
    if cur.take_keyword(b"NONE"):
        return Notify(tag, None)
    cur.expect(b"SET", "SET or NONE")
    with_status = cur.take_keyword(b" STATUS")
    groups = []
    while cur.take(b" "):
        groups.append(_event_group(cur))
    if not groups:
        raise cur.fail("NOTIFY SET needs an event group")
    return Notify(tag, tuple(groups), with_status)


def _event_group(cur: Cursor) -> NotifyEventGroup:
    cur.expect(b"(")
    name = cur.atom("a mailbox filter").upper()
    if name not in NOTIFY_FILTERS:
        raise cur.fail(f"unknown NOTIFY filter {name[:40]}")
    mailboxes: list[str] = []
    if name in ("SUBTREE", "MAILBOXES"):
        cur.sp()
        if cur.peek() == b"(":
            mailboxes = cur.items(cur.mailbox)
        else:
            mailboxes.append(cur.mailbox())
    cur.sp()
    events: list[str] = []
    fetch: list[FetchItem] = []
    if cur.take_keyword(b"NONE"):
        events.append("NONE")
    else:
        cur.expect(b"(")
        while True:
            event = cur.atom("an event").upper()
            if event not in NOTIFY_EVENTS:
                raise cur.fail(f"unknown NOTIFY event {event[:40]}")
            if event in events:
                raise cur.fail(f"repeated NOTIFY event {event[:40]}")
            events.append(event)
            if event == "MESSAGENEW" and cur.at(b" ("):
                cur.pos += 1
                fetch += cur.items(lambda: fetch_att(cur))
            if cur.take(b")"):
                break
            cur.sp()
    cur.expect(b")")
    return NotifyEventGroup(name, tuple(mailboxes), tuple(events), tuple(fetch))


PARSERS: dict[str, Callable[[Cursor, str], Command]] = {
    "SELECT": lambda cur, tag: select(cur, tag, readonly=False),
    "EXAMINE": lambda cur, tag: select(cur, tag, readonly=True),
    "CREATE": create,
    "DELETE": _one_mailbox(Delete),
    "RENAME": rename,
    "SUBSCRIBE": _one_mailbox(Subscribe),
    "UNSUBSCRIBE": _one_mailbox(Unsubscribe),
    "LIST": list_,
    "LSUB": lsub,
    "STATUS": status,
    "APPEND": append,
    "GETQUOTA": getquota,
    "GETQUOTAROOT": _one_mailbox(GetQuotaRoot),
    "SETQUOTA": setquota,
    "GETMETADATA": getmetadata,
    "SETMETADATA": setmetadata,
    "NOTIFY": notify,
}
