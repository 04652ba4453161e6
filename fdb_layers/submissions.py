"""Email submissions (JMAP EmailSubmission, RFC 8621 section 7): what an account sent,
to whom, and how delivery went.

One record per submission under the account, a per-account change counter (the JMAP
state) and a log of which submission changed at which count, so EmailSubmission/changes
is exact.  A destroyed submission leaves a tombstone (its id, the count it was created
and destroyed at) so /changes reports it.

Every write takes ``tr`` first and never commits.  The caller picks the submission id
(and derives the queue and delivery ids from it), so a create run again after
``commit_unknown_result`` finds its record and changes nothing; a destroy carries its
own id so that its retry answers True again."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from .engine.base import Engine, Transaction, Watch
from .keys import Subspace, decode_int, encode_int

# --- layout: every key of this layer -------------------------------------------------
LAYOUT = (1, 0)  # layout["submissions"] (see fdb_layers.layout)
ROOT = Subspace(("submissions",))
RECORD = ROOT["rec"]  # [account_id, submission_id] -> JSON of Submission
COUNTER = ROOT["seq"]  # [account_id] -> int64 LE: the account's change counter (state)
CHANGE = ROOT["log"]  # [account_id, seq] -> submission id changed at that count

MAX_RECIPIENTS = 100  # per submission: keeps a record far below 100 KB
MAX_LISTED = 10_000  # submissions one query reads at most


@dataclass(frozen=True, slots=True)
class Address:
    """An SMTP path of the envelope with its parameters (RFC 8621 section 7)."""

    email: str
    parameters: dict[str, str | None] | None = None


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """One recipient's delivery status (section 7): ``delivered`` is queued, yes, no
    or unknown; ``displayed`` unknown or yes."""

    smtp_reply: str
    delivered: str
    displayed: str = "unknown"


@dataclass(frozen=True, slots=True)
class Submission:
    id: str
    identity_id: str
    email_id: str
    thread_id: str
    mail_from: Address
    rcpt_to: tuple[Address, ...]
    send_at: float
    queue_id: str = ""  # "" when every recipient was local
    undo_status: str = "final"
    delivery_status: dict[str, DeliveryStatus] = field(default_factory=dict)
    created: int = 0  # the counter when it was created
    destroyed: int = 0  # the counter when it was destroyed; 0: it exists
    op_id: str = ""  # the destroy that made the tombstone


def _encode(s: Submission) -> bytes:
    return json.dumps({
        "identity": s.identity_id, "email": s.email_id, "thread": s.thread_id,
        "from": [s.mail_from.email, s.mail_from.parameters],
        "to": [[a.email, a.parameters] for a in s.rcpt_to], "sendAt": s.send_at,
        "queue": s.queue_id, "undo": s.undo_status,
        "status": {k: [v.smtp_reply, v.delivered, v.displayed]
                   for k, v in s.delivery_status.items()},
        "created": s.created, "destroyed": s.destroyed, "op": s.op_id,
    }, separators=(",", ":")).encode()


def _decode(submission_id: str, raw: bytes) -> Submission:
    d = json.loads(raw)
    return Submission(
        submission_id, d["identity"], d["email"], d["thread"],
        Address(d["from"][0], d["from"][1]),
        tuple(Address(e, p) for e, p in d["to"]), float(d["sendAt"]), d["queue"],
        d["undo"], {k: DeliveryStatus(*v) for k, v in d["status"].items()},
        int(d["created"]), int(d["destroyed"]), d["op"])


async def get_submission_state(tr: Transaction, account_id: str) -> int:
    return decode_int(await tr.get(COUNTER.pack((account_id,))))


async def _next(tr: Transaction, account_id: str, submission_id: str) -> int:
    seq = await get_submission_state(tr, account_id) + 1
    tr.set(COUNTER.pack((account_id,)), encode_int(seq))
    tr.set(CHANGE.pack((account_id, seq)), submission_id.encode())
    return seq


async def get_submission(tr: Transaction, account_id: str,
                         submission_id: str) -> Submission | None:
    """The submission (a tombstone too: check ``destroyed``), or None."""
    raw = await tr.get(RECORD.pack((account_id, submission_id)))
    return None if raw is None else _decode(submission_id, raw)


async def list_submissions(tr: Transaction, account_id: str) -> list[Submission]:
    """The account's submissions (not destroyed ones), at most MAX_LISTED."""
    begin, end = RECORD.range((account_id,))
    out = []
    for kv in await tr.get_range(begin, end, limit=MAX_LISTED):
        s = _decode(str(RECORD.unpack(kv.key)[1]), kv.value)
        if not s.destroyed:
            out.append(s)
    return out


async def create_submission(tr: Transaction, account_id: str,
                            submission: Submission) -> Submission:
    """Store a new submission; a repeat of the same id returns the stored one."""
    if len(submission.rcpt_to) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} recipients")
    old = await get_submission(tr, account_id, submission.id)
    if old is not None:
        return old
    seq = await _next(tr, account_id, submission.id)
    stored = replace(submission, created=seq, destroyed=0, op_id="")
    tr.set(RECORD.pack((account_id, submission.id)), _encode(stored))
    return stored


async def set_delivery_status(tr: Transaction, account_id: str, submission_id: str,
                              status: dict[str, DeliveryStatus]) -> bool:
    """Replace a submission's delivery status (the JMAP state moves only if it
    changed); False if there is no such submission."""
    old = await get_submission(tr, account_id, submission_id)
    if old is None or old.destroyed:
        return False
    if old.delivery_status == status:
        return True
    await _next(tr, account_id, submission_id)
    tr.set(RECORD.pack((account_id, submission_id)),
           _encode(replace(old, delivery_status=dict(status))))
    return True


async def destroy_submission(tr: Transaction, account_id: str, submission_id: str, *,
                             op_id: str) -> bool:
    """Mark a submission destroyed; False if there was none.  ``op_id`` (the caller's,
    once per destroy) makes a retry after an unknown commit result answer True."""
    old = await get_submission(tr, account_id, submission_id)
    if old is not None and old.destroyed and old.op_id == op_id:
        return True
    if old is None or old.destroyed:
        return False
    seq = await _next(tr, account_id, submission_id)
    tr.set(RECORD.pack((account_id, submission_id)),
           _encode(replace(old, destroyed=seq, op_id=op_id)))
    return True


@dataclass(frozen=True, slots=True)
class SubmissionChanges:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    destroyed: tuple[str, ...]
    new_state: int
    has_more: bool


async def get_submission_changes(tr: Transaction, account_id: str, since: int,
                                 max_changes: int | None = None) -> SubmissionChanges | None:
    """What changed after count ``since``; None if ``since`` is not a count we gave."""
    current = await get_submission_state(tr, account_id)
    if since < 0 or since > current:
        return None
    rows = await tr.get_range(CHANGE.pack((account_id, since + 1)),
                              CHANGE.range((account_id,))[1])
    new_state = current
    seen: dict[str, None] = {}
    for kv in rows:
        submission_id = kv.value.decode()
        if max_changes is not None and submission_id not in seen and \
                len(seen) == max_changes:
            new_state = int(CHANGE.unpack(kv.key)[1]) - 1
            break
        seen[submission_id] = None
    has_more = new_state != current
    created, updated, destroyed = [], [], []
    for submission_id in seen:
        s = await get_submission(tr, account_id, submission_id)
        if s is None:
            continue
        if s.destroyed and s.destroyed <= new_state:
            if s.created <= since:
                destroyed.append(submission_id)
        elif s.created > since:
            created.append(submission_id)
        else:
            updated.append(submission_id)
    return SubmissionChanges(tuple(created), tuple(updated), tuple(destroyed), new_state,
                             has_more)


async def watch_submissions(engine: Engine, account_id: str) -> Watch:
    """A watch that fires at the account's next submission change (JMAP push)."""
    return await engine.watch(COUNTER.pack((account_id,)))
