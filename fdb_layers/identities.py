"""Sending identities (JMAP Identity, RFC 8621 section 6): what an account stored about
the addresses it sends from -- a name, reply-to and bcc addresses, signatures.

Which addresses an account may send from is the directory's business, never stored
here: callers pass the identities' values and check addresses themselves.  This layer
keeps the records and a per-account change counter (the JMAP state) with a log of
which identity changed at which count, so Identity/changes is exact.

Records are never removed but marked destroyed (a tombstone with the count it happened
at), so /changes can report them; a tombstone is a few dozen bytes and accounts have a
handful of identities.  Every write takes ``tr`` first and never commits.  The caller
picks the identity id, so a write run again after ``commit_unknown_result`` stores the
same values; it only moves the counter once more (a /changes client then sees the
identity as updated again, which is harmless), and a destroy carries its own id so
that its retry answers True again."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .engine.base import Engine, Transaction, Watch
from .keys import Subspace, decode_int, encode_int, pack, unpack

# --- layout: every key of this layer -------------------------------------------------
LAYOUT = (1, 0)  # layout["identities"] (see fdb_layers.layout)
ROOT = Subspace(("identities",))
RECORD = ROOT["rec"]  # [account_id, identity_id] -> pack(record fields, see Identity)
COUNTER = ROOT["seq"]  # [account_id] -> int64 LE: the account's change counter (state)
CHANGE = ROOT["log"]  # [account_id, seq] -> identity id changed at that count

MAX_PER_ACCOUNT = 100


class IdentityError(Exception):
    """An identity could not be written."""


class TooManyIdentities(IdentityError):
    pass


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    email: str
    name: str = ""
    reply_to: tuple[tuple[str | None, str], ...] | None = None  # (name, email)
    bcc: tuple[tuple[str | None, str], ...] | None = None
    text_signature: str = ""
    html_signature: str = ""
    created: int = 0  # the counter when it was first written
    destroyed: int = 0  # the counter when it was destroyed; 0: it exists
    op_id: str = ""  # the destroy that made the tombstone (a retry of it finds it)


def _encode(i: Identity) -> bytes:
    addresses = json.dumps([i.reply_to, i.bcc])
    return pack((i.email, i.name, addresses, i.text_signature, i.html_signature,
                 i.created, i.destroyed, i.op_id))


def _decode(identity_id: str, raw: bytes) -> Identity:
    email, name, addresses, text, html, created, destroyed, op_id = unpack(raw)
    reply_to, bcc = json.loads(str(addresses))

    def addrs(value: list[list[str | None]] | None) -> tuple[tuple[str | None, str], ...] | None:
        return None if value is None else tuple((a[0], str(a[1])) for a in value)
    return Identity(identity_id, str(email), str(name), addrs(reply_to), addrs(bcc),
                    str(text), str(html), int(created), int(destroyed), str(op_id))


async def get_identity_state(tr: Transaction, account_id: str) -> int:
    return decode_int(await tr.get(COUNTER.pack((account_id,))))


async def watch_identities(engine: Engine, account_id: str) -> Watch:
    """A watch that fires at the account's next identity change (JMAP push)."""
    return await engine.watch(COUNTER.pack((account_id,)))


async def _next(tr: Transaction, account_id: str, identity_id: str) -> int:
    seq = await get_identity_state(tr, account_id) + 1
    tr.set(COUNTER.pack((account_id,)), encode_int(seq))
    tr.set(CHANGE.pack((account_id, seq)), identity_id.encode())
    return seq


async def list_identities(tr: Transaction, account_id: str, *,
                          include_destroyed: bool = False) -> list[Identity]:
    """The account's stored identities (not the directory's defaults nobody changed)."""
    begin, end = RECORD.range((account_id,))
    out = []
    for kv in await tr.get_range(begin, end, limit=MAX_PER_ACCOUNT * 4):
        identity = _decode(str(RECORD.unpack(kv.key)[1]), kv.value)
        if include_destroyed or not identity.destroyed:
            out.append(identity)
    return out


async def get_identity(tr: Transaction, account_id: str, identity_id: str) -> Identity | None:
    raw = await tr.get(RECORD.pack((account_id, identity_id)))
    return None if raw is None else _decode(identity_id, raw)


async def set_identity(tr: Transaction, account_id: str, identity: Identity, *,
                       existed: bool = False) -> Identity:
    """Create or replace an identity (``created`` and ``destroyed`` are the layer's).
    ``existed``: the caller showed it before it was stored (a default the caller derives
    from elsewhere), so its first write is an update, not a creation."""
    old = await get_identity(tr, account_id, identity.id)
    if old is None and len(await list_identities(tr, account_id)) >= MAX_PER_ACCOUNT:
        raise TooManyIdentities(f"at most {MAX_PER_ACCOUNT} identities")
    seq = await _next(tr, account_id, identity.id)
    if old is None:
        created = 0 if existed else seq
    else:
        created = seq if old.destroyed else old.created
    stored = Identity(identity.id, identity.email, identity.name, identity.reply_to,
                      identity.bcc, identity.text_signature, identity.html_signature,
                      created, 0)
    tr.set(RECORD.pack((account_id, identity.id)), _encode(stored))
    return stored


async def destroy_identity(tr: Transaction, account_id: str, identity_id: str, *,
                           op_id: str) -> bool:
    """Mark an identity destroyed; False if there was none (or it was destroyed).
    ``op_id`` (the caller's, once per destroy) makes a retry after an unknown commit
    result answer True again."""
    old = await get_identity(tr, account_id, identity_id)
    if old is not None and old.destroyed and old.op_id == op_id:
        return True
    if old is None or old.destroyed:
        return False
    seq = await _next(tr, account_id, identity_id)
    gone = Identity(old.id, old.email, old.name, old.reply_to, old.bcc,
                    old.text_signature, old.html_signature, old.created, seq, op_id)
    tr.set(RECORD.pack((account_id, identity_id)), _encode(gone))
    return True


@dataclass(frozen=True, slots=True)
class IdentityChanges:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    destroyed: tuple[str, ...]
    new_state: int
    has_more: bool


async def get_identity_changes(tr: Transaction, account_id: str, since: int,
                               max_changes: int | None = None) -> IdentityChanges | None:
    """What changed after count ``since``; None if ``since`` is not a count we gave."""
    current = await get_identity_state(tr, account_id)
    if since < 0 or since > current:
        return None
    rows = await tr.get_range(CHANGE.pack((account_id, since + 1)),
                              CHANGE.range((account_id,))[1])
    ids = list(dict.fromkeys(kv.value.decode() for kv in rows))
    has_more = max_changes is not None and len(ids) > max_changes
    new_state = current
    if has_more:
        assert max_changes is not None
        keep = set(ids[:max_changes])
        # the state after the last change of a kept id that comes before any other
        new_state = since
        for kv in rows:
            if kv.value.decode() not in keep:
                break
            new_state = int(CHANGE.unpack(kv.key)[1])
        ids = [kv.value.decode() for kv in rows
               if int(CHANGE.unpack(kv.key)[1]) <= new_state]
        ids = list(dict.fromkeys(ids))
    created, updated, destroyed = [], [], []
    for identity_id in ids:
        identity = await get_identity(tr, account_id, identity_id)
        if identity is None:
            continue
        if identity.destroyed and identity.destroyed <= new_state:
            if identity.created <= since:
                destroyed.append(identity_id)
        elif identity.created > since:
            created.append(identity_id)
        else:
            updated.append(identity_id)
    return IdentityChanges(tuple(created), tuple(updated), tuple(destroyed), new_state,
                           has_more)
