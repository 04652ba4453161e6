"""The private names of our dependencies that fdbmail relies on still exist.

pyproject.toml bounds aiosmtpd and uvicorn below their next release line; this test is
what fails first when one of these names changes (upgrade the bound only with it
passing).  server/smtp/session.py and server/smtp/auth.py extend aiosmtpd's SMTP class;
server/node/http.py turns uvicorn's signal capture off through ``capture_signals``."""

from __future__ import annotations

import inspect
from asyncio import sslproto

import aiosmtpd.smtp
import uvicorn


def test_aiosmtpd_names_we_override_or_read() -> None:
    smtp = aiosmtpd.smtp.SMTP
    assert isinstance(aiosmtpd.smtp._Missing, type) and aiosmtpd.smtp.MISSING is not None
    for method in ("_timeout_cb", "_create_envelope", "_reset_timeout", "_handle_client",
                   "_call_handler_hook", "connection_made", "connection_lost", "push",
                   "smtp_STARTTLS", "smtp_MAIL", "smtp_RCPT", "smtp_DATA", "smtp_AUTH"):
        assert callable(getattr(smtp, method, None)), method
    source = inspect.getsource(smtp)
    for attribute in ("self._reader", "self._writer", "self._tls_protocol",
                      "self._original_transport", "self._timeout_handle",
                      "self._timeout_duration"):
        assert attribute in source, attribute
    # STARTTLS builds the TLS layer as aiosmtpd does (asyncio's own SSLProtocol)
    assert "self._app_transport" in inspect.getsource(sslproto.SSLProtocol)


def test_uvicorn_serves_inside_capture_signals() -> None:
    """HttpListener overrides Server.capture_signals (a no-op: the node owns SIGINT and
    SIGTERM) and runs the public Server.serve(sockets=...)."""
    server = uvicorn.Server
    assert "sockets" in inspect.signature(server.serve).parameters
    assert "self.capture_signals()" in inspect.getsource(server.serve)
    config = uvicorn.Config(app=None)
    instance = server(config)
    assert instance.started is False and instance.should_exit is False
