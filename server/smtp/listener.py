"""The SMTP listeners of a node: their contexts (options, TLS, the shared limits)."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from server.net import listen, tls
from server.net.settings import TlsSettings, connection_limit_settings
from server.config import Config, ServerSettings
from server.smtp.settings import SmtpSettings
from server.directory.base import Directory
from server.smtp.handler import DeliveryPipeline, Outbox, SmtpHandler
from server.smtp.limits import Clock, Limits, LimitSettings
from server.smtp.session import ListenerContext, SessionOptions
from server.sasl.limits import FailureLog
from server.mailauth.verify import inbound_checker

log = logging.getLogger(__name__)

KINDS = ("mx", "submission", "submissions")


def parse_listen(value: str) -> tuple[str, int] | None:
    """An SMTP listener's ``host:port`` (see :func:`server.net.listen.parse_listen`);
    None for an empty (disabled) listener."""
    where = listen.parse_listen(value)
    return None if where is None else (where.host, where.port)


def session_options(config: Config) -> SessionOptions:
    s = config.get(SmtpSettings)
    return SessionOptions(
        hostname=s.hostname or config.get(ServerSettings).hostname,
        max_message_size=s.max_message_size,
        max_recipients=s.max_recipients,
        max_line_length=s.max_line_length,
        max_command_length=s.max_command_length,
        normalize_bare_line_endings=s.bare_line_endings == "normalize",
        smtputf8=s.smtputf8,
        timeout=s.timeout,
        data_timeout=s.data_timeout,
        handshake_timeout=s.tls_handshake_timeout,
        delivery_timeout=s.delivery_timeout,
        max_bad_commands=s.max_bad_commands,
        auth_require_tls=s.auth_require_tls,
        mx_auth=s.mx_auth,
        max_unknown_recipients=s.max_unknown_recipients,
        unknown_recipient_tarpit_after=s.unknown_recipient_tarpit_after,
        unknown_recipient_delay=s.unknown_recipient_delay,
        check_from=s.submission_check_from,
    )


def limit_settings(config: Config) -> LimitSettings:
    """The [limits] connection limits and the [smtp] abuse limits."""
    s = config.get(SmtpSettings)
    connections = connection_limit_settings(config)
    return LimitSettings(
        max_connections=connections.max_connections,
        max_connections_per_ip=connections.max_connections_per_ip,
        connection_rate_per_ip=connections.connection_rate_per_ip,
        ipv6_prefix=connections.ipv6_prefix,
        auth_failures_per_ip=s.auth_failures_per_ip,
        unknown_recipients_per_ip=s.unknown_recipients_per_ip,
        auth_failures_per_account=s.auth_failures_per_account)


@dataclass
class SmtpSetup:
    """What serving SMTP needs but the sockets: the limits, one context per enabled
    listener (``contexts[kind]``) and where each listens (``listens[kind]``)."""

    limits: Limits
    contexts: dict[str, ListenerContext]
    listens: dict[str, tuple[str, int]]
    tls_context: ssl.SSLContext | None


async def prepare_smtp(
    config: Config,
    directory: Directory,
    delivery: DeliveryPipeline,
    *,
    clock: Clock | None = None,
    tls_context: ssl.SSLContext | None = None,
    server_tls: tls.ServerTls | None = None,
    failure_log: FailureLog | None = None,
    outbox: Outbox | None = None,
) -> SmtpSetup:
    """``server_tls``: the node's TLS context (else one is made from [tls]);
    ``tls_context`` replaces either (tests)."""
    s = config.get(SmtpSettings)
    options = session_options(config)
    limits = Limits(limit_settings(config), **({"clock": clock} if clock else {}),
                    failure_log=failure_log)
    handler = SmtpHandler(directory, delivery, options.hostname, postmaster=s.postmaster,
                          outbox=outbox,
                          checker=inbound_checker(config, options.hostname))
    listens = {k: parse_listen(str(getattr(s, f"{k}_listen"))) for k in KINDS}
    needs_tls = (listens["submission"] or listens["submissions"]
                 or (listens["mx"] and s.mx_starttls))
    if tls_context is None and needs_tls:
        if server_tls is None:
            t = config.get(TlsSettings)
            server_tls = tls.ServerTls(t.certificate, t.key, 0.0, config.data_dir)
        tls_context = await server_tls.context(options.hostname)
    contexts = {}
    for kind, where in listens.items():
        if where is None:
            continue
        contexts[kind] = ListenerContext(
            kind=kind, options=options, handler=handler, limits=limits,
            starttls=None if kind == "submissions" or (kind == "mx" and not s.mx_starttls)
            else tls_context,
            implicit_tls=tls_context if kind == "submissions" else None)
    return SmtpSetup(limits, contexts, {k: w for k, w in listens.items() if w is not None},
                     tls_context)


def warn_auth_in_clear(config: Config) -> None:
    if not config.get(SmtpSettings).auth_require_tls:
        log.warning("[smtp] auth_require_tls is off: passwords may cross the network in clear")
