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

from server.net.ids import ConnectionLog, connection_context
from server.net.ids import new_connection_id as _new_id

__all__ = ["ConnectionLog", "connection_context", "new_connection_id"]


class _NoLoginDataWarning(logging.Filter):
    """aiosmtpd sets its own deprecated ``Session.login_data`` on every successful AUTH and
    warns about it each time (we use ``auth_data``): a warning line per login that says
    nothing about the server.  Every other aiosmtpd line passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_NoLoginDataWarning())


def new_connection_id() -> str:
    return _new_id("smtp")
