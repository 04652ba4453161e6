"""Vacation responses (JMAP VacationResponse, RFC 8621 section 8): one per account, and
whom it answered when.

The record is the account's singleton; its state is a per-account counter that every
write moves.  ``replied`` keeps, per sender, when the last automatic reply went out and
for which delivery, so a sender is answered once per period (RFC 3834 section 2, RFC 5230
section 4.2); writing the response clears them, so a changed message goes out again.

Every write takes ``tr`` first and never commits.  :func:`claim_reply` is named by the
delivery it answers: run again after ``commit_unknown_result`` it finds its own mark and
answers True again (the reply's own id then makes the second send a no-op)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from .engine.base import Engine, Transaction, Watch
from .keys import Subspace, decode_int, encode_int, pack, unpack

# --- layout: every key of this layer -------------------------------------------------
LAYOUT = (1, 0)  # layout["vacation"] (see fdb_layers.layout)
ROOT = Subspace(("vacation",))
RECORD = ROOT["rec"]  # [account_id] -> JSON of Vacation
COUNTER = ROOT["seq"]  # [account_id] -> int64 LE: the state
REPLIED = ROOT["sent"]  # [account_id, sender lowercase] -> pack((time, delivery id))

MAX_TEXT = 40_000  # characters of each body and of the subject together, per field


@dataclass(frozen=True, slots=True)
class Vacation:
    is_enabled: bool = False
    from_date: float | None = None  # seconds since the epoch
    to_date: float | None = None
    subject: str | None = None
    text_body: str | None = None
    html_body: str | None = None

    def active(self, now: float) -> bool:
        """Enabled, and ``now`` within [fromDate, toDate) (RFC 8621 section 8)."""
        return self.is_enabled and (self.from_date is None or now >= self.from_date) \
            and (self.to_date is None or now < self.to_date)


async def get_vacation_state(tr: Transaction, account_id: str) -> int:
    return decode_int(await tr.get(COUNTER.pack((account_id,))))


async def get_vacation(tr: Transaction, account_id: str) -> Vacation:
    raw = await tr.get(RECORD.pack((account_id,)))
    return Vacation() if raw is None else Vacation(**json.loads(raw))


async def set_vacation(tr: Transaction, account_id: str, vacation: Vacation) -> int:
    """Store the response (the new state); whom it answered is forgotten."""
    for text in (vacation.subject, vacation.text_body, vacation.html_body):
        if text is not None and len(text) > MAX_TEXT:
            raise ValueError(f"at most {MAX_TEXT} characters")
    seq = await get_vacation_state(tr, account_id) + 1
    tr.set(COUNTER.pack((account_id,)), encode_int(seq))
    tr.set(RECORD.pack((account_id,)), json.dumps(asdict(vacation)).encode())
    tr.clear_range(*REPLIED.range((account_id,)))
    return seq


async def claim_reply(tr: Transaction, account_id: str, sender: str, *, now: float,
                      period: float, delivery_id: str) -> bool:
    """Whether to answer ``sender`` now: not answered within ``period`` seconds (or
    answered for this very delivery).  True records the answer."""
    key = REPLIED.pack((account_id, sender.lower()[:500]))
    raw = await tr.get(key)
    if raw is not None:
        when, for_delivery = unpack(raw)
        if str(for_delivery) == delivery_id:
            return True
        if now - float(when) < period:
            return False
    tr.set(key, pack((now, delivery_id)))
    return True


async def watch_vacation(engine: Engine, account_id: str) -> Watch:
    """A watch that fires at the account's next vacation response change (JMAP push)."""
    return await engine.watch(COUNTER.pack((account_id,)))
