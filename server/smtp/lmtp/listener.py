"""The LMTP listener: a loopback TCP address or a Unix socket (``[lmtp] listen``).

LMTP has no authentication: whoever reaches it can deliver to any local mailbox, as the
MTA's own queue can.  So a TCP address must be loopback unless ``allow_non_loopback`` says
otherwise (checked at start-up, before anything listens).

:func:`build` makes the node's LMTP service (:mod:`server.node.service`), served in one
process or in worker processes like SMTP; :func:`start_lmtp` serves it on its own
(tests), like :func:`server.smtp.start_smtp`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from server.config import Config, ServerSettings
from server.smtp.lmtp.settings import LmtpSettings
from server.smtp.settings import SmtpSettings
from server.directory.base import Directory
from server.net import listen
from server.net.limits import ConnectionLimits, ConnectionLimitSettings
from server.node.accept import Acceptor, LocalServer
from server.node.parts import NodeParts, StartupError
from server.node.service import STOP_GRACE, Connection, Listener, TlsMode
from server.smtp.handler import DeliveryPipeline, SmtpHandler

from .connection import LmtpConnection, LmtpContext
from .session import LmtpOptions

log = logging.getLogger(__name__)

class LmtpConfigError(StartupError, ValueError):
    """``[lmtp]`` cannot be served as configured; the message says why (the node does
    not start)."""


@dataclass(frozen=True, slots=True)
class TcpAddress:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class UnixAddress:
    path: str


ListenAddress = TcpAddress | UnixAddress


def parse_listen(value: str, *, allow_non_loopback: bool = False) -> ListenAddress | None:
    """``host:port``, ``[v6]:port`` or ``unix:/path`` (:func:`server.net.listen.parse_listen`);
    None when empty (LMTP off); a TCP address must be loopback unless allowed."""
    try:
        where = listen.parse_listen(value, allow_unix=True, default_host="")
    except ValueError as e:
        raise LmtpConfigError(f"[lmtp] listen: {e}") from None
    if where is None:
        return None
    if where.is_unix:
        return UnixAddress(where.path)
    if not allow_non_loopback and not is_loopback(where.host):
        raise LmtpConfigError(
            f"[lmtp] listen {value!r} is not a loopback address: LMTP has no authentication, "
            "so only the MTA may reach it. Use 127.0.0.1, ::1 or unix:/path, or set "
            "[lmtp] allow_non_loopback = true behind a firewall.")
    return TcpAddress(where.host, where.port)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False        # a name: it could resolve to anything


def lmtp_options(config: Config) -> LmtpOptions:
    s = config.get(LmtpSettings)
    return LmtpOptions(
        hostname=s.hostname or config.get(ServerSettings).hostname,
        max_message_size=s.max_message_size,
        max_recipients=s.max_recipients,
        max_command_length=s.max_command_length,
        smtputf8=s.smtputf8,
        timeout=s.timeout,
        delivery_timeout=s.delivery_timeout,
    )


class LmtpNodeService:
    """LMTP as a service of the node (:mod:`server.node.service`): one listener, out of
    the node's ``[limits]`` (its one client is the local MTA)."""

    name = "lmtp"

    def __init__(self, ctx: LmtpContext, address: ListenAddress, mode: int) -> None:
        self.ctx = ctx
        self.address = address
        self.mode = mode

    def listeners(self) -> Sequence[Listener]:
        ctx = self.ctx

        def handler(conn: Connection) -> LmtpConnection:
            return LmtpConnection(ctx, conn)

        def refusal(reason: str) -> bytes:
            return f"421 4.3.2 {ctx.options.hostname} Service not available\r\n".encode()

        if isinstance(self.address, UnixAddress):
            where = listen.ListenAddress(path=self.address.path)
        else:
            where = listen.ListenAddress(self.address.host, self.address.port)
        return [Listener("lmtp", where, TlsMode.NONE, handler, refusal=refusal,
                         node_limits=False, unix_mode=self.mode)]

    def connect_peers(self, publish: Callable[[bytes], None]) -> None:
        pass  # nothing LMTP counts is node-wide

    def from_peer(self, payload: bytes) -> None:
        pass

    async def close(self, grace: float) -> None:
        """Deliveries in progress get ``grace`` seconds to be answered; then every
        connection is closed (421)."""
        connections = list(self.ctx.connections)
        if connections:
            await asyncio.wait([asyncio.ensure_future(c.shut_down()) for c in connections],
                               timeout=grace)


@dataclass
class LmtpService:
    """LMTP served on its own, without a node (tests): ``ports`` ({"lmtp": port} on TCP,
    {} on a Unix socket), ``unix_path``, ``close(grace)``."""

    acceptor: Acceptor
    service: LmtpNodeService

    @property
    def context(self) -> LmtpContext:
        return self.service.ctx

    @property
    def unix_path(self) -> str | None:
        address = self.service.address
        return address.path if isinstance(address, UnixAddress) else None

    @property
    def ports(self) -> dict[str, int]:
        return {name: port for name, (_, port) in self.acceptor.addresses.items()}

    async def close(self, grace: float = STOP_GRACE) -> None:
        """Stop listening (a Unix socket's file is removed); give deliveries in progress
        ``grace`` seconds to be answered; close every connection (421)."""
        await self.acceptor.close()
        await self.service.close(grace)


async def lmtp_service(config: Config, directory: Directory,
                       delivery: DeliveryPipeline) -> LmtpNodeService | None:
    """The service ``[lmtp]`` asks for; None when ``listen`` is empty.  Raises
    :class:`LmtpConfigError`."""
    s = config.get(LmtpSettings)
    address = parse_listen(str(s.listen), allow_non_loopback=bool(s.allow_non_loopback))
    if address is None:
        return None
    try:
        mode = int(str(s.socket_mode), 8)
    except ValueError:
        raise LmtpConfigError(f"[lmtp] socket_mode {s.socket_mode!r} is not octal") from None
    options = lmtp_options(config)
    handler = SmtpHandler(directory, delivery, options.hostname,
                          postmaster=config.get(SmtpSettings).postmaster)
    return LmtpNodeService(LmtpContext(options, handler), address, mode)


async def build(parts: NodeParts) -> LmtpNodeService | None:
    """The node's LMTP service (registered in :mod:`server.node.services`)."""
    return await lmtp_service(parts.config, parts.directory, parts.delivery)


async def start_lmtp(config: Config, directory: Directory,
                     delivery: DeliveryPipeline) -> LmtpService | None:
    """Open ``[lmtp] listen`` and serve it in this process, as a one-process node does;
    None when it is empty.  Raises :class:`LmtpConfigError`."""
    service = await lmtp_service(config, directory, delivery)
    if service is None:
        return None
    acceptor = Acceptor(ConnectionLimits(ConnectionLimitSettings()))  # not used: node_limits
    running = LmtpService(acceptor, service)
    try:
        acceptor.bind(list(service.listeners()))
        LocalServer(acceptor).start()
    except BaseException:
        await running.close()
        raise
    return running


__all__ = ["LmtpConfigError", "LmtpNodeService", "LmtpService", "TcpAddress", "UnixAddress",
           "build", "parse_listen", "start_lmtp"]
