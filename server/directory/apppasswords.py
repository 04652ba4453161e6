"""App passwords: tokens a user makes for one client (a phone, a sync script) and
revokes without changing their password.  Stored hashed by :mod:`fdb_layers.tokens`.

Where they work.  A token is a bearer token for JMAP (RFC 6750), and it is also a
password for the login it was made under, everywhere a password is checked: HTTP
Basic, IMAP and SMTP AUTH PLAIN/LOGIN.  Real servers do the same (Fastmail, Gmail,
Stalwart app passwords), because most IMAP and SMTP clients know nothing but a login
and a password.  That costs one wrapper: :class:`AppPasswords` is a
:class:`~server.directory.base.Directory` whose ``authenticate`` accepts a token in
force for that login before asking the directory itself; the node hands this
wrapper to every protocol.

Tokens start with :data:`PREFIX` (so that a leaked one is recognisable, like GitHub's
``ghp_``), then 256 random bits.  A secret without the prefix never reaches the token
store; one with it that is no token in force still goes to the directory (a real
password may begin that way).  Credential caches must not keep token logins (a
revocation must take effect at once): :func:`is_app_password` tells them.

The directory stays the authority over the person: a token names its login, and the
directory is asked for that principal at every use, so a user removed or disabled in
the directory loses their tokens too, and a token whose login now names another
account (same login, new id) is refused."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable

from prometheus_client import Counter

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.tokens import (
    MAX_NAME,
    AppToken,
    create_token,
    find_token,
    list_tokens,
    revoke_token,
    token_digest,
    touch_token,
)

from .base import Directory, Principal, password_versions

log = logging.getLogger(__name__)

PREFIX = "fdbapp_"
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")  # what create() makes: nothing else is looked up
LAST_USED_INTERVAL = 3600  # seconds: last-used is written at most this often per token

TOKEN_CHECKS = Counter(
    "fdbmail_app_password_checks_total",
    "App passwords presented (bearer tokens and passwords with the app-password "
    "prefix), by result: ok, unknown (no token in force), principal (its login no "
    "longer names its account).",
    ["result"])
TOKEN_WRITES = Counter(
    "fdbmail_app_password_changes_total",
    "App passwords created and revoked.", ["action"])


def is_app_password(secret: str) -> bool:
    return secret.startswith(PREFIX)


def names_principal(principal: Principal, login: str) -> bool:
    """Whether ``login`` (as typed at a login prompt) names ``principal``."""
    wanted = login.casefold()
    return wanted in {principal.name.casefold(), principal.id.casefold(),
                      *(e.casefold() for e in principal.emails)}


class AppPasswords:
    """The directory with app passwords added (see the module's docstring), and the
    token store's operations for one principal at a time."""

    def __init__(self, inner: Directory, engine: Engine, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.inner, self.engine, self.clock = inner, engine, clock
        self._versions = password_versions(inner)

    # --- managing tokens --------------------------------------------------------------
    async def create(self, principal: Principal, name: str) -> tuple[AppToken, str]:
        """A new token for ``principal``: its record and its secret, which exists
        nowhere else afterwards.  ValueError for a bad name; TooManyTokens."""
        name = name.strip()
        if not name or len(name) > MAX_NAME or not name.isprintable():
            raise ValueError(f"a token's name is 1 to {MAX_NAME} printable characters")
        secret = PREFIX + secrets.token_urlsafe(32)
        token = AppToken(secrets.token_hex(8), name, principal.name, int(self.clock()),
                         digest=token_digest(secret))
        stored = await transact(self.engine, create_token, principal.id, token)
        TOKEN_WRITES.labels("create").inc()
        return stored, secret

    async def tokens_of(self, principal: Principal) -> list[AppToken]:
        return await transact(self.engine, list_tokens, principal.id)

    async def revoke(self, principal: Principal, token_id: str) -> bool:
        if not _TOKEN_ID.fullmatch(token_id):
            return False
        done = await transact(self.engine, revoke_token, principal.id, token_id,
                              int(self.clock()))
        if done:
            TOKEN_WRITES.labels("revoke").inc()
        return done

    # --- checking them ----------------------------------------------------------------
    async def verify(self, token: str) -> Principal | None:
        """The principal a token in force stands for (a bearer token); None otherwise.
        Raises what the directory raises when it cannot answer."""
        if not is_app_password(token):
            return None
        found = await transact(self.engine, find_token, token_digest(token))
        if found is None:
            TOKEN_CHECKS.labels("unknown").inc()
            return None
        account_id, record = found
        principal = await self.inner.get_principal(record.login)
        if principal is None or principal.id != account_id:
            TOKEN_CHECKS.labels("principal").inc()
            return None
        TOKEN_CHECKS.labels("ok").inc()
        now = int(self.clock())
        if not record.last_used or now - record.last_used >= LAST_USED_INTERVAL:
            try:
                await transact(self.engine, touch_token, account_id, record.id, now,
                               LAST_USED_INTERVAL)
            except Exception:  # a statistic: never worth refusing a login over
                log.warning("could not record the use of an app password", exc_info=True)
        return principal

    # --- the Directory protocol -------------------------------------------------------
    async def authenticate(self, login: str, secret: str) -> Principal | None:
        if is_app_password(secret):
            principal = await self.verify(secret)
            if principal is not None and names_principal(principal, login):
                return principal
        return await self.inner.authenticate(login, secret)

    async def password_version(self, login: str) -> str | None:
        if self._versions is not None:
            return await self._versions.password_version(login)
        return None

    async def get_principal(self, name: str) -> Principal | None:
        return await self.inner.get_principal(name)

    async def resolve_recipient(self, address: str) -> list[Principal]:
        return await self.inner.resolve_recipient(address)

    async def is_local_domain(self, domain: str) -> bool:
        return await self.inner.is_local_domain(domain)

    async def list_domains(self) -> list[str]:
        return await self.inner.list_domains()

    async def close(self) -> None:
        await self.inner.close()
