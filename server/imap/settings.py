"""The ``[imap]`` settings: IMAP4rev2 / IMAP4rev1 (RFC 9051, RFC 3501) for mail clients."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import section, setting


@dataclass(frozen=True, slots=True)
class ImapSettings:
    """The ``[imap]`` settings."""

    listen: str = setting("127.0.0.1:1143",
        "host:port of the IMAP listener with STARTTLS (143 in production); empty disables it. "
        "Port 0 picks a free port.")
    tls_listen: str = setting("127.0.0.1:1993",
        "host:port of the IMAP listener with implicit TLS (RFC 8314; 993 in production); empty "
        "disables it.")
    hostname: str = setting("", "Name in the greeting; empty means [server] hostname.")
    auth_require_tls: bool = setting(True,
        "Accept LOGIN and AUTHENTICATE PLAIN only on an encrypted connection (LOGINDISABLED is "
        "advertised before STARTTLS). Turn off only for tests on a trusted network.")
    max_line: int = setting(65536,
        "Longest command line in octets outside literals; longer ones get BAD.", minimum=1024)
    max_literal: int = setting(65536,
        "Largest literal of a command other than APPEND.", minimum=1024)
    append_limit: int = setting(52_428_800,
        "Largest message APPEND accepts, advertised as APPENDLIMIT (RFC 7889); larger ones get "
        "NO [TOOBIG] before any octet is read.", minimum=1024)
    auth_failures_per_ip: int = setting(10,
        "Failed logins from one client (an IPv6 /64 counts as one) in 15 minutes after which "
        "its LOGIN and AUTHENTICATE get NO [UNAVAILABLE] without asking the directory; 0 "
        "turns the limit off.", minimum=0)
    auth_failures_per_account: int = setting(20,
        "Failed logins at one login name in 15 minutes after which logins to it get NO "
        "[UNAVAILABLE], from any client; 0 turns the limit off.", minimum=0)
    login_timeout: float = setting(60.0,
        "Seconds a connection may wait before it has logged in.")
    timeout: float = setting(1800.0,
        "Seconds an authenticated connection may be idle (RFC 9051 section 5.4: at least 30 "
        "minutes).", minimum=1800.0)


SECTION = section(
    "imap",
    "IMAP (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1): mail clients read and manage their "
    "mailboxes. One port with STARTTLS and one with implicit TLS.",
    ImapSettings,
)
