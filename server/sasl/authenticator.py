"""Turns a mechanism's :class:`Credentials` into an outcome by asking the directory.

The authorization identity (RFC 4616 section 2, RFC 4422 section 3.4.1): empty means the
login's own; any other must name the same principal (its login name, id or one of its
addresses); we never let one user act as another.  It is checked after the password, so
that a wrong password says nothing about which identities exist.

A directory that fails (``DirectoryError``, or anything else it raises) is a temporary
failure, logged with its traceback: never "bad password".  Secrets go to the directory
and nowhere else.
"""

from __future__ import annotations

import logging

from server.directory.apppasswords import is_app_password
from server.directory.base import Directory, Principal, password_versions
from server.singleflight import SingleFlight

from .cache import CredentialCache
from .mechanism import Authenticated, Credentials, Failed, FailReason, Outcome, Unavailable

log = logging.getLogger(__name__)


def same_principal(principal: Principal, authcid: str, authzid: str) -> bool:
    """Whether ``authzid`` names ``principal`` (who logged in as ``authcid``)."""
    if not authzid or authzid == authcid:
        return True
    wanted = authzid.casefold()
    names = {principal.name.casefold(), principal.id.casefold()}
    names.update(e.casefold() for e in principal.emails)
    return wanted in names


class Authenticator:
    """Checks credentials against the directory; shared by every protocol of a node.
    With a :class:`CredentialCache` (and a directory that has password versions), a
    login verified a moment ago is not hashed again, and logins with the same credentials
    that arrive together (a client opening its connections at once) share one check
    rather than each paying a full password hash.  App passwords
    (:mod:`server.directory.apppasswords`) are checked by the directory given here
    when it is the node's :class:`AppPasswords`, and never cached."""

    def __init__(self, directory: Directory, cache: CredentialCache | None = None) -> None:
        self.directory = directory
        self.cache = cache
        self._versions = password_versions(directory)
        # checks under way, by cache key: a login that finds one waits for its result
        self._checking: SingleFlight[bytes, Principal | None] = SingleFlight()

    async def verify(self, credentials: Credentials) -> Outcome:
        try:
            principal = await self._principal(credentials)
        except Exception:
            log.exception("directory failed while authenticating %r", credentials.authcid)
            return Unavailable()
        if principal is None:
            return Failed(FailReason.CREDENTIALS, credentials.authcid)
        if not same_principal(principal, credentials.authcid, credentials.authzid):
            return Failed(FailReason.AUTHZID, credentials.authcid)
        return Authenticated(principal, credentials.authcid)

    async def _principal(self, credentials: Credentials) -> Principal | None:
        login, secret = credentials.authcid, credentials.secret
        version = None
        if self.cache is not None and self._versions is not None:
            version = await self._versions.password_version(login)
        if version is None or self.cache is None or is_app_password(secret):
            # an app password is never cached: its revocation takes effect at once
            return await self.directory.authenticate(login, secret)
        key = self.cache.key(login, secret, version)
        principal = self.cache.get(key)
        if principal is not None:
            return principal
        return await self._checking.run(key, lambda: self._check(key, login, secret))

    async def _check(self, key: bytes, login: str, secret: str) -> Principal | None:
        assert self.cache is not None
        principal = await self.directory.authenticate(login, secret)
        if principal is not None:
            self.cache.put(key, principal)
        return principal


__all__ = ["Authenticator", "same_principal"]
