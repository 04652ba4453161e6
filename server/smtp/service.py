"""SMTP as a service of the node (:mod:`server.node.service`): the MX, submission and
submissions listeners, served in one process or in worker processes alike."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from server.config import Config, ServerSettings
from server.smtp.settings import SmtpSettings
from server.directory.base import Directory
from server.net.listen import ListenAddress
from server.node.accept import Acceptor, LocalServer
from server.node.parts import NodeParts
from server.node.service import STOP_GRACE, Connection, Listener, TlsMode
from server.smtp.handler import DeliveryPipeline, Outbox
from server.smtp.limits import Clock, Limits
from server.smtp.listener import SmtpSetup, prepare_smtp, warn_auth_in_clear
from server.smtp.session import CONNECTIONS, ListenerContext, SmtpSession

log = logging.getLogger(__name__)

NAME = "smtp"


class SmtpNodeService:
    """The node's SMTP listeners; failed AUTH and unknown recipients are shared with the
    other worker processes (``A``/``U`` payloads), so that the limits hold node-wide."""

    name = NAME

    def __init__(self, setup: SmtpSetup, hostname: str) -> None:
        self.setup = setup
        self.hostname = hostname

    def listeners(self) -> Sequence[Listener]:
        return [self._listener(kind, ctx) for kind, ctx in self.setup.contexts.items()]

    def _listener(self, kind: str, ctx: ListenerContext) -> Listener:
        host, port = self.setup.listens[kind]

        def handler(conn: Connection) -> SmtpSession:
            return SmtpSession(ctx, conn)

        def refused(ip: str, reason: str) -> None:
            CONNECTIONS.labels(kind, reason).inc()

        tls = (TlsMode.IMPLICIT if ctx.implicit_tls is not None
               else TlsMode.STARTTLS if ctx.starttls is not None else TlsMode.NONE)
        return Listener(kind, ListenAddress(host, port), tls, handler,
                        refusal=self._refusal, refused=refused)

    def _refusal(self, reason: str) -> bytes:
        if reason == "no_worker":
            return (f"421 4.3.2 {self.hostname} Service not available, try again "
                    "later\r\n").encode()
        return f"421 4.7.0 {self.hostname} Too many connections, try again later\r\n".encode()

    def connect_peers(self, publish: Callable[[bytes], None]) -> None:
        limits = self.setup.limits

        def auth_failure(ip: str, login: str) -> None:
            publish(b"A" + ip.encode() + b"\0" + login.encode("utf-8", "replace")[:1024])

        def unknown_recipient(ip: str) -> None:
            publish(b"U" + ip.encode())

        limits.on_auth_failure = auth_failure
        limits.on_unknown_recipient = unknown_recipient

    def from_peer(self, payload: bytes) -> None:
        kind, body = payload[:1], payload[1:]
        if kind == b"A":
            ip, _, login = body.decode("utf-8", "replace").partition("\0")
            self.setup.limits.auth_failed_elsewhere(ip, login)
        elif kind == b"U":
            self.setup.limits.unknown_recipient_elsewhere(body.decode())

    async def close(self, grace: float) -> None:
        """Deliveries in progress get ``grace`` seconds to be answered; then every
        connection is closed with 421."""
        sessions = [s for ctx in self.setup.contexts.values() for s in list(ctx.sessions)]
        if sessions:
            await asyncio.wait([asyncio.ensure_future(s.shut_down()) for s in sessions],
                               timeout=grace)


@dataclass
class SmtpService:
    """SMTP served on its own, without a node (tests, the benchmark): ``ports`` maps a
    listener (mx, submission, submissions) to its bound port, ``addresses`` to its
    (host, port); ``limits`` counts the connections (they are admitted, refused and
    served as in a node)."""

    acceptor: Acceptor
    service: SmtpNodeService

    @property
    def limits(self) -> Limits:
        return self.service.setup.limits

    @property
    def addresses(self) -> dict[str, tuple[str, int]]:
        return self.acceptor.addresses

    @property
    def ports(self) -> dict[str, int]:
        return {k: a[1] for k, a in self.addresses.items()}

    async def close(self, grace: float = STOP_GRACE) -> None:
        """Stop listening; give deliveries in progress ``grace`` seconds to be answered;
        close every connection (421)."""
        await self.acceptor.close()
        await self.service.close(grace)


async def start_smtp(
    config: Config,
    directory: Directory,
    delivery: DeliveryPipeline,
    *,
    clock: Clock | None = None,
    tls_context: ssl.SSLContext | None = None,
    outbox: Outbox | None = None,
) -> SmtpService:
    """Open the configured listeners (port 0 binds a free port; see ``SmtpService.ports``)
    and serve them in this process, as a one-process node does.

    ``tls_context`` replaces the configured or self-signed certificate (tests)."""
    warn_auth_in_clear(config)
    setup = await prepare_smtp(config, directory, delivery, clock=clock, tls_context=tls_context,
                               outbox=outbox)
    service = SmtpNodeService(setup, _hostname(config))
    acceptor = Acceptor(setup.limits)   # SMTP's limits: the connection limits and its own
    running = SmtpService(acceptor, service)
    try:
        acceptor.bind(list(service.listeners()))
        LocalServer(acceptor).start()
    except BaseException:
        await running.close()
        raise
    return running


async def build(parts: NodeParts) -> SmtpNodeService | None:
    config = parts.config
    setup = await prepare_smtp(config, parts.directory, parts.delivery, server_tls=parts.tls,
                               failure_log=parts.auth_failures,
                               outbox=parts.outbox)
    if not setup.contexts:
        return None
    warn_auth_in_clear(config)
    return SmtpNodeService(setup, _hostname(config))


def _hostname(config: Config) -> str:
    return config.get(SmtpSettings).hostname or config.get(ServerSettings).hostname
