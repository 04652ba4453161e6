"""The mail layer's keys and records: every key of an account, in one block.

One account (a directory principal id) owns one subspace.  Inside it, each
mailbox's messages live under a *storage* number rather than the mailbox id:
the storage number is also the mailbox's IMAP UIDVALIDITY.  Renaming a mailbox
rewrites only its record; deleting it (or making it \\Noselect, or renaming
INBOX) detaches its storage, which :mod:`fdb_layers.cleanup` empties in
resumable batches.  Everything here is pure: keys and value codecs, no I/O.

Values are tuple-packed; the account's ``meta`` key holds the layout version
(a node refuses an account written by a newer major version).
"""

from __future__ import annotations

from dataclasses import dataclass

from .keys import Subspace, pack, unpack

# --- layout -----------------------------------------------------------------------
LAYOUT_VERSION = 1  # major version of everything below

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

# Storage counters (ACCOUNT.storage_counter[storage, name]).
S_MESSAGES = "messages"  # atomic
S_UNSEEN = "unseen"  # atomic
S_SIZE = "size"  # atomic
S_LAST_UID = "lastuid"  # read-modify-write: UIDNEXT - 1
S_HIGHEST_MODSEQ = "highestmodseq"  # atomic max


class AccountKeys:
    """Every subspace of one account (``ROOT[account_id]``)."""

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
        "vanished",
        "deleted",
        "received",
        "email",
        "email_storage",
        "summary",
        "thread",
        "thread_email",
        "message_id",
        "delivery",
        "log",
        "cleanup",
    )

    def __init__(self, account_id: str) -> None:
        a = ROOT[account_id]
        self.account_id = account_id
        self.meta = a.pack(("meta",))  # (layout_version,)
        self.counter = a["ctr"]  # [name] -> int64
        self.mailbox = a["mbox"]  # [mailbox_id] -> MailboxRecord
        self.mailbox_name = a["name"]  # [parent_id, name] -> mailbox_id (live mailboxes)
        self.role = a["role"]  # [role] -> mailbox_id
        self.storage = a["sid"]  # [storage] -> mailbox_id (attached storages)
        self.storage_counter = a["sctr"]  # [storage, name] -> int64
        self.uid = a["uid"]  # [storage, uid] -> MembershipRecord
        self.uid_modseq = a["uidms"]  # [storage, modseq, uid] -> b"" (CONDSTORE)
        self.vanished = a["gone"]  # [storage, modseq, uid] -> b"" (QRESYNC tombstones)
        self.deleted = a["del"]  # [storage, uid] -> b"" (messages with $deleted)
        self.received = a["recv"]  # [storage, received_us, email_id] -> (uid,)
        self.email = a["email"]  # [email_id] -> EmailRecord
        self.email_storage = a["emsid"]  # [email_id, storage] -> (uid,)
        self.summary = a["sum"]  # [email_id, chunk] -> bytes of the parsed summary
        self.thread = a["thr"]  # [thread_id] -> ThreadRecord
        self.thread_email = a["thre"]  # [thread_id, received_us, email_id] -> b""
        self.message_id = a["msgid"]  # [message_id] -> (thread_id,)
        self.delivery = a["dlv"]  # [delivery_id] -> DeliveryRecord
        self.log = a["log"]  # [kind, modseq, index] -> (object_id, op)
        self.cleanup = a["gc"]  # [storage] -> b"" (detached, to be emptied)

    def count_key(self, name: str) -> bytes:
        return self.counter.pack((name,))

    def storage_key(self, storage: int, name: str) -> bytes:
        return self.storage_counter.pack((storage, name))


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

    def encode(self) -> bytes:
        return pack(
            (self.parent_id, self.name, self.role, self.storage, self.subscribed, self.deleted)
        )

    @classmethod
    def decode(cls, raw: bytes) -> MailboxRecord:
        p, n, r, s, sub, d = unpack(raw)
        return cls(str(p), str(n), str(r), int(s), bool(sub), bool(d))


@dataclass(frozen=True, slots=True)
class EmailRecord:
    received_us: int  # received-at, microseconds since the epoch
    size: int
    blob_id: str
    thread_id: str
    keywords: tuple[str, ...]  # sorted, lowercase
    summary_chunks: int
    modseq: int  # last change of the email object

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
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> EmailRecord:
        r, size, blob, thread, kw, chunks, modseq = unpack(raw)
        return cls(int(r), int(size), str(blob), str(thread), tuple(kw), int(chunks), int(modseq))


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
        e, m, kw = unpack(raw)
        return cls(str(e), int(m), tuple(kw))


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """What a delivery id produced, so that a repeat returns it and stores nothing."""

    email_id: str
    mailbox_id: str
    uidvalidity: int
    uid: int
    modseq: int
    thread_id: str

    def encode(self) -> bytes:
        return pack(
            (
                self.email_id,
                self.mailbox_id,
                self.uidvalidity,
                self.uid,
                self.modseq,
                self.thread_id,
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> DeliveryRecord:
        e, m, v, u, ms, t = unpack(raw)
        return cls(str(e), str(m), int(v), int(u), int(ms), str(t))


def pack_int(n: int) -> bytes:
    return pack((n,))


def unpack_int(raw: bytes) -> int:
    return int(unpack(raw)[0])


def unpack_str(raw: bytes) -> str:
    return str(unpack(raw)[0])
