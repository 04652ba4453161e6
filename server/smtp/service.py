"""SMTP as a service of the node (:mod:`server.node.service`): the MX, submission and
submissions listeners, served in one process or in worker processes alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from server.net.listen import ListenAddress
from server.node.parts import NodeParts
from server.node.service import Connection, Listener, TlsMode
from server.smtp.listener import SmtpSetup, prepare_smtp
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


async def build(parts: NodeParts) -> SmtpNodeService | None:
    config = parts.config
    setup = await prepare_smtp(config, parts.directory, parts.delivery, server_tls=parts.tls)
    if not setup.contexts:
        return None
    if not config.smtp.auth_require_tls:
        log.warning("[smtp] auth_require_tls is off: passwords may cross the network in clear")
    return SmtpNodeService(setup, config.smtp.hostname or config.server.hostname)
