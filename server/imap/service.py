"""IMAP as a service of the node (:mod:`server.node.service`): the STARTTLS listener
(``[imap] listen``) and the implicit-TLS one (``[imap] tls_listen``), served in one
process or in worker processes alike.  :func:`start_imap` serves it without a node."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from server.blobs import BlobStore
from server.config import Config, ServerSettings
from server.delivery import Delivery
from server.directory.base import Directory
from server.net import listen, tls
from server.net.limits import ConnectionLimits, ConnectionLimitSettings
from server.net.settings import TlsSettings
from server.node.accept import Acceptor, LocalServer
from server.node.parts import NodeParts
from server.node.service import STOP_GRACE, Connection, Listener, TlsMode
from server.sasl import Authenticator, CredentialCache, Registry
from server.sasl.limits import AuthFailures, FailureLog
from fdb_layers.mail import Engine

from .connection import ImapConnection, ListenerContext
from .session import SessionContext
from .settings import ImapSettings

NAME = "imap"


class ImapNodeService:
    name = NAME

    def __init__(self, contexts: dict[str, tuple[listen.ListenAddress, ListenerContext]],
                 hostname: str) -> None:
        self.contexts = contexts
        self.hostname = hostname

    def listeners(self) -> Sequence[Listener]:
        return [self._listener(kind, where, ctx) for kind, (where, ctx) in self.contexts.items()]

    def _listener(self, kind: str, where: listen.ListenAddress,
                  ctx: ListenerContext) -> Listener:
        def handler(conn: Connection) -> ImapConnection:
            return ImapConnection(ctx, conn)

        def refusal(reason: str) -> bytes:
            # (nothing is sent on the implicit-TLS listener, whatever this returns)
            if reason == "no_worker":
                return b"* BYE Service not available, try again later\r\n"
            return b"* BYE Too many connections, try again later\r\n"

        mode = TlsMode.IMPLICIT if ctx.implicit_tls else (
            TlsMode.STARTTLS if ctx.tls_context is not None else TlsMode.NONE)
        return Listener(kind, where, mode, handler, refusal=refusal)

    def _auth_failures(self) -> AuthFailures | None:
        for _, ctx in self.contexts.values():
            return ctx.session.auth_failures
        return None

    def connect_peers(self, publish: Callable[[bytes], None]) -> None:
        """Failed logins counted in one worker process are counted in all of them."""
        failures = self._auth_failures()
        if failures is not None:
            failures.on_failure = lambda ip, login: publish(
                b"A" + ip.encode() + b"\0" + login.encode("utf-8", "replace")[:1024])

    def from_peer(self, payload: bytes) -> None:
        failures = self._auth_failures()
        if payload[:1] == b"A" and failures is not None:
            ip, _, login = payload[1:].decode("utf-8", "replace").partition("\0")
            failures.failed_elsewhere(ip, login)

    async def close(self, grace: float) -> None:
        """Every connection gets ``* BYE`` and is closed (an IMAP command in progress is
        retried by the client)."""
        connections = [c for _, ctx in self.contexts.values() for c in list(ctx.connections)]
        if connections:
            await asyncio.wait([asyncio.ensure_future(c.shut_down()) for c in connections],
                               timeout=grace)


async def imap_service(config: Config, engine: Engine, blobs: BlobStore,
                       directory: Directory, *,
                       server_tls: tls.ServerTls | None = None,
                       tls_context: ssl.SSLContext | None = None,
                       delivery: Delivery | None = None,
                       failure_log: FailureLog | None = None) -> ImapNodeService | None:
    """The service ``[imap]`` asks for; None when both listeners are off.
    ``tls_context`` replaces the node's certificate (tests); ``delivery`` is APPEND's way
    into a mailbox (none: APPEND answers NO [UNAVAILABLE]); ``failure_log``: the failed
    logins of the process's other protocols."""
    s = config.get(ImapSettings)
    hostname = s.hostname or config.get(ServerSettings).hostname
    wanted = {"imap": listen.parse_listen(s.listen), "imaps": listen.parse_listen(s.tls_listen)}
    if not any(wanted.values()):
        return None
    if tls_context is None:
        if server_tls is None:
            t = config.get(TlsSettings)
            server_tls = tls.ServerTls(t.certificate, t.key, 0.0, config.data_dir)
        tls_context = await server_tls.context(hostname)
    session = SessionContext(
        engine=engine, blobs=blobs,
        authenticator=Authenticator(directory, CredentialCache()),
        mechanisms=Registry(),
        hostname=hostname, auth_require_tls=s.auth_require_tls,
        starttls=tls_context is not None, append_limit=s.append_limit, max_line=s.max_line,
        max_literal=s.max_literal, delivery=delivery,
        auth_failures=AuthFailures(s.auth_failures_per_ip, s.auth_failures_per_account,
                                   log=failure_log))
    contexts = {}
    for kind, where in wanted.items():
        if where is not None:
            contexts[kind] = (where, ListenerContext(
                session, tls_context, implicit_tls=kind == "imaps",
                login_timeout=s.login_timeout, timeout=s.timeout))
    return ImapNodeService(contexts, hostname)


async def build(parts: NodeParts) -> ImapNodeService | None:
    """The node's IMAP service (registered in :mod:`server.node.services`)."""
    return await imap_service(parts.config, parts.engine, parts.blobs, parts.directory,
                              server_tls=parts.tls, delivery=parts.delivery,
                              failure_log=parts.auth_failures)


@dataclass
class ImapService:
    """IMAP served on its own, without a node (tests): ``ports`` maps ``imap`` and
    ``imaps`` to their bound ports."""

    acceptor: Acceptor
    service: ImapNodeService

    @property
    def ports(self) -> dict[str, int]:
        return {name: port for name, (_, port) in self.acceptor.addresses.items()}

    async def close(self, grace: float = STOP_GRACE) -> None:
        await self.acceptor.close()
        await self.service.close(grace)


async def start_imap(config: Config, engine: Engine, blobs: BlobStore, directory: Directory, *,
                     tls_context: ssl.SSLContext | None = None) -> ImapService | None:
    """Open ``[imap]``'s listeners and serve them in this process, as a one-process node
    does; None when both are off."""
    service = await imap_service(config, engine, blobs, directory, tls_context=tls_context)
    if service is None:
        return None
    acceptor = Acceptor(ConnectionLimits(ConnectionLimitSettings()))
    running = ImapService(acceptor, service)
    try:
        acceptor.bind(list(service.listeners()))
        LocalServer(acceptor).start()
    except BaseException:
        await running.close()
        raise
    return running
