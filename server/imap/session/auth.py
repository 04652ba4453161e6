"""Commands of any state (CAPABILITY, NOOP, LOGOUT, ID, RFC 9051 section 6.1) and of the
not-authenticated state (STARTTLS, LOGIN, AUTHENTICATE with SASL-IR: RFC 9051 section 6.2,
RFC 4959), plus ENABLE (RFC 5161) and NAMESPACE (RFC 2342)."""

from __future__ import annotations

import logging
import time

from fdb_layers.mail import ensure_account, transact
from server.imap.wire import commands as c
from server.imap.wire.framing import AuthenticateLine, Mode
from server.imap.wire.responses import (
    CapabilityData,
    Code,
    Continuation,
    EnabledData,
    IdData,
    NamespaceData,
    Tagged,
    Untagged,
)
from server.sasl import (
    Aborted,
    Authenticated,
    Challenge,
    Credentials,
    Failed,
    Malformed,
    Step,
    Unavailable,
    decode_initial,
    decode_response,
)

from . import selected
from .errors import bad, no
from .state import Action, Session, State

log = logging.getLogger(__name__)

SERVER_ID = (("name", "fdbmail"), ("vendor", "fdbmail"))


async def capability(s: Session, cmd: c.Command) -> None:
    s.write(CapabilityData(s.capabilities()))
    s.ok(cmd.tag, "CAPABILITY completed")


async def noop(s: Session, cmd: c.Command) -> None:
    from .selected import announce_changes

    await announce_changes(s)
    s.ok(cmd.tag, "NOOP completed")


async def logout(s: Session, cmd: c.Command) -> None:
    s.write(Untagged("BYE", "Logging out"))
    s.ok(cmd.tag, "LOGOUT completed")
    s.state = State.LOGOUT
    s.action = Action.CLOSE


async def id_(s: Session, cmd: c.Command) -> None:
    s.write(IdData(SERVER_ID))
    s.ok(cmd.tag, "ID completed")


async def starttls(s: Session, cmd: c.Command) -> None:
    if s.tls or not s.ctx.starttls:
        raise bad("TLS already active" if s.tls else "STARTTLS not available")
    s.ok(cmd.tag, "Begin TLS negotiation now")
    # RFC 9051 section 6.2.1: anything the client sent after STARTTLS before the handshake
    # is not trusted (command injection, CVE-2011-0411 style): drop it.
    s.reader.take_buffered()
    s.action = Action.STARTTLS


async def compress(s: Session, cmd: c.Command) -> None:
    """COMPRESS DEFLATE (RFC 4978 section 3): the tagged OK goes out uncompressed, then the
    connection deflates both directions; a second COMPRESS is refused."""
    assert isinstance(cmd, c.Compress)
    if cmd.mechanism != "DEFLATE":
        raise bad("Unknown compression algorithm")
    if s.compressed:
        raise no("Compression is already active", "COMPRESSIONACTIVE")
    s.ok(cmd.tag, "DEFLATE active")
    s.compressed = True
    s.action = Action.COMPRESS


def compress_started(s: Session) -> bytes:
    """The connection switched to deflate: what the client sent after COMPRESS is
    compressed data, handed back to be inflated."""
    s.action = None
    return s.reader.take_buffered()


def tls_started(s: Session) -> None:
    """The connection finished the STARTTLS handshake."""
    s.tls = True
    s.action = None


async def login(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Login)
    if not s.plaintext_allowed:
        raise no("LOGIN is disabled before STARTTLS", "PRIVACYREQUIRED")
    _check_limits(s, cmd.user)
    outcome = await s.ctx.authenticator.verify(Credentials(cmd.user, cmd.password))
    await _finish(s, cmd.tag, outcome)


def _check_limits(s: Session, login: str | None) -> None:
    """Too many failed logins from this client, or at this login name (from anywhere):
    refused before the directory is asked (issue 12; the limits SMTP AUTH has too).
    A refused attempt at a blocked login counts against the client."""
    failures = s.ctx.auth_failures
    if failures is None:
        return
    if failures.ip_blocked(s.peer_ip):
        log.warning("IMAP login refused: too many failures from %s (%s)", s.peer_ip, s.conn_id)
        raise no("Too many failed logins, try again later", "UNAVAILABLE")
    if login is not None and failures.account_blocked(login):
        log.warning("IMAP login refused: too many failures for login %r (%s)", login,
                    s.conn_id)
        failures.failed(s.peer_ip)
        raise no("Too many failed logins, try again later", "UNAVAILABLE")


async def authenticate(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Authenticate)
    _check_limits(s, None)
    mechanism = s.ctx.mechanisms.start(cmd.mechanism, plaintext_allowed=s.plaintext_allowed)
    if mechanism is None or mechanism.name != "PLAIN":
        if not s.plaintext_allowed and cmd.mechanism.upper() == "PLAIN":
            raise no("Authentication over TLS only", "PRIVACYREQUIRED")
        raise no("Unsupported authentication mechanism", "CANNOT")
    initial: bytes | None = None
    if cmd.initial is not None:
        decoded = decode_initial(cmd.initial.encode("ascii", "replace"))
        if not isinstance(decoded, bytes):
            await _finish(s, cmd.tag, decoded)
            return
        initial = decoded
    s.auth = (cmd.tag, mechanism)
    await _step(s, cmd.tag, mechanism.start(initial))


async def authenticate_line(s: Session, event: AuthenticateLine) -> None:
    assert s.auth is not None
    tag, mechanism = s.auth
    decoded = decode_response(event.data)
    if not isinstance(decoded, bytes):
        await _finish(s, tag, decoded)
        return
    await _step(s, tag, mechanism.respond(decoded))


async def _step(s: Session, tag: str, step: Step) -> None:
    if isinstance(step, Challenge):
        s.reader.set_mode(Mode.AUTHENTICATE)
        s.write(Continuation(challenge=step.data))   # "+ " and base64, empty or not
        return
    if isinstance(step, Credentials):
        s.auth = None                     # the exchange ends here, whatever the answer
        s.reader.set_mode(Mode.COMMAND)
        _check_limits(s, step.authcid)    # (its refusal is answered with the exchange's tag)
        step = await s.ctx.authenticator.verify(step)
    await _finish(s, tag, step)


async def _finish(s: Session, tag: str, outcome: object) -> None:
    """The one table from a SASL outcome to IMAP's answer (RFC 9051 section 6.2.2,
    RFC 5530 codes)."""
    s.auth = None
    s.reader.set_mode(Mode.COMMAND)
    if isinstance(outcome, Authenticated):
        account_id = outcome.principal.id
        await transact(s.ctx.engine, ensure_account, account_id,
                       uidvalidity_seed=int(time.time()))  # special-use mailboxes too
        s.account_id = account_id
        s.login = outcome.authcid
        s.principal_name = outcome.principal.name
        s.state = State.AUTHENTICATED
        log.info("IMAP login %s (%s)", account_id, s.conn_id)
        s.write(Tagged(tag, "OK", "Logged in", Code.capability(s.capabilities())))
    elif isinstance(outcome, Failed):
        _failed(s, outcome.authcid)
        s.write(Tagged(tag, "NO", "Authentication failed", Code("AUTHENTICATIONFAILED")))
    elif isinstance(outcome, Aborted):
        _failed(s, "")
        s.write(Tagged(tag, "BAD", "Authentication cancelled"))
    elif isinstance(outcome, Malformed):
        _failed(s, "")
        s.write(Tagged(tag, "BAD", outcome.detail))
    elif isinstance(outcome, Unavailable):
        s.write(Tagged(tag, "NO", "Authentication unavailable, try again later",
                       Code("UNAVAILABLE")))
    else:
        s.write(Tagged(tag, "NO", "Authentication failed", Code("AUTHENTICATIONFAILED")))


async def unauthenticate(s: Session, cmd: c.Command) -> None:
    """UNAUTHENTICATE (RFC 8437 section 3): back to the not-authenticated state with no
    mailbox selected (nothing expunged) and nothing enabled; TLS and COMPRESS stay."""
    s.selected = None
    s.notifying = None   # RFC 5465: events are for the account that asked
    s.account_id = s.login = s.principal_name = ""
    s.rev2 = s.utf8 = s.utf8_accept = False
    s.reader.set_utf8(False)
    s.state = State.NOT_AUTHENTICATED
    s.ok(cmd.tag, "UNAUTHENTICATE completed")


def _failed(s: Session, login: str) -> None:
    if s.ctx.auth_failures is not None:
        s.ctx.auth_failures.failed(s.peer_ip, login)


ENABLABLE = ("IMAP4REV2", "UTF8=ACCEPT")


async def enable(s: Session, cmd: c.Command) -> None:
    """RFC 5161 section 3.1: only what is newly enabled is listed in ``* ENABLED``."""
    assert isinstance(cmd, c.Enable)
    enabled: list[str] = []
    for name in cmd.capabilities:
        if name.upper() == "IMAP4REV2" and not s.rev2:
            s.rev2 = s.utf8 = True
            s.reader.set_utf8(True)
            enabled.append("IMAP4rev2")
        elif name.upper() == "UTF8=ACCEPT" and not s.utf8_accept:
            # RFC 6855 section 3: UTF-8 in quoted strings and mailbox names from now on
            s.utf8_accept = s.utf8 = True
            s.reader.set_utf8(True)
            enabled.append("UTF8=ACCEPT")
        elif (sync := selected.enable(s, name)) is not None:
            enabled.append(sync)
    s.write(EnabledData(tuple(enabled)))
    s.ok(cmd.tag, "ENABLE completed")


async def namespace(s: Session, cmd: c.Command) -> None:
    s.write(NamespaceData((("", "/"),)))
    s.ok(cmd.tag, "NAMESPACE completed")
