"""Remote hosts for outbound tests: aiosmtpd servers on 127.0.0.1 in the test's
event loop, recording what they accept; replies to RCPT scripted per address."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from server.net import tls


@dataclass
class Received:
    sender: str
    recipients: list[str]
    content: bytes
    authenticated: str | None
    tls: bool


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)  # popped in turn

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        scripted = self.rcpt_replies.get(address)
        if scripted:
            return scripted.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.original_content, bytes)
        login = session.auth_data.login.decode() if isinstance(
            session.auth_data, LoginPassword) else None
        sender = "" if envelope.mail_from == "<>" else str(envelope.mail_from)
        self.received.append(Received(sender, list(envelope.rcpt_tos),
                                      envelope.original_content, login,
                                      server.transport is not None and
                                      server.transport.get_extra_info("sslcontext") is not None))
        return "250 2.0.0 queued"


class Sink:
    def __init__(self, tmp: Path, *, users: dict[str, str] | None = None,
                 smtputf8: bool = True, size: int = 33554432) -> None:
        self.smtputf8 = smtputf8
        self.size = size
        cert, key = tls.ensure_self_signed(tmp / "sink-tls", "sink.test")
        self.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls_context.load_cert_chain(cert, key)
        self.handler = SinkHandler()
        self.users = users
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def _auth(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
              auth_data: Any) -> AuthResult:
        ok = (self.users is not None and isinstance(auth_data, LoginPassword)
              and self.users.get(auth_data.login.decode()) == auth_data.password.decode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def _protocol(self) -> SMTP:
        kw: dict[str, Any] = {}
        if self.users is not None:
            kw = {"authenticator": self._auth, "auth_required": True,
                  "auth_require_tls": True}
        return SMTP(self.handler, hostname="sink.test", tls_context=self.tls_context,
                    enable_SMTPUTF8=self.smtputf8, data_size_limit=self.size,
                    decode_data=False, **kw)

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._protocol, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
