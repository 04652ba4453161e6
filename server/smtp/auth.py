"""AUTH PLAIN (RFC 4616) and LOGIN against the directory (RFC 4954).

The mechanisms are methods of the session (aiosmtpd calls ``auth_<MECHANISM>(self, args)``);
they live here as a mixin so the session module stays about the protocol.  Secrets go to
the directory and nowhere else: not to a log line, not to an exception message.
"""

from __future__ import annotations

import binascii
import logging
from base64 import b64decode
from typing import TYPE_CHECKING

from aiosmtpd.smtp import MISSING, AuthResult
from prometheus_client import Counter

from server.directory.base import Principal

if TYPE_CHECKING:
    from aiosmtpd.smtp import _Missing

    from server.smtp.logs import ConnectionLog
    from server.smtp.session import ListenerContext

log = logging.getLogger(__name__)

AUTH_FAILURES = Counter(
    "fdbmail_smtp_auth_failures_total",
    "Failed AUTH attempts by listener, mechanism and reason (credentials, malformed, "
    "account_limited, unavailable).",
    ("listener", "mechanism", "reason"),
)
AUTH_SUCCESSES = Counter(
    "fdbmail_smtp_auth_successes_total", "Successful AUTH by listener and mechanism.",
    ("listener", "mechanism"),
)

MECHANISMS = ("LOGIN", "PLAIN")


class SaslError(ValueError):
    """A malformed SASL response; ``reply`` is the SMTP reply."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def decode_plain(message: bytes) -> tuple[str, str]:
    """``[authzid] UTF8NUL authcid UTF8NUL passwd`` (RFC 4616 section 2): (login, secret).

    An authorization identity other than the login itself is refused: we do not let one
    user act as another."""
    parts = message.split(b"\0")
    if len(parts) != 3 or not parts[1]:
        raise SaslError("501 5.5.2 Malformed PLAIN response")
    try:
        authzid, login, secret = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        raise SaslError("501 5.5.2 PLAIN response is not UTF-8") from None
    if authzid and authzid != login:
        raise SaslError("535 5.7.8 Authorization identity not permitted")
    return login, secret


def decode_base64(text: str) -> bytes:
    try:
        return b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SaslError("501 5.5.2 Cannot decode base64") from None


class SaslMechanisms:
    """Mixin of :class:`server.smtp.session.SmtpSession`."""

    if TYPE_CHECKING:       # provided by the session and aiosmtpd's SMTP
        ctx: ListenerContext
        log: ConnectionLog
        peer_ip: str

        async def challenge_auth(self, challenge: str | bytes, encode_to_b64: bool = True,
                                 log_client_response: bool = False) -> _Missing | bytes: ...

        async def push(self, status: str | bytes) -> None: ...

    # Challenges of the LOGIN mechanism (draft-murchison-sasl-login).
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"

    async def auth_PLAIN(self, _: object, args: list[str]) -> AuthResult:
        try:
            if len(args) == 1:
                response = await self.challenge_auth("")
                if response is MISSING:
                    return self._auth_failed("PLAIN", "malformed", handled=True)
                assert isinstance(response, bytes)
            else:
                response = decode_base64(args[1])
            login, secret = decode_plain(response)
        except SaslError as e:
            await self.push(e.reply)
            return self._auth_failed("PLAIN", "malformed", handled=True)
        return await self._verify("PLAIN", login, secret)

    async def auth_LOGIN(self, _: object, args: list[str]) -> AuthResult:
        try:
            if len(args) == 1:
                raw_login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            else:
                raw_login = decode_base64(args[1])
            if raw_login is MISSING:
                return self._auth_failed("LOGIN", "malformed", handled=True)
            raw_secret = await self.challenge_auth(self.AuthLoginPasswordChallenge)
            if raw_secret is MISSING:
                return self._auth_failed("LOGIN", "malformed", handled=True)
            assert isinstance(raw_login, bytes) and isinstance(raw_secret, bytes)
            try:
                login, secret = raw_login.decode("utf-8"), raw_secret.decode("utf-8")
            except UnicodeDecodeError:
                raise SaslError("501 5.5.2 LOGIN response is not UTF-8") from None
        except SaslError as e:
            await self.push(e.reply)
            return self._auth_failed("LOGIN", "malformed", handled=True)
        return await self._verify("LOGIN", login, secret)

    async def _verify(self, mechanism: str, login: str, secret: str) -> AuthResult:
        if self.ctx.limits.account_blocked(login):
            # whoever asks, with whatever password: the guesses at this account stop here
            self.log.warning("AUTH %s refused: too many failures for login %r", mechanism,
                             login)
            AUTH_FAILURES.labels(self.ctx.kind, mechanism, "account_limited").inc()
            self.ctx.limits.auth_failed(self.peer_ip)
            return AuthResult(success=False, handled=False,
                              message="454 4.7.0 Too many failed logins for this account, "
                                      "try later")
        try:
            principal: Principal | None = await self.ctx.handler.directory.authenticate(
                login, secret)
        except Exception:
            self.log.exception("directory failed during AUTH")
            AUTH_FAILURES.labels(self.ctx.kind, mechanism, "unavailable").inc()
            return AuthResult(success=False, handled=False,
                              message="454 4.7.0 Temporary authentication failure")
        if principal is None:
            self.log.info("AUTH %s failed for login %r", mechanism, login)
            return self._auth_failed(mechanism, "credentials", handled=False, login=login)
        self.log.info("AUTH %s succeeded as %s", mechanism, principal.name)
        AUTH_SUCCESSES.labels(self.ctx.kind, mechanism).inc()
        return AuthResult(success=True, auth_data=principal)

    def _auth_failed(self, mechanism: str, reason: str, *,
                     handled: bool, login: str = "") -> AuthResult:
        AUTH_FAILURES.labels(self.ctx.kind, mechanism, reason).inc()
        self.ctx.limits.auth_failed(self.peer_ip, login)
        return AuthResult(success=False, handled=handled)
