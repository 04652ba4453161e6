"""The IMAP session state machine (RFC 9051 section 3): not authenticated,
authenticated, selected, logout.  No sockets: the connection feeds it the reader's
events (:meth:`Session.receive`) and writes what it leaves in :attr:`Session.out`;
:attr:`Session.action` asks the connection for what only it can do (STARTTLS, close).

Handlers live by command family: :mod:`.auth` (any state and not authenticated),
:mod:`.mailboxes` (authenticated), :mod:`.selected` (SELECT and the selected state).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fdb_layers.mail import Engine
from server.blobs import BlobStore
from server.delivery import Delivery
from server.imap.wire import commands as c
from server.imap.wire.framing import (
    NEED_DATA,
    AuthenticateLine,
    CommandReader,
    ContinuationRequired,
    Event,
    IdleDone,
    Limits,
    Rejected,
)
from server.imap.wire.responses import Code, Continuation, Response, Tagged, Untagged
from server.sasl import Authenticator, Mechanism, Registry
from server.sasl.limits import AuthFailures

from .errors import ImapError, lookup
if TYPE_CHECKING:
    from .idle import Idling
    from .notify import Notifying
from .uidmap import UidMap
from .writers import AccountWriters

log = logging.getLogger(__name__)


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class Action(enum.Enum):
    STARTTLS = "starttls"   # switch to TLS now (the OK is already in ``out``)
    CLOSE = "close"         # write ``out`` and close
    COMPRESS = "compress"   # deflate both directions from now on (the OK is already in ``out``)


@dataclass(frozen=True, slots=True)
class SessionContext:
    """What every session of a node's IMAP listeners shares."""

    engine: Engine
    blobs: BlobStore
    authenticator: Authenticator
    mechanisms: Registry
    hostname: str
    auth_require_tls: bool = True
    starttls: bool = True        # STARTTLS is offered (a TLS context exists)
    append_limit: int = 52_428_800
    max_line: int = 65536
    max_literal: int = 65536
    delivery: Delivery | None = None   # APPEND's way in (server.delivery); None: no APPEND
    auth_failures: AuthFailures | None = None   # failed logins per client and per login
    writers: AccountWriters = field(default_factory=AccountWriters)   # see .writers


@dataclass
class Selected:
    """The selected mailbox as this session sees it: its UID map (sequence number n is
    ``uids[n-1]``, kept as runs), the highest modseq of the mailbox it has announced
    (``modseq``: changes above it are still to be announced, RFC 9051 section 7.4.1 /
    RFC 7162 section 3.1), the highest UID it has known (``last_uid``: later UIDs are
    new messages), and the UIDs expunged elsewhere that it could not announce yet
    (``pending_expunge``: they stay in the map until then, RFC 9051 section 7.5.1)."""

    mailbox_id: str
    name: str
    uidvalidity: int
    readonly: bool
    uids: UidMap = field(default_factory=UidMap)
    modseq: int = 0
    last_uid: int = 0
    pending_expunge: set[int] = field(default_factory=set)
    saved: tuple[int, ...] = ()  # the saved result as UIDs (RFC 5182): search.resolve_saved
    # UID -> modseq of changes this session made and reported itself (STORE, FETCH setting
    # \\Seen): not announced again as untagged FETCH (cleared at each announcement)
    reported: dict[int, int] = field(default_factory=dict)
    # (before, after): the mailbox's HIGHESTMODSEQ read by the last command in the
    # transaction of its own work, before and after its own writes; when ``before`` is
    # not above ``modseq`` nobody else changed the mailbox up to that point, and the
    # check after the command takes ``after`` instead of reading (announce_changes)
    looked: tuple[int, int] | None = None


# Commands that announce changes themselves (or change the selected mailbox).
_ANNOUNCES_ITSELF = (c.Noop, c.Check, c.Select, c.Idle, c.Logout, c.Close, c.Unselect)

Handler = Callable[["Session", c.Command], Awaitable[None]]


class Session:
    def __init__(self, ctx: SessionContext, *, tls: bool, conn_id: str = "",
                 peer_ip: str = "") -> None:
        self.ctx = ctx
        self.tls = tls
        self.conn_id = conn_id
        self.peer_ip = peer_ip
        self.state = State.NOT_AUTHENTICATED
        self.reader = CommandReader(Limits(max_line=ctx.max_line, max_literal=ctx.max_literal,
                                           max_upload=ctx.append_limit))
        self.out: list[bytes] = []
        self.action: Action | None = None
        self.utf8 = False          # UTF-8 in quoted strings and names (rev2 or UTF8=ACCEPT)
        self.utf8_accept = False   # ENABLE UTF8=ACCEPT (RFC 6855)
        self.rev2 = False
        self.condstore = False   # RFC 7162 section 3.1: enabled by ENABLE or a CONDSTORE command
        self.qresync = False     # RFC 7162 section 3.2.3: ENABLE QRESYNC (implies CONDSTORE)
        self.account_id = ""
        self.login = ""
        self.principal_name = ""     # the directory's name of who logged in (quota look-ups)
        self.selected: Selected | None = None
        self.auth: tuple[str, Mechanism] | None = None   # tag and exchange of AUTHENTICATE
        # set by the connection: writes ``out`` and waits while the client is slow to read,
        # so that a long FETCH streams its responses (None: ``out`` is sent when idle)
        self.drain: Callable[[], Awaitable[None]] | None = None
        self.compressed = False      # COMPRESS DEFLATE is active (RFC 4978)
        self.idling: Idling | None = None                # IDLE in progress (its tag)
        self.notifying: Notifying | None = None          # NOTIFY SET in force (RFC 5465)

    # -- what the connection calls ----------------------------------------------------

    def greeting(self) -> bytes:
        return Untagged("OK", f"{self.ctx.hostname} IMAP4rev2 ready",
                        Code.capability(self.capabilities())).render()

    def feed(self, data: bytes) -> None:
        self.reader.feed(data)

    async def run(self) -> None:
        """Handle every complete event the reader has, until it needs data or the session
        asks the connection for an action."""
        while self.action is None:
            event = self.reader.next_event()
            if event is NEED_DATA:
                return
            await self.receive(event)

    async def receive(self, event: Event) -> None:
        if isinstance(event, ContinuationRequired):
            self.write(Continuation())
        elif isinstance(event, Rejected):
            self.write(event.response())
        elif isinstance(event, AuthenticateLine):
            from .auth import authenticate_line
            await self._guarded(self.auth[0] if self.auth else "*", authenticate_line(self, event))
        elif isinstance(event, IdleDone):
            from .idle import done
            await done(self)
        else:
            await self.command(event)  # type: ignore[arg-type]

    def shutdown_message(self) -> bytes:
        return Untagged("BYE", "Server shutting down").render()

    # -- helpers for handlers ---------------------------------------------------------

    def write(self, response: Response) -> None:
        self.out.append(response.render(self.utf8))

    async def flush(self) -> None:
        """Send what is in ``out`` now, in the middle of a long command."""
        if self.drain is not None:
            await self.drain()

    def ok(self, tag: str, text: str, code: Code | None = None) -> None:
        self.write(Tagged(tag, "OK", text, code))

    @property
    def plaintext_allowed(self) -> bool:
        return self.tls or not self.ctx.auth_require_tls

    def capabilities(self) -> tuple[str, ...]:
        caps = ["IMAP4rev1", "IMAP4rev2"]
        if self.state is State.NOT_AUTHENTICATED:
            if self.ctx.starttls and not self.tls:
                caps.append("STARTTLS")
            if not self.plaintext_allowed:
                caps.append("LOGINDISABLED")
            usable = self.ctx.mechanisms.usable(plaintext_allowed=self.plaintext_allowed)
            caps += [f"AUTH={m}" for m in usable if m == "PLAIN"]
            caps.append("SASL-IR")
        caps += ["ENABLE", "ID", "NAMESPACE", "LITERAL+", "UNSELECT", "CHILDREN", "SPECIAL-USE",
                 "STATUS=SIZE"]
        caps += ["PREVIEW"]   # RFC 8970: FETCH PREVIEW (session/messages.py)
        caps += ["ESEARCH", "SEARCHRES", "WITHIN", "SORT", "ESORT", "SORT=DISPLAY",
                 "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"]  # search.py, sort.py, thread.py
        if self.ctx.delivery is not None:   # APPEND's way in (RFC 4315, 6851, 3502, 8508, 7889)
            caps += ["UIDPLUS", "MOVE", "MULTIAPPEND", "REPLACE",
                     f"APPENDLIMIT={self.ctx.append_limit}"]
        caps += ["COMPRESS=DEFLATE", "UNAUTHENTICATE", "QUOTA", "QUOTA=RES-STORAGE",
                 "LIST-EXTENDED", "LIST-STATUS", "CREATE-SPECIAL-USE"]
        caps += ["IDLE", "CONDSTORE", "QRESYNC"]
        caps += ["OBJECTID"]   # RFC 8474: MAILBOXID, EMAILID, THREADID (JMAP's ids)
        caps += ["UTF8=ACCEPT"]   # RFC 6855: auth.enable, mutate.append, wire.downgrade
        caps += ["SAVEDATE"]   # RFC 8514: the layer's save dates (messages.py, search.py)
        caps += ["BINARY"]   # RFC 3516: FETCH BINARY/BINARY.SIZE (sections.py), APPEND literal8
        caps += ["METADATA"]   # RFC 5464: server and mailbox annotations (metadata.py)
        caps += ["NOTIFY"]   # RFC 5465: events between commands (notify.py)
        return tuple(caps)

    # -- dispatch ---------------------------------------------------------------------

    async def command(self, cmd: c.Command) -> None:
        from .dispatch import ALLOWED, HANDLERS

        tag = cmd.tag
        if self.state not in ALLOWED.get(type(cmd), ()):
            self.write(Tagged(tag, "BAD", f"Command not valid in the {self.state.value} state"))
            return
        handler = HANDLERS.get(type(cmd))
        if handler is None:
            self.write(Tagged(tag, "BAD", "Command not implemented"))
            return
        await self._guarded(tag, handler(self, cmd))
        if self.selected is not None and not isinstance(cmd, _ANNOUNCES_ITSELF):
            await self._announce(tag, cmd)

    async def _announce(self, tag: str, cmd: c.Command) -> None:
        """Others' changes to the selected mailbox, before the command's tagged answer
        (RFC 9051 section 5.2, 7.5.1: never expunges during FETCH/STORE/SEARCH)."""
        from .selected import allows_expunge, announce_changes

        prefix = tag.encode() + b" "
        tail = self.out.pop() if self.out and self.out[-1].startswith(prefix) else None
        await self._guarded("*", announce_changes(self, expunges=allows_expunge(cmd)))
        if tail is not None:
            self.out.append(tail)

    async def guarded(self, tag: str, work: Awaitable[None]) -> None:
        """Run ``work``; a failure becomes the refusal table's answer under ``tag``."""
        await self._guarded(tag, work)

    async def _guarded(self, tag: str, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as e:
            answer = lookup(e)
            if answer is None:
                log.exception("IMAP command failed (%s)", self.conn_id)
                answer = ImapError("NO", "Internal error", "SERVERBUG")
            code = Code(answer.code) if answer.code else None
            if tag == "*":
                self.write(Untagged(answer.status, answer.text, code))
            else:
                self.write(Tagged(tag, answer.status, answer.text, code))
