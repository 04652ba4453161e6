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

from server.net.ids import ConnectionLog, connection_context
from server.net.ids import new_connection_id as _new_id

__all__ = ["ConnectionLog", "connection_context", "new_connection_id"]


def new_connection_id() -> str:
    return _new_id("smtp")
