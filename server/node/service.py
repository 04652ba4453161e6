"""The seam between the node and a protocol: a :class:`Service` declares its listeners
and closes with a grace period; the node binds, accepts, applies the connection limits
and hands each admitted connection to the listener's handler, in this process or in a
worker process (the same handler either way).

A service is built by a factory registered in :mod:`server.node.services` from the
node's shared parts (:class:`server.node.parts.NodeParts`); nothing else in the node
knows the protocol.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from server.net.listen import ListenAddress

if TYPE_CHECKING:
    from server.node.parts import NodeParts


# Seconds a stopping node gives work in progress (a delivery being answered).
STOP_GRACE = 10.0


class TlsMode(enum.Enum):
    NONE = "none"            # plaintext only
    STARTTLS = "starttls"    # plaintext that may turn to TLS (SMTP STARTTLS, IMAP STARTTLS)
    IMPLICIT = "implicit"    # TLS from the first octet: the handler does the handshake


@dataclass(frozen=True, slots=True)
class Connection:
    """One admitted connection, as its handler is given it.  The handler calls
    :meth:`end` once when the connection is over (closed, or its TLS handshake failed):
    that gives its place in the node's limits back."""

    listener: str
    conn_id: str
    peer_ip: str
    on_end: Callable[[], None]

    def end(self) -> None:
        self.on_end()


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening socket of a service.

    ``handler`` makes the protocol object of a connection (an ``asyncio.Protocol``);
    ``refusal(reason)`` is what an over-limit connection is answered before it is closed
    (``reason`` is a limit's name, or ``no_worker``); nothing is sent on an implicit-TLS
    listener, whatever it returns.  ``refused(ip, reason)`` is told of each refusal
    (the service's metrics).  ``max_connections`` bounds this listener's open
    connections besides the node-wide ``[limits]`` (0: no bound of its own);
    ``node_limits`` False leaves the listener out of ``[limits]`` (a local MTA's LMTP: one
    trusted client on loopback or a Unix socket).  ``unix_mode``: the permissions of a
    Unix socket listener's file."""

    name: str
    address: ListenAddress
    tls: TlsMode
    handler: Callable[[Connection], asyncio.Protocol]
    refusal: Callable[[str], bytes] = lambda reason: b""
    refused: Callable[[str, str], None] = lambda ip, reason: None
    max_connections: int = 0
    node_limits: bool = True
    unix_mode: int | None = None


class Service(Protocol):
    """A protocol served by the node (SMTP, LMTP, IMAP...)."""

    @property
    def name(self) -> str: ...

    def listeners(self) -> Sequence[Listener]:
        """The enabled listeners; their names are unique in the node."""
        ...

    def connect_peers(self, publish: Callable[[bytes], None]) -> None:
        """In a worker process: ``publish(payload)`` reaches :meth:`from_peer` of this
        service in every other worker (node-wide limits: one node, one limit)."""
        ...

    def from_peer(self, payload: bytes) -> None:
        """A payload another worker's instance of this service published."""
        ...

    async def close(self, grace: float) -> None:
        """The node stops: no new connections come; give work in progress ``grace``
        seconds to finish, then close every connection."""
        ...


ServiceFactory = Callable[["NodeParts"], Awaitable[Service | None]]
