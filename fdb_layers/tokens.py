"""App passwords (bearer tokens): secrets a user makes for one client and can revoke
without changing their password (issue 13).

Only a digest of each secret is stored, never the secret: the caller makes a token of
256 random bits, shows it once and passes :func:`token_digest` of it here.  A plain
SHA-256 is enough: a salted or slow hash protects guessable passwords, and 256 random
bits cannot be guessed; an HMAC under a key kept in this same store would add nothing.

Two keys per token: the account's record (name, created, last used, revoked), listed
per account, and an index from the digest to (account, token id), so that a presented
token is found with one read.  Revoking clears the index entry at once (the token no
longer authenticates) and keeps the record, marked, so that a list shows it.

Every write takes ``tr`` first and never commits.  The caller picks the token id and
the digest, so a create run again after ``commit_unknown_result`` finds its own record
and answers it; a revoke run again finds the token revoked and answers True again
(revoking is idempotent: the end state is the same)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from .engine.base import Transaction
from .keys import Subspace, pack, unpack

# --- layout: every key of this layer -------------------------------------------------
LAYOUT = (1, 0)  # layout["tokens"] (see fdb_layers.layout)
ROOT = Subspace(("tokens",))
RECORD = ROOT["rec"]  # [account_id, token_id] -> pack(record fields, see AppToken)
DIGEST = ROOT["dig"]  # [digest] -> pack((account_id, token_id)) while not revoked

MAX_PER_ACCOUNT = 50  # records, revoked ones included (the oldest revoked make room)
MAX_NAME = 100  # characters of a token's name


class TokenError(Exception):
    """A token could not be written."""


class TooManyTokens(TokenError):
    pass


@dataclass(frozen=True, slots=True)
class AppToken:
    id: str
    name: str
    login: str  # the login name it was made under: the directory is asked about it
    created: int  # POSIX seconds
    last_used: int = 0  # POSIX seconds, 0: never; updated at most once per interval
    revoked: int = 0  # POSIX seconds, 0: in force
    digest: bytes = b""


def token_digest(token: str) -> bytes:
    """What is stored for ``token``: its SHA-256 (see the module's docstring)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _encode(t: AppToken) -> bytes:
    return pack((t.name, t.login, t.created, t.last_used, t.revoked, t.digest))


def _decode(token_id: str, raw: bytes) -> AppToken:
    name, login, created, last_used, revoked, digest = unpack(raw)
    assert isinstance(digest, bytes)
    return AppToken(token_id, str(name), str(login), int(created),
                    int(last_used), int(revoked), digest)


async def get_token(tr: Transaction, account_id: str, token_id: str) -> AppToken | None:
    raw = await tr.get(RECORD.pack((account_id, token_id)))
    return None if raw is None else _decode(token_id, raw)


async def list_tokens(tr: Transaction, account_id: str) -> list[AppToken]:
    """The account's tokens, revoked ones included, oldest first."""
    begin, end = RECORD.range((account_id,))
    rows = await tr.get_range(begin, end, limit=MAX_PER_ACCOUNT * 2)
    tokens = [_decode(str(RECORD.unpack(kv.key)[1]), kv.value) for kv in rows]
    return sorted(tokens, key=lambda t: (t.created, t.id))


async def create_token(tr: Transaction, account_id: str, token: AppToken) -> AppToken:
    """Store ``token`` (its ``digest`` set by the caller, ``last_used`` and ``revoked``
    0).  Past :data:`MAX_PER_ACCOUNT` records the oldest revoked one is dropped;
    :class:`TooManyTokens` when every one is in force."""
    if len(token.digest) != 32 or token.revoked or token.last_used:
        raise ValueError("a new token needs its 32-octet digest and no use or revocation")
    old = await get_token(tr, account_id, token.id)
    if old is not None:
        if old.digest == token.digest:  # this very create, run again
            return old
        raise TokenError(f"token id {token.id!r} is taken")
    existing = await list_tokens(tr, account_id)
    if len(existing) >= MAX_PER_ACCOUNT:
        revoked = [t for t in existing if t.revoked]
        if not revoked:
            raise TooManyTokens(f"at most {MAX_PER_ACCOUNT} app passwords; revoke one first")
        tr.clear(RECORD.pack((account_id, revoked[0].id)))
    tr.set(RECORD.pack((account_id, token.id)), _encode(token))
    tr.set(DIGEST.pack((token.digest,)), pack((account_id, token.id)))
    return token


async def find_token(tr: Transaction, digest: bytes) -> tuple[str, AppToken] | None:
    """(account id, token) of the token in force whose digest is ``digest``."""
    raw = await tr.get(DIGEST.pack((digest,)))
    if raw is None:
        return None
    account_id, token_id = (str(v) for v in unpack(raw))
    token = await get_token(tr, account_id, token_id)
    if token is None or token.revoked or token.digest != digest:
        return None
    return account_id, token


async def revoke_token(tr: Transaction, account_id: str, token_id: str, now: int) -> bool:
    """Revoke one of the account's tokens; False if it has none of that id.  Revoking a
    revoked token changes nothing and answers True."""
    token = await get_token(tr, account_id, token_id)
    if token is None:
        return False
    if not token.revoked:
        tr.clear(DIGEST.pack((token.digest,)))
        tr.set(RECORD.pack((account_id, token_id)), _encode(replace(token, revoked=now)))
    return True


async def touch_token(tr: Transaction, account_id: str, token_id: str, now: int,
                      interval: int) -> None:
    """Record a use at ``now`` unless one within ``interval`` seconds is recorded (so
    that a busy token costs a write per interval, not per request)."""
    token = await get_token(tr, account_id, token_id)
    if token is None or token.revoked or (token.last_used
                                                 and now - token.last_used < interval):
        return
    tr.set(RECORD.pack((account_id, token_id)), _encode(replace(token, last_used=now)))
