"""Connection ids on every log line of a connection, ours and aiosmtpd's.

Each connection gets a short random id, kept in a context variable that the connection's
task inherits; :class:`ConnectionIdFilter` stamps it on records (``record.conn_id``) and in
front of the message of aiosmtpd's own logger (``mail.log``), which knows only the peer.
Credentials never reach a log line: aiosmtpd masks ``AUTH <mech> <response>`` itself and we
log SASL exchanges by outcome only.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
from collections.abc import MutableMapping
from typing import Any

CONNECTION_ID: contextvars.ContextVar[str] = contextvars.ContextVar("smtp_conn", default="-")
AIOSMTPD_LOGGER = "mail.log"


def new_connection_id() -> str:
    return secrets.token_hex(5)


class ConnectionIdFilter(logging.Filter):
    """Adds ``conn_id`` to records; with ``prefix`` also puts it in front of the message."""

    def __init__(self, prefix: bool = False) -> None:
        super().__init__()
        self._prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "conn_id"):
            conn = CONNECTION_ID.get()
            record.conn_id = conn
            if self._prefix and conn != "-":
                record.msg = f"conn={conn} {record.msg}"
        return True


class ConnectionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that puts ``conn=<id>`` on each line of one connection."""

    def __init__(self, logger: logging.Logger, conn_id: str) -> None:
        super().__init__(logger, {"conn_id": conn_id})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs.setdefault("extra", {})["conn_id"] = self.extra["conn_id"]  # type: ignore[index]
        return f"conn={self.extra['conn_id']} {msg}", kwargs  # type: ignore[index]


_installed = False


def install_filters() -> None:
    """Once per process: tag aiosmtpd's log lines with the connection id."""
    global _installed
    if not _installed:
        logging.getLogger(AIOSMTPD_LOGGER).addFilter(ConnectionIdFilter(prefix=True))
        _installed = True
