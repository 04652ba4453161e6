"""The LMTP listener: a loopback TCP address or a Unix socket (``[lmtp] listen``).

LMTP has no authentication: whoever reaches it can deliver to any local mailbox, as the
MTA's own queue can.  So a TCP address must be loopback unless ``allow_non_loopback`` says
otherwise (checked at start-up, before anything listens).

Until the node's ``Service`` seam lands, :func:`start_lmtp` is shaped like
:func:`server.smtp.start_smtp`: it returns an object with ``ports`` and ``close(grace)``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import stat
from dataclasses import dataclass, field

from server.config import Config
from server.directory.base import Directory
from server.smtp.handler import DeliveryPipeline, SmtpHandler

from .connection import LmtpContext, factory
from .session import LmtpOptions

log = logging.getLogger(__name__)

UNIX_PREFIX = "unix:"


class LmtpConfigError(ValueError):
    """``[lmtp]`` cannot be served as configured; the message says why."""


@dataclass(frozen=True, slots=True)
class TcpAddress:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class UnixAddress:
    path: str


ListenAddress = TcpAddress | UnixAddress


def parse_listen(value: str, *, allow_non_loopback: bool = False) -> ListenAddress | None:
    """``host:port``, ``[v6]:port`` or ``unix:/path``; None when empty (LMTP off)."""
    value = value.strip()
    if not value:
        return None
    if value.startswith(UNIX_PREFIX):
        path = value[len(UNIX_PREFIX):]
        if not os.path.isabs(path):
            raise LmtpConfigError(f"[lmtp] listen {value!r}: the socket path must be absolute")
        return UnixAddress(path)
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise LmtpConfigError(f"[lmtp] listen {value!r} is not host:port or unix:/path")
    if not allow_non_loopback and not is_loopback(host):
        raise LmtpConfigError(
            f"[lmtp] listen {value!r} is not a loopback address: LMTP has no authentication, "
            "so only the MTA may reach it. Use 127.0.0.1, ::1 or unix:/path, or set "
            "[lmtp] allow_non_loopback = true behind a firewall.")
    return TcpAddress(host, int(port))


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False        # a name: it could resolve to anything


def lmtp_options(config: Config) -> LmtpOptions:
    s = config.lmtp
    return LmtpOptions(
        hostname=s.hostname or config.server.hostname,
        max_message_size=s.max_message_size,
        max_recipients=s.max_recipients,
        max_command_length=s.max_command_length,
        smtputf8=s.smtputf8,
        timeout=s.timeout,
        delivery_timeout=s.delivery_timeout,
    )


@dataclass
class LmtpService:
    """The running listener: ``ports`` ({"lmtp": port} on TCP, {} on a Unix socket),
    ``address`` where it listens, ``close(grace)``."""

    server: asyncio.Server
    context: LmtpContext
    address: ListenAddress
    unix_path: str | None = None
    ports: dict[str, int] = field(default_factory=dict)

    async def close(self, grace: float = 10.0) -> None:
        """Stop listening; give deliveries in progress ``grace`` seconds to be answered;
        close every connection (421)."""
        self.server.close()
        connections = list(self.context.connections)
        if connections:
            await asyncio.wait([asyncio.ensure_future(c.shut_down()) for c in connections],
                               timeout=grace)
        await self.server.wait_closed()
        if self.unix_path is not None:
            _remove_socket(self.unix_path)


async def start_lmtp(config: Config, directory: Directory,
                     delivery: DeliveryPipeline) -> LmtpService | None:
    """Open ``[lmtp] listen``; None when it is empty.  Raises :class:`LmtpConfigError`."""
    s = config.lmtp
    address = parse_listen(str(s.listen), allow_non_loopback=bool(s.allow_non_loopback))
    if address is None:
        return None
    try:
        mode = int(str(s.socket_mode), 8)
    except ValueError:
        raise LmtpConfigError(f"[lmtp] socket_mode {s.socket_mode!r} is not octal") from None
    options = lmtp_options(config)
    handler = SmtpHandler(directory, delivery, options.hostname,
                          postmaster=config.smtp.postmaster)
    ctx = LmtpContext(options, handler)
    loop = asyncio.get_running_loop()
    if isinstance(address, UnixAddress):
        _remove_socket(address.path)
        server = await loop.create_unix_server(factory(ctx), address.path)
        os.chmod(address.path, mode)
        log.info("LMTP listening on unix:%s", address.path)
        return LmtpService(server, ctx, address, unix_path=address.path)
    server = await loop.create_server(factory(ctx), address.host, address.port,
                                      reuse_address=True)
    port = int(server.sockets[0].getsockname()[1])
    log.info("LMTP listening on %s:%d", address.host, port)
    return LmtpService(server, ctx, address, ports={"lmtp": port})


def _remove_socket(path: str) -> None:
    """A socket left by an earlier run (never any other kind of file)."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["LmtpConfigError", "LmtpService", "TcpAddress", "UnixAddress", "parse_listen",
           "start_lmtp"]
