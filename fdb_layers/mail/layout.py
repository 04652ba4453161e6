"""The mail layer's keys and records: every key of an account, in one block.

One account (a directory principal id) owns one subspace.  Inside it, each
mailbox's messages live under a *storage* number rather than the mailbox id:
the storage number is also the mailbox's IMAP UIDVALIDITY.  Renaming a mailbox
rewrites only its record; deleting it (or making it \\Noselect, or renaming
INBOX) detaches its storage, which :mod:`fdb_layers.mail.cleanup` empties in
resumable batches.  Everything here is pure: keys and value codecs, no I/O.

Values are tuple-packed; the account's ``meta`` key holds the layout version
(a node refuses an account written by a newer major version).

The mail layer, one concept per module:

* ``mail_layout`` (this) keys and records; ``mail_errors`` domain exceptions;
  ``keywords`` IMAP flags <-> JMAP keywords;
* ``accounts`` ensure_account, role mailboxes, watch_account;
* ``mailbox`` mailboxes: create, rename, delete, subscribe, status;
* ``messages`` append, copy, move, store keywords, expunge, Email/set;
  ``message_queries`` the reads (UID ranges, CONDSTORE/QRESYNC, Email/get,
  Email/query by received-at); ``emails`` the writes they share;
* ``threads`` thread assignment; ``quota`` usage; ``changes`` modseqs and the
  change log (JMAP /changes); ``cleanup`` emptying deleted mailboxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..keys import Subspace, TupleElement, unpack, unpack_prefix
from ..keys import pack as _tuple_pack

# --- layout -----------------------------------------------------------------------
LAYOUT_VERSION = 1  # major version of everything below
# 1.1: msgid entries per email, thread subjects in i;unicode-casemap form, op markers
# 1.2: the compact UID map ``uid_runs`` (read checked against the message counter) and
#      the keywords in use per storage ``keyword_count``
# 1.3: the save date of each message in each storage ``saved`` (RFC 8514); messages stored
#      before it have none (IMAP FETCH SAVEDATE gives NIL for them)
# 1.4: the received-at index's values carry the email's thread id, ``(uid, thread_id)``, so
#      that a collapsed listing (JMAP collapseThreads) reads no email record; entries of
#      earlier layouts, ``(uid,)``, are still read (the record gives their thread id)
# 1.5: annotations of mailboxes and of the account's server (IMAP METADATA, RFC 5464)
#      ``annot``, their count per mailbox ``annotn`` and the change counter ``annot``
#      (see .metadata)
# 1.6: subscribed names that have no mailbox ``subs`` (see .subscriptions); a mailbox's
#      own subscription stays the flag of its record, so earlier data reads unchanged
# 1.7: a mailbox record may end with its sort order (JMAP sortOrder); a record without
#      one (every record of 1.6, and any of sort order 0) has sort order 0
LAYOUT = (LAYOUT_VERSION, 7)  # (major, minor): layout["mail"] (see fdb_layers.layout)

ROOT = Subspace(("mail",))
# [account_id, storage] -> b"": detached storages of every account, for the cleaner
PENDING_CLEANUP = Subspace(("mailgc",))

# Account counters (ACCOUNT.counter[name], little-endian int64; atomic where noted).
MODSEQ = "modseq"  # last modseq given out; read-modify-write; watched for wake-ups
STORAGE = "storage"  # last storage number (= UIDVALIDITY) given out
MAILBOX_SEQ = "mailbox"  # last generated mailbox id number
USAGE_BYTES = "bytes"  # atomic: sum of email sizes (quota)
USAGE_MESSAGES = "messages"  # atomic: number of emails
BARRIER = "barrier"  # modseq before which JMAP changes cannot be calculated
ANNOTATIONS = "annot"  # atomic: moved by every change of annotations; watched (IMAP NOTIFY)

# Storage counters (ACCOUNT.storage_counter[storage, name]).
S_MESSAGES = "messages"  # atomic
S_UNSEEN = "unseen"  # atomic
S_SIZE = "size"  # atomic
S_LAST_UID = "lastuid"  # read-modify-write: UIDNEXT - 1
S_HIGHEST_MODSEQ = "highestmodseq"  # atomic max


# --- fast tuple packing --------------------------------------------------------------
# The mail layer packs keys and values on every operation; fdb.tuple's general
# encoder dominated the profiles.  This one handles the types the layer uses
# (str, int of up to 8 bytes, bool, None, bytes, nested tuples of those) and
# produces the tuple layer's exact bytes; anything else goes to fdb.tuple.
_STR, _BYTES, _NESTED, _INT_ZERO, _FALSE, _TRUE = 0x02, 0x01, 0x05, 0x14, 0x26, 0x27
_INT_LONG = (1 << 64) - 1


def _encode(v: object, nested: bool) -> bytes | None:
    if isinstance(v, str):
        return b"\x02" + v.encode("utf-8").replace(b"\x00", b"\x00\xff") + b"\x00"
    if isinstance(v, bool):
        return b"\x27" if v else b"\x26"
    if isinstance(v, int):
        if v == 0:
            return b"\x14"
        magnitude = v if v > 0 else -v
        if magnitude >= _INT_LONG:  # fdb.tuple's arbitrary-length form, from 2**64 - 1 on
            return None
        n = (magnitude.bit_length() + 7) // 8
        if v > 0:
            return bytes((_INT_ZERO + n,)) + v.to_bytes(n, "big")
        return bytes((_INT_ZERO - n,)) + (v + (1 << (8 * n)) - 1).to_bytes(n, "big")
    if v is None:
        return b"\x00\xff" if nested else b"\x00"
    if isinstance(v, bytes):
        return b"\x01" + v.replace(b"\x00", b"\x00\xff") + b"\x00"
    if isinstance(v, tuple):
        parts = [b"\x05"]
        for x in v:
            e = _encode(x, True)
            if e is None:
                return None
            parts.append(e)
        parts.append(b"\x00")
        return b"".join(parts)
    return None


def pack(t: Sequence[TupleElement]) -> bytes:
    """``fdb.tuple.pack(t)``, faster for the types the mail layer uses."""
    parts = []
    for v in t:
        e = _encode(v, False)
        if e is None:
            return _tuple_pack(t)
        parts.append(e)
    return b"".join(parts)


class _Space(Subspace):
    """A subspace whose keys are packed with the fast encoder."""

    __slots__ = ()

    def pack(self, t: Sequence[TupleElement] = ()) -> bytes:
        return self.raw_prefix + pack(t)


class AccountKeys:
    """Every subspace of one account (``ROOT[account_id]``); get one with
    :func:`account_keys` (cached)."""

    __slots__ = (
        "account_id",
        "meta",
        "counter",
        "mailbox",
        "mailbox_name",
        "role",
        "storage",
        "storage_counter",
        "uid",
        "uid_modseq",
        "uid_runs",
        "keyword_count",
        "vanished",
        "deleted",
        "saved",
        "received",
        "email",
        "summary",
        "thread",
        "thread_email",
        "message_id",
        "delivery",
        "delivery_time",
        "op",
        "op_modseq",
        "log",
        "cleanup",
        "annotation",
        "annotation_count",
        "subscription",
    )

    def __init__(self, account_id: str) -> None:
        prefix = ROOT.pack((account_id,))

        def a(name: str) -> _Space:
            return _Space((name,), prefix)

        self.account_id = account_id
        self.meta = prefix + pack(("meta",))  # (layout_version,)
        self.counter = a("ctr")  # [name] -> int64
        self.mailbox = a("mbox")  # [mailbox_id] -> MailboxRecord
        self.mailbox_name = a("name")  # [parent_id, name] -> mailbox_id (live mailboxes)
        self.role = a("role")  # [role] -> mailbox_id
        self.storage = a("sid")  # [storage] -> mailbox_id (attached storages)
        self.storage_counter = a("sctr")  # [storage, name] -> int64
        self.uid = a("uid")  # [storage, uid] -> MembershipRecord
        self.uid_modseq = a("uidms")  # [storage, modseq, uid] -> b"" (CONDSTORE)
        # [storage, chunk_first_uid] -> (first, last, ...) UID runs (see .uidmap)
        self.uid_runs = a("uidr")
        self.keyword_count = a("skw")  # [storage, keyword] -> int64 messages with it (atomic)
        self.vanished = a("gone")  # [storage, modseq, uid] -> b"" (QRESYNC tombstones)
        self.deleted = a("del")  # [storage, uid] -> b"" (messages with $deleted)
        # [storage, uid] -> (saved_us,): when the message was added to that storage (RFC 8514)
        self.saved = a("saved")
        # [storage, received_us, email_id] -> (uid, thread_id); layout < 1.4: (uid,)
        self.received = a("recv")
        self.email = a("email")  # [email_id] -> EmailRecord (with its memberships)
        self.summary = a("sum")  # [email_id, chunk] -> bytes of the parsed summary
        self.thread = a("thr")  # [thread_id] -> (base subject,)
        # [thread_id, received_us, email_id] -> (message ids of its msgid entries...)
        self.thread_email = a("thre")
        # [message_id, email_id] -> (thread_id,); layout 1.0: [message_id] -> (thread_id,)
        self.message_id = a("msgid")
        self.delivery = a("dlv")  # [delivery_id] -> DeliveryRecord
        self.delivery_time = a("dlvt")  # [received_s, delivery_id] -> b"" (to expire markers)
        self.op = a("op")  # [op_id, step] -> (modseq, result): see fdb_layers.markers
        self.op_modseq = a("opms")  # [modseq, op_id, step] -> b"" (to expire markers)
        self.log = a("log")  # [kind, modseq, index] -> (object_id, op)
        self.cleanup = a("gc")  # [storage] -> b"" (detached, to be emptied)
        # [mailbox_id ("" for the server), *entry components] -> value (RFC 5464)
        self.annotation = a("annot")
        self.annotation_count = a("annotn")  # [mailbox_id] -> int64 entries it has
        self.subscription = a("subs")  # [path] -> b"": subscribed names without a mailbox

    def count_key(self, name: str) -> bytes:
        return self.counter.pack((name,))

    def storage_key(self, storage: int, name: str) -> bytes:
        return self.storage_counter.pack((storage, name))


@lru_cache(maxsize=4096)
def account_keys(account_id: str) -> AccountKeys:
    return AccountKeys(account_id)


# --- records ----------------------------------------------------------------------
SUMMARY_CHUNK = 90_000  # a value is limited to 100,000 bytes


@dataclass(frozen=True, slots=True)
class MailboxRecord:
    parent_id: str  # "" at the top level
    name: str  # one hierarchy level, UTF-8, no delimiter
    role: str  # "" or a special-use role
    storage: int  # 0: \Noselect (no messages); else the storage number = UIDVALIDITY
    subscribed: bool
    deleted: bool  # kept as a tombstone so that a repeated delete is a no-op
    sort_order: int = 0  # JMAP's sortOrder (RFC 8621 section 2); layout 1.7

    def encode(self) -> bytes:
        fields: tuple[TupleElement, ...] = (
            self.parent_id, self.name, self.role, self.storage, self.subscribed, self.deleted
        )
        # written only when set: a record of sort order 0 is the one of layout < 1.7
        return pack(fields + (self.sort_order,) if self.sort_order else fields)

    @classmethod
    def decode(cls, raw: bytes) -> MailboxRecord:
        p, n, r, s, sub, d, *rest = unpack(raw)
        return cls(str(p), str(n), str(r), int(s), bool(sub), bool(d),
                   int(rest[0]) if rest else 0)


@dataclass(frozen=True, slots=True)
class EmailRecord:
    received_us: int  # received-at, microseconds since the epoch
    size: int
    blob_id: str
    thread_id: str
    keywords: tuple[str, ...]  # sorted, lowercase
    summary_chunks: int
    modseq: int  # last change of the email object
    # (storage, uid, modseq of that membership) for every mailbox it is in: one
    # read finds them all, and their CONDSTORE index keys
    members: tuple[tuple[int, int, int], ...] = ()

    def encode(self) -> bytes:
        return pack(
            (
                self.received_us,
                self.size,
                self.blob_id,
                self.thread_id,
                self.keywords,
                self.summary_chunks,
                self.modseq,
                self.members,
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> EmailRecord:
        r, size, blob, thread, kw, chunks, modseq, members = unpack(raw)
        return cls(
            int(r),
            int(size),
            str(blob),
            str(thread),
            tuple(kw),
            int(chunks),
            int(modseq),
            tuple((int(s), int(u), int(m)) for s, u, m in members),
        )

    @staticmethod
    def decode_thread_id(raw: bytes) -> str:
        """The thread id alone (the record's fourth element)."""
        return str(unpack_prefix(raw, 4)[3])

    def member(self, storage: int) -> tuple[int, int] | None:
        """(uid, modseq) of the email in ``storage``, if it is there."""
        for s, uid, modseq in self.members:
            if s == storage:
                return uid, modseq
        return None


@dataclass(frozen=True, slots=True)
class MembershipRecord:
    """One email in one storage, under one UID (keywords copied for FETCH FLAGS)."""

    email_id: str
    modseq: int
    keywords: tuple[str, ...]

    def encode(self) -> bytes:
        return pack((self.email_id, self.modseq, self.keywords))

    @classmethod
    def decode(cls, raw: bytes) -> MembershipRecord:
        # a record is immutable and its bytes are its whole value: one decoded already
        # is reused (a FETCH 1:* of a large mailbox decodes every membership each time)
        if type(raw) is not bytes:
            raw = bytes(raw)   # a bytearray or memoryview: no hash
        rec = _MEMBERSHIPS.get(raw)
        if rec is None:
            e, m, kw = unpack(raw)
            rec = cls(str(e), int(m), tuple(kw))
            if len(_MEMBERSHIPS) >= MEMBERSHIPS_KEPT:
                _MEMBERSHIPS.clear()
            _MEMBERSHIPS[raw] = rec
        return rec


# encoded membership -> its record, at most MEMBERSHIPS_KEPT (~0.3 KB each) per process
MEMBERSHIPS_KEPT = 20_000
_MEMBERSHIPS: dict[bytes, MembershipRecord] = {}


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """What a delivery id produced, so that a repeat returns it and stores nothing.

    ``also``: the other mailboxes of a delivery to several, as (mailbox id,
    uidvalidity, uid); encoded after the six first fields, so that records
    written before it existed read back with none."""

    email_id: str
    mailbox_id: str
    uidvalidity: int
    uid: int
    modseq: int
    thread_id: str
    also: tuple[tuple[str, int, int], ...] = ()

    def encode(self) -> bytes:
        return pack(
            (
                self.email_id,
                self.mailbox_id,
                self.uidvalidity,
                self.uid,
                self.modseq,
                self.thread_id,
                *(x for triple in self.also for x in triple),
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> DeliveryRecord:
        e, m, v, u, ms, t, *rest = unpack(raw)
        also = tuple(
            (str(rest[i]), int(rest[i + 1]), int(rest[i + 2])) for i in range(0, len(rest), 3)
        )
        return cls(str(e), str(m), int(v), int(u), int(ms), str(t), also)


def decode_received(raw: bytes) -> tuple[int, str | None]:
    """(uid, thread id) of a received-at index value; the thread id is None in an entry
    written before layout 1.4."""
    values = unpack(raw)
    return int(values[0]), (str(values[1]) if len(values) > 1 else None)


def received_thread_key(raw: bytes) -> bytes | None:
    """The thread id of a received-at index value still packed (equal ids pack to equal
    bytes: a collapsed listing compares them without decoding); None for an entry
    written before layout 1.4."""
    n = raw[0] - _INT_ZERO if raw else -1
    if 0 <= n <= 8:  # the uid, a non-negative int: skip its bytes
        return raw[1 + n :] or None
    _, thread_id = decode_received(raw)
    return None if thread_id is None else pack((thread_id,))


def pack_int(n: int) -> bytes:
    return pack((n,))


def unpack_int(raw: bytes) -> int:
    return int(unpack(raw)[0])


def unpack_str(raw: bytes) -> str:
    return str(unpack(raw)[0])
