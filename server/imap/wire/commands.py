"""Parsed commands: one frozen dataclass per command (RFC 9051 §6 and the extensions' sections).

Every command carries its ``tag``. ``uid`` marks the UID-prefixed form (RFC 9051 §6.4.9).
Mailbox names are decoded (modified UTF-7 or UTF-8, see :mod:`.mutf7`); ``INBOX`` is upper-case.
Astrings the protocol treats as text (user names, passwords, ID values) are UTF-8 with
undecodable octets kept as surrogates (``surrogateescape``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.imap.wire.fetch import FetchItem
from server.imap.wire.search import SearchKey
from server.imap.wire.sequence import SequenceSet

__all__ = [
    "Command", "Capability", "Noop", "Logout", "StartTLS", "Authenticate", "Login", "Enable",
    "Select", "QResync", "Create", "Delete", "Rename", "Subscribe", "Unsubscribe", "ListCmd",
    "Lsub", "Namespace", "Status", "AppendMessage", "Append", "Idle", "Check", "Close",
    "Unselect", "Expunge", "Search", "Fetch", "Store", "Copy", "Move", "Sort", "Thread", "Id",
    "Compress", "Unauthenticate", "GetQuota", "GetQuotaRoot", "SetQuota", "GetMetadata",
    "SetMetadata", "Replace", "Notify", "NotifyEventGroup",
]


@dataclass(frozen=True, slots=True)
class Capability:
    tag: str


@dataclass(frozen=True, slots=True)
class Noop:
    tag: str


@dataclass(frozen=True, slots=True)
class Logout:
    tag: str


@dataclass(frozen=True, slots=True)
class StartTLS:
    tag: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """AUTHENTICATE mechanism [SP initial-response] (RFC 9051 §6.2.2, RFC 4959 SASL-IR).
    ``initial`` is the base64 text as sent; ``"="`` is an empty response."""

    tag: str
    mechanism: str
    initial: str | None = None


@dataclass(frozen=True, slots=True)
class Login:
    tag: str
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Enable:
    """ENABLE (RFC 5161 §3.1); capability names upper-cased."""

    tag: str
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QResync:
    """The QRESYNC select parameter (RFC 7162 §3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT or EXAMINE (``readonly``) with CONDSTORE / QRESYNC (RFC 7162 §3.1.8, §3.2.5)."""

    tag: str
    mailbox: str
    readonly: bool = False
    condstore: bool = False
    qresync: QResync | None = None


@dataclass(frozen=True, slots=True)
class Create:
    """CREATE with the USE parameter of CREATE-SPECIAL-USE (RFC 6154 §3)."""

    tag: str
    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    tag: str
    mailbox: str
    new_name: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class ListCmd:
    """LIST with LIST-EXTENDED (RFC 5258 §3) and LIST-STATUS (RFC 5819). Selection and return
    options are upper-cased; ``status`` holds the STATUS return option's items, if asked."""

    tag: str
    reference: str
    patterns: tuple[str, ...]
    selection: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    status: tuple[str, ...] | None = None
    extended: bool = False  # "(...)" or "RETURN" or several patterns: answer in extended form


@dataclass(frozen=True, slots=True)
class Lsub:
    tag: str
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Namespace:
    tag: str


@dataclass(frozen=True, slots=True)
class Status:
    """STATUS mailbox (items); items upper-cased (RFC 9051 §6.3.11, RFC 8438, RFC 7162, 8474)."""

    tag: str
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of APPEND (several with MULTIAPPEND, RFC 3502). ``utf8``: sent as
    ``UTF8 (~{n})`` (RFC 6855 §4); ``binary``: sent as literal8 (RFC 3516 §4.4)."""

    data: bytes
    flags: tuple[str, ...] = ()
    date: datetime | None = None
    utf8: bool = False
    binary: bool = False


@dataclass(frozen=True, slots=True)
class Append:
    tag: str
    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Replace:
    """REPLACE / UID REPLACE (RFC 8508 §3)."""

    tag: str
    message_id: int
    mailbox: str
    message: AppendMessage
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Idle:
    tag: str


@dataclass(frozen=True, slots=True)
class Check:
    tag: str


@dataclass(frozen=True, slots=True)
class Close:
    tag: str


@dataclass(frozen=True, slots=True)
class Unselect:
    tag: str


@dataclass(frozen=True, slots=True)
class Expunge:
    """EXPUNGE, or UID EXPUNGE uid-set (RFC 4315 §2.1) when ``uids`` is set."""

    tag: str
    uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """SEARCH with ESEARCH return options (RFC 4731 §3.1, RFC 5182 SAVE) and CHARSET.
    ``returns`` is None for the plain form; ``()`` is ``RETURN ()`` (= ALL)."""

    tag: str
    key: SearchKey
    charset: str | None = None
    returns: tuple[str, ...] | None = None
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Fetch:
    """FETCH with CHANGEDSINCE / VANISHED modifiers (RFC 7162 §3.1.4.1, §3.2.6)."""

    tag: str
    messages: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store:
    """STORE: ``mode`` is "" (replace), "+" or "-"; ``silent`` for .SILENT (RFC 9051 §6.4.6);
    UNCHANGEDSINCE (RFC 7162 §3.1.3)."""

    tag: str
    messages: SequenceSet
    mode: str
    flags: tuple[str, ...]
    silent: bool = False
    uid: bool = False
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True)
class Copy:
    tag: str
    messages: SequenceSet
    mailbox: str
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Move:
    tag: str
    messages: SequenceSet
    mailbox: str
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Sort:
    """SORT (RFC 5256 §3) with ESORT return options (RFC 5267 §3); criteria are
    (reverse, key) with keys upper-cased, DISPLAYFROM/DISPLAYTO from RFC 5957."""

    tag: str
    criteria: tuple[tuple[bool, str], ...]
    charset: str
    key: SearchKey
    returns: tuple[str, ...] | None = None
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Thread:
    """THREAD algorithm charset search-criteria (RFC 5256 §3)."""

    tag: str
    algorithm: str
    charset: str
    key: SearchKey
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Id:
    """ID (RFC 2971 §3.1): field/value pairs, or None for NIL."""

    tag: str
    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class Compress:
    """COMPRESS mechanism (RFC 4978 §3); mechanism upper-cased."""

    tag: str
    mechanism: str


@dataclass(frozen=True, slots=True)
class Unauthenticate:
    tag: str


@dataclass(frozen=True, slots=True)
class GetQuota:
    tag: str
    root: str


@dataclass(frozen=True, slots=True)
class GetQuotaRoot:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class SetQuota:
    """SETQUOTA root (resource limit ...) (RFC 9208 §4.1.3); resources upper-cased."""

    tag: str
    root: str
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class GetMetadata:
    """GETMETADATA [(MAXSIZE n DEPTH d)] mailbox entries (RFC 5464 §4.2); "" is the server."""

    tag: str
    mailbox: str
    entries: tuple[str, ...]
    max_size: int | None = None
    depth: str = "0"


@dataclass(frozen=True, slots=True)
class SetMetadata:
    """SETMETADATA mailbox (entry value ...) (RFC 5464 §4.3); None removes the entry."""

    tag: str
    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class NotifyEventGroup:
    """One (filter events) group of NOTIFY SET (RFC 5465 §3.1). ``filter`` is SELECTED,
    SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED, SUBTREE or MAILBOXES; ``mailboxes`` for the
    last two; events upper-cased, ``("NONE",)`` for NONE; fetch attributes of MessageNew kept."""

    filter: str
    mailboxes: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    fetch: tuple[FetchItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Notify:
    """NOTIFY NONE (``groups`` is None) or NOTIFY SET [STATUS] groups (RFC 5465 §3)."""

    tag: str
    groups: tuple[NotifyEventGroup, ...] | None
    status: bool = False


Command = (
    Capability | Noop | Logout | StartTLS | Authenticate | Login | Enable | Select | Create
    | Delete | Rename | Subscribe | Unsubscribe | ListCmd | Lsub | Namespace | Status | Append
    | Replace | Idle | Check | Close | Unselect | Expunge | Search | Fetch | Store | Copy | Move
    | Sort | Thread | Id | Compress | Unauthenticate | GetQuota | GetQuotaRoot | SetQuota
    | GetMetadata | SetMetadata | Notify
)
