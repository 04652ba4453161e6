"""Who is calling: HTTP Basic (RFC 7617) against the directory, or a bearer token
(RFC 6750) through a :class:`TokenVerifier` (the node's app passwords,
:mod:`server.directory.apppasswords`, which also work as Basic passwords).  Managing
app passwords takes the real password (``password_only``): a token cannot mint
others or outlive its own revocation by making a new one.

A directory that cannot answer is 503, never 401 (the password may well be right);
credentials over plain HTTP are refused unless configured otherwise (like SMTP's
``auth_require_tls``); failed logins are counted per client IP and a client over the limit
gets 429 without the directory being asked."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Protocol

from server.directory.apppasswords import is_app_password
from server.directory.base import Directory, DirectoryError, Principal
from server.sasl import Authenticated, CredentialCache, Credentials, Unavailable
from server.sasl import Authenticator as Logins

from .errors import Refused
from .limits import FailureWindow

log = logging.getLogger(__name__)

REALM = "fdbmail"


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal | None:
        """The principal a bearer token stands for; None for an unknown or revoked one."""
        ...


class Authenticator:
    def __init__(self, directory: Directory, failures: FailureWindow, *,
                 require_tls: bool = True, tokens: TokenVerifier | None = None) -> None:
        self.directory, self.failures = directory, failures
        self.require_tls, self.tokens = require_tls, tokens
        # Basic goes through the node's login check with its credential cache, as IMAP
        # and SMTP AUTH do: a client sends its password with every request, and a full
        # password hash each time (bcrypt: hundreds of ms of CPU) would be the request
        self.logins = Logins(directory, CredentialCache())

    def challenge(self) -> dict[str, str]:
        schemes = [f'Basic realm="{REALM}", charset="UTF-8"']
        if self.tokens is not None:
            schemes.append(f'Bearer realm="{REALM}"')
        return {"WWW-Authenticate": ", ".join(schemes)}

    async def authenticate(self, authorization: str | None, *, client: str,
                           secure: bool, password_only: bool = False) -> Principal:
        """The caller's principal, or :class:`Refused`.  ``password_only``: HTTP Basic
        with the directory's password, no app password or bearer token."""
        if self.failures.blocked(client):
            raise Refused("rateLimited", "too many failed logins; try again later",
                          {"Retry-After": str(int(self.failures.window))})
        if not authorization:
            raise Refused("unauthorized", "authentication required", self.challenge())
        if self.require_tls and not secure:
            raise Refused("tlsRequired", "credentials are accepted over HTTPS only")
        scheme, _, value = authorization.strip().partition(" ")
        try:
            principal = await self._check(scheme.lower(), value.strip(), password_only)
        except DirectoryError as e:
            log.warning("login not checked, the directory is unavailable: %s", e)
            raise Refused("unavailable", "the directory is unavailable, try again later",
                          {"Retry-After": "30"}) from None
        if principal is None:
            self.failures.failed(client)
            raise Refused("unauthorized", "invalid credentials", self.challenge())
        return principal

    async def _check(self, scheme: str, value: str, password_only: bool) -> Principal | None:
        if scheme == "basic":
            credentials = _basic(value)
            if credentials is None or (password_only and is_app_password(credentials[1])):
                return None
            outcome = await self.logins.verify(Credentials(*credentials))
            if isinstance(outcome, Unavailable):
                raise DirectoryError("the directory failed while checking a login")
            return outcome.principal if isinstance(outcome, Authenticated) else None
        if scheme == "bearer" and self.tokens is not None and value and not password_only:
            return await self.tokens.verify(value)
        return None


def _basic(value: str) -> tuple[str, str] | None:
    """``user-id ":" password`` from a Basic credential (RFC 7617 section 2, UTF-8)."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    login, sep, secret = decoded.partition(":")
    if not sep or not login:
        return None
    return login, secret
