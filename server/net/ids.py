"""Connection ids on the log lines of a connection, for every service.

Each connection gets a short random id with its service's prefix (``smtp-3f2a...``).  It
is set in :data:`server.logs.connection_id` for the connection's task (which every log
line written from it inherits; the node's log handler adds it as the ``conn`` field), and
for the few callbacks that run outside that task (connection lost, EOF, timeout).  A
service's own lines also carry it explicitly, through :class:`ConnectionLog`.
"""


from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from server.logs import connection_id


def new_connection_id(prefix: str) -> str:
    """A fresh id: ``prefix``, a dash, ten hex digits."""
    return f"{prefix}-{secrets.token_hex(5)}"


@contextmanager
def connection_context(conn_id: str) -> Iterator[None]:
    """Log lines (and tasks created) inside carry ``conn_id``."""
    token = connection_id.set(conn_id)
    try:
        yield
    finally:
        connection_id.reset(token)


class ConnectionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose lines carry ``conn`` (one connection's id)."""

    def __init__(self, logger: logging.Logger, conn_id: str) -> None:
        super().__init__(logger, {"conn": conn_id})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs.setdefault("extra", {})["conn"] = self.extra["conn"]  # type: ignore[index]
        return msg, kwargs
