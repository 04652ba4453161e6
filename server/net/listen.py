"""Listen addresses: the one parser for every listener of a node.

``host:port``, ``[v6]:port``, ``:port`` (every IPv4 address), and ``unix:/path`` for
the services that allow a Unix socket (LMTP behind a local MTA).  An empty value means
the listener is disabled."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from dataclasses import dataclass

BACKLOG = 1024


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A TCP ``host``/``port``, or a Unix socket ``path`` (then host is "" and port 0)."""

    host: str = ""
    port: int = 0
    path: str = ""

    @property
    def is_unix(self) -> bool:
        return bool(self.path)

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: str, *, allow_unix: bool = False,
                 default_host: str = "0.0.0.0") -> ListenAddress | None:
    """The address in ``value``; None for an empty (disabled) listener.  ValueError
    says what is wrong."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("unix:"):
        path = value[len("unix:"):]
        if not allow_unix:
            raise ValueError(f"listen address {value!r}: this listener takes host:port only")
        if not path.startswith("/"):
            raise ValueError(f"listen address {value!r}: a Unix socket needs an absolute path")
        if len(path.encode()) > 107 or "\0" in path:
            raise ValueError(f"listen address {value!r}: the path is too long for a socket")
        return ListenAddress(path=path)
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"listen address {value!r} is not host:port")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError(f"listen address {value!r}: unbalanced [ ] around the address")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"listen address {value!r}: write an IPv6 address as [addr]:port")
    if any(c.isspace() or c in "[]/" for c in host):
        raise ValueError(f"listen address {value!r}: {host!r} is not a host")
    return ListenAddress(host=host or default_host, port=int(port))


def bind(address: ListenAddress, backlog: int = BACKLOG, *,
         reuse_port: bool = False) -> socket.socket:
    """A listening, non-blocking socket on ``address`` (port 0 picks a free port; a stale
    Unix socket file left by a node that stopped is replaced).  ``reuse_port`` (TCP
    only): SO_REUSEPORT, see :func:`bind_shared`."""
    if address.is_unix:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(address.path).st_mode):
                os.unlink(address.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(address.path)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
    else:
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        sock = socket.create_server((address.host, address.port), family=family,
                                    backlog=backlog, reuse_port=reuse_port)
        # Accepted connections inherit it (Linux): replies written in pieces (HTTP headers
        # then body, IMAP/SMTP lines) go out at once instead of waiting for the peer's
        # delayed ACK, 40 ms a time on a kept-alive connection.  asyncio sets it itself
        # only on sockets whose proto is IPPROTO_TCP, and create_server's is 0.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def bind_shared(address: ListenAddress, count: int, backlog: int = BACKLOG
                ) -> list[socket.socket]:
    """``count`` listening sockets on one TCP address, one for each process that serves
    it (SO_REUSEPORT; port 0 picks one free port for all).  The kernel puts each new
    connection in the queue of one of them, chosen by a hash of the connection's
    addresses, so every process gets its share of the clients whatever the scheduler
    does.  One socket served by several processes does not spread them: asyncio accepts
    every connection waiting whenever its socket is readable, so the first process
    woken took a burst of clients whole (14 of the JMAP bench's 16 connections, served
    on one core while the other processes idled)."""
    if address.is_unix or count < 1:
        raise ValueError("bind_shared: one or more sockets on a TCP address")
    if address.port:
        # SO_REUSEPORT would let these sockets join another process's group on the port
        # (any process of the same user: a second node started by mistake would quietly
        # take a share of the clients).  A plain bind fails on a port anyone listens on,
        # so a busy port is refused here as it is for a listener without the option.
        bind(address, backlog).close()
    first = bind(address, backlog, reuse_port=True)
    out = [first]
    try:
        where = ListenAddress(address.host, bound_address(first).port)
        for _ in range(count - 1):
            out.append(bind(where, backlog, reuse_port=True))
    except BaseException:
        for sock in out:
            sock.close()
        raise
    return out


def bound_address(sock: socket.socket) -> ListenAddress:
    """Where ``sock`` listens (the port chosen for port 0)."""
    name = sock.getsockname()
    if isinstance(name, str):
        return ListenAddress(path=name)
    return ListenAddress(host=str(name[0]), port=int(name[1]))
