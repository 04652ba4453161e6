"""SMTP AUTH (RFC 4954) on the shared SASL mechanisms (:mod:`server.sasl`).

aiosmtpd calls ``auth_<MECHANISM>(self, args)``; each one here drives the mechanism's
state machine with SMTP's framing (``334`` challenges, base64 responses, ``*`` to
cancel, ``=`` for an empty initial response) and answers each outcome from one table.
The per-IP and per-account failure limits are SMTP's (:mod:`.limits`).  Secrets go to the
directory and nowhere else: not to a log line, not to an exception message.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiosmtpd.smtp import AuthResult
from prometheus_client import Counter

from server.sasl import (
    Aborted,
    Authenticated,
    Challenge,
    Credentials,
    Failed,
    FailReason,
    Malformed,
    Outcome,
    Registry,
    Unavailable,
    decode_initial,
    decode_response,
)

if TYPE_CHECKING:
    from server.smtp.logs import ConnectionLog
    from server.smtp.session import ListenerContext

log = logging.getLogger(__name__)

AUTH_FAILURES = Counter(
    "fdbmail_smtp_auth_failures_total",
    "Failed AUTH attempts by listener, mechanism and reason (credentials, authzid, "
    "malformed, account_limited, unavailable).",
    ("listener", "mechanism", "reason"),
)
AUTH_SUCCESSES = Counter(
    "fdbmail_smtp_auth_successes_total", "Successful AUTH by listener and mechanism.",
    ("listener", "mechanism"),
)

REGISTRY = Registry()
MECHANISMS = REGISTRY.names

# SMTP's replies to the outcomes of an exchange (RFC 4954 sections 4 and 6).
INVALID = "535 5.7.8 Authentication credentials invalid"
NOT_PERMITTED = "535 5.7.8 Authorization identity not permitted"
ABORTED = "501 5.7.0 AUTH aborted"
TEMPORARY = "454 4.7.0 Temporary authentication failure"
ACCOUNT_LIMITED = "454 4.7.0 Too many failed logins for this account, try later"


def malformed_reply(outcome: Malformed) -> str:
    return f"501 5.5.2 {outcome.detail}"


class SaslMechanisms:
    """Mixin of :class:`server.smtp.session.SmtpSession`."""

    if TYPE_CHECKING:       # provided by the session and aiosmtpd's SMTP
        ctx: ListenerContext
        log: ConnectionLog
        peer_ip: str

        async def sasl_response(self, challenge: bytes) -> bytes | None: ...

        async def push(self, status: str | bytes) -> None: ...

    async def auth_PLAIN(self, _: object, args: list[str]) -> AuthResult:
        return await self._sasl_exchange(args)

    async def auth_LOGIN(self, _: object, args: list[str]) -> AuthResult:
        return await self._sasl_exchange(args)

    async def _sasl_exchange(self, args: list[str]) -> AuthResult:
        name = args[0].upper()
        # aiosmtpd has already refused AUTH where plaintext is not allowed (538)
        mechanism = REGISTRY.start(name, plaintext_allowed=True)
        assert mechanism is not None, name
        if len(args) > 1:
            initial = decode_initial(args[1].encode("utf-8", "surrogateescape"))
            step = initial if isinstance(initial, Aborted | Malformed) \
                else mechanism.start(initial)
        else:
            step = mechanism.start(None)
        while isinstance(step, Challenge):
            line = await self.sasl_response(step.data)
            if line is None:                 # too long: answered already
                return self._auth_failed(name, "malformed", handled=True)
            response = decode_response(line)
            step = response if isinstance(response, Aborted | Malformed) \
                else mechanism.respond(response)
        if isinstance(step, Credentials):
            if self.ctx.limits.account_blocked(step.authcid):
                # whoever asks, with whatever password: the guesses at this account stop
                self.log.warning("AUTH %s refused: too many failures for login %r", name,
                                 step.authcid)
                AUTH_FAILURES.labels(self.ctx.kind, name, "account_limited").inc()
                self.ctx.limits.auth_failed(self.peer_ip)
                return AuthResult(success=False, handled=False, message=ACCOUNT_LIMITED)
            step = await self.ctx.handler.authenticator.verify(step)
        return self._outcome(name, step)

    def _outcome(self, name: str, outcome: Outcome) -> AuthResult:
        match outcome:
            case Authenticated(principal=principal):
                self.log.info("AUTH %s succeeded as %s", name, principal.name)
                AUTH_SUCCESSES.labels(self.ctx.kind, name).inc()
                return AuthResult(success=True, auth_data=principal)
            case Failed(reason=FailReason.CREDENTIALS, authcid=login):
                self.log.info("AUTH %s failed for login %r", name, login)
                return self._auth_failed(name, "credentials", login=login, reply=INVALID)
            case Failed(authcid=login):
                self.log.info("AUTH %s: login %r may not use that authorization identity",
                              name, login)
                return self._auth_failed(name, "authzid", login=login, reply=NOT_PERMITTED)
            case Malformed():
                return self._auth_failed(name, "malformed", reply=malformed_reply(outcome))
            case Aborted():
                return self._auth_failed(name, "malformed", reply=ABORTED)
            case Unavailable():
                AUTH_FAILURES.labels(self.ctx.kind, name, "unavailable").inc()
                return AuthResult(success=False, handled=False, message=TEMPORARY)
        raise AssertionError(outcome)

    def _auth_failed(self, mechanism: str, reason: str, *, handled: bool = False,
                     login: str = "", reply: str | None = None) -> AuthResult:
        AUTH_FAILURES.labels(self.ctx.kind, mechanism, reason).inc()
        self.ctx.limits.auth_failed(self.peer_ip, login)
        return AuthResult(success=False, handled=handled, message=reply)
