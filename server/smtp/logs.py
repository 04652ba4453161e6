"""Connection ids on the log lines of a connection.

Each connection gets a short random id.  It is set in :data:`server.logs.connection_id`
for the connection's task (which every log line written from it inherits: ours, aiosmtpd's
and the delivery pipeline's; the node's log handler adds it as the ``conn`` field), and for
the few callbacks that run outside that task (connection lost, EOF, timeout).  Our own
lines also carry it explicitly, through :class:`ConnectionLog`.  Credentials never reach a
log line: aiosmtpd masks ``AUTH <mech> <response>`` itself and we log SASL exchanges by
outcome only.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from server.logs import connection_id


def new_connection_id() -> str:
    return "smtp-" + secrets.token_hex(5)


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
