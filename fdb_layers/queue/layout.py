"""The queue layer's keys and records: every key of the outbound queue, in one block.

A queued message is one record (its envelope, schedule and lease) plus one key
per recipient (its DSN options and delivery state), so that 1,000 recipients
stay far inside FoundationDB's value and transaction limits.  The ``due`` index
orders messages by the time they are next due; a lease moves a message's due
entry to the lease's expiry, so a message whose worker died comes due again by
itself.  Values are tuple-packed; times are float seconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..keys import Subspace, pack, unpack

# --- layout -----------------------------------------------------------------------
LAYOUT = (1, 0)  # (major, minor): layout["queue"] (see fdb_layers.layout)

ROOT = Subspace(("queue",))
MESSAGE = ROOT["msg"]  # [queue_id] -> MessageRecord
RECIPIENT = ROOT["rcpt"]  # [queue_id, index] -> RecipientState
DUE = ROOT["due"]  # [due_at, queue_id] -> b"": next attempt (or lease expiry)
HELD = ROOT["held"]  # [holder, queue_id] -> b"": the messages of one lease (see lease_due)
ATTEMPT = ROOT["attempt"]  # [queue_id, holder] -> AttemptOutcome: record_attempt's marker
DONE = ROOT["done"]  # [queue_id] -> (finished_at,): a finished message, so enqueue is a no-op
DONE_TIME = ROOT["donet"]  # [finished_at, queue_id] -> b"": the same by time, to expire
COUNT = ROOT["count"]  # [name] -> int64 LE (atomic add): see the names below
WAKE = ROOT.pack(("wake",))  # int64 LE, bumped on enqueue and retry: workers watch it

# COUNT names: messages in the queue, and their recipients by state
MESSAGES = "messages"

# Recipient states
PENDING = "pending"  # not tried yet
DELIVERED = "delivered"  # accepted by the next hop (final)
FAILED = "failed"  # refused for good, or given up (final): bounce it
DELAYED = "delayed"  # tried and deferred: tried again at the message's due time
STATES = (PENDING, DELIVERED, FAILED, DELAYED)
FINAL = frozenset({DELIVERED, FAILED})

# Bounds on what a caller may queue: keys < 1 KB, and a message at every bound
# (recipients of ~2 KB each) is written in one transaction of ~2 MB, inside
# FoundationDB's 10 MB (tests/fdb_layers/queue/test_messages.py)
MAX_QUEUE_ID = 200
MAX_ADDRESS = 512  # a path is at most 256 octets (RFC 5321 4.5.3.1.3); ORCPT is xtext
MAX_RECIPIENTS = 1000  # Postfix's smtpd_recipient_limit
MAX_REPLY = 1000  # a remote reply is kept up to this many characters
MAX_HOLDER = 200


_COUNT_KEYS = {name: COUNT.pack((name,)) for name in (MESSAGES, *STATES)}


def count_key(name: str) -> bytes:
    """The counter's key (those of the known names packed once: every enqueue and
    attempt adds to several)."""
    return _COUNT_KEYS.get(name) or COUNT.pack((name,))


# --- values the callers pass ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Recipient:
    """One RCPT TO with its DSN options (RFC 3461 section 4)."""

    address: str
    notify: tuple[str, ...] = ()  # NOTIFY: () when not given, else NEVER or SUCCESS/FAILURE/DELAY
    orcpt: str = ""  # ORCPT as given ("rfc822;bob@example.org"), "" when not given


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str  # "" for the null reverse-path <>
    recipients: tuple[Recipient, ...]
    blob_id: str  # the message body in the blob store
    size: int
    created_at: float
    due_at: float
    envid: str = ""  # ENVID, "" when not given
    ret: str = ""  # RET: "FULL", "HDRS" or ""


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """What one delivery attempt did for one recipient."""

    state: str  # DELIVERED, FAILED or DELAYED (deferred: try again)
    reply: str  # the remote reply (or our own reason)


# --- records ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MessageRecord:
    sender: str
    envid: str
    ret: str
    blob_id: str
    size: int
    created_at: float
    due_at: float  # the key of its DUE entry: next attempt, or the lease's expiry
    attempts: int  # attempts recorded
    recipients: int  # number of RECIPIENT keys
    holder: str  # "" when not leased
    lease_expires: float

    def encode(self) -> bytes:
        return pack((self.sender, self.envid, self.ret, self.blob_id, self.size,
                     self.created_at, self.due_at, self.attempts, self.recipients,
                     self.holder, self.lease_expires))

    @classmethod
    def decode(cls, raw: bytes) -> MessageRecord:
        s, e, r, b, size, c, d, a, n, h, x = unpack(raw)
        return cls(str(s), str(e), str(r), str(b), int(size), float(c), float(d), int(a),
                   int(n), str(h), float(x))


@dataclass(frozen=True, slots=True)
class RecipientState:
    index: int  # position in the envelope: the key of results in record_attempt
    address: str
    notify: tuple[str, ...]
    orcpt: str
    state: str
    reply: str  # the last reply ("" before any attempt)
    attempts: int
    delay_notified: bool  # a delay notice was asked for already

    def encode(self) -> bytes:
        return pack((self.address, self.notify, self.orcpt, self.state, self.reply,
                     self.attempts, self.delay_notified))

    @classmethod
    def decode(cls, index: int, raw: bytes) -> RecipientState:
        a, n, o, s, r, t, d = unpack(raw)
        return cls(index, str(a), tuple(str(x) for x in n), str(o), str(s), str(r), int(t),
                   bool(d))


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A queued message as ``get_message``, ``list_messages`` and ``lease_due`` see it."""

    queue_id: str
    sender: str
    envid: str
    ret: str
    blob_id: str
    size: int
    created_at: float
    due_at: float
    attempts: int
    holder: str  # "" when not leased (or the lease expired)
    lease_expires: float
    recipients: tuple[RecipientState, ...]

    @property
    def state(self) -> str:
        """DELAYED once any recipient was deferred, else PENDING (final ones are waiting
        for the others)."""
        return DELAYED if any(r.state == DELAYED for r in self.recipients) else PENDING


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What record_attempt did, as indexes into the message's recipients: what
    the caller sends next (DSNs: successes, bounces, delay notices)."""

    removed: bool  # every recipient is final: the message left the queue
    next_due_at: float | None  # when it is tried again (None when removed)
    delivered: tuple[int, ...]  # delivered by this attempt
    failed: tuple[int, ...]  # failed by this attempt (refused, or given up)
    delay_notice: tuple[int, ...]  # delayed long enough for a delay notice, first time

    def encode(self) -> bytes:
        return pack((self.removed, self.next_due_at, self.delivered, self.failed,
                     self.delay_notice))

    @classmethod
    def decode(cls, raw: bytes) -> AttemptOutcome:
        r, d, ok, bad, late = unpack(raw)
        return cls(bool(r), None if d is None else float(d), tuple(int(x) for x in ok),
                   tuple(int(x) for x in bad), tuple(int(x) for x in late))
