"""MTA-STS policies of remote domains (RFC 8461 section 5.1): the cache every node's
delivery worker shares, one record per domain with the policy's id, its text and
when it was fetched; the record is stale after its ``max_age``.

Every write takes ``tr`` first and never commits."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from .engine.base import Transaction
from .keys import Subspace

# --- layout: every key of this layer -------------------------------------------------
LAYOUT = (1, 0)  # layout["mtasts"] (see fdb_layers.layout)
ROOT = Subspace(("mtasts",))
POLICY = ROOT["pol"]  # [domain lowercase] -> JSON of CachedPolicy

MAX_TEXT = 65_536  # octets of a policy's text (the fetcher's own cap)


@dataclass(frozen=True, slots=True)
class CachedPolicy:
    policy_id: str  # the id of the TXT record it was fetched for (RFC 8461 section 3.1)
    text: str  # the policy as served (RFC 8461 section 3.2)
    fetched_at: float  # seconds since the epoch
    max_age: int  # seconds

    def fresh(self, now: float) -> bool:
        return now < self.fetched_at + self.max_age


async def get_policy(tr: Transaction, domain: str) -> CachedPolicy | None:
    raw = await tr.get(POLICY.pack((domain.lower(),)))
    return None if raw is None else CachedPolicy(**json.loads(raw))


async def set_policy(tr: Transaction, domain: str, policy: CachedPolicy) -> None:
    if len(policy.text.encode()) > MAX_TEXT:
        raise ValueError(f"a policy has at most {MAX_TEXT} octets")
    tr.set(POLICY.pack((domain.lower(),)), json.dumps(asdict(policy)).encode())


async def delete_policy(tr: Transaction, domain: str) -> None:
    tr.clear(POLICY.pack((domain.lower(),)))
