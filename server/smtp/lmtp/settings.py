"""The ``[lmtp]`` settings: LMTP (RFC 2033) for a front MTA such as Postfix."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import section, setting

@dataclass(frozen=True, slots=True)
class LmtpSettings:
    """The ``[lmtp]`` settings."""

    listen: str = setting("",
        "Where to listen: host:port (port 0 picks a free port) or unix:/path for a Unix socket "
        "(mode socket_mode; a stale socket is replaced at start, removed at stop); empty disables"
        " LMTP. A TCP address that is not loopback is refused at start-up unless "
        "allow_non_loopback is on.")
    socket_mode: str = setting("0660",
        "Permissions of the Unix socket (octal). The MTA's delivery agent must be able to write "
        "to it (Postfix's lmtp client runs as its mail_owner, postfix): give the socket to that "
        "user's group, or use 0666 in a folder only the MTA can reach.")
    allow_non_loopback: bool = setting(False,
        "Allow a TCP listen address other than loopback. LMTP trusts its client like an MTA's own"
        " queue (no authentication): turn on only behind a firewall that lets the MTA alone in.")
    hostname: str = setting("",
        "Name in the greeting, LHLO reply and Received headers; empty means [server] hostname.")
    max_message_size: int = setting(52_428_800,
        "Largest message in octets, advertised as SIZE (RFC 1870); larger ones get 552 5.3.4 for "
        "each recipient. 0 means no limit.")
    max_recipients: int = setting(1000,
        "Most RCPT TO per transaction; more get 452 4.5.3 (the MTA sends the rest in another "
        "transaction).",
        minimum=1)
    max_command_length: int = setting(2048,
        "Longest command line in octets including CRLF; longer ones get 500 5.5.2.",
        minimum=512)
    smtputf8: bool = setting(True, "Advertise and accept SMTPUTF8 (RFC 6531) addresses.")
    timeout: float = setting(300.0,
        "Seconds a connection may be idle waiting for a command or for data.")
    delivery_timeout: float = setting(300.0,
        "Seconds to wait for the delivery pipeline after the data before answering 451 4.3.0 for "
        "every recipient (the delivery goes on; the MTA's retry does not store it twice).")


SECTION = section(
    "lmtp",
    "LMTP (RFC 2033): final delivery from a front MTA (Postfix's lmtp transport, for example) "
    "into local mailboxes, with one reply per recipient. No AUTH and no relay: only the MTA "
    "should reach it, so it listens on loopback or a Unix socket.",
    LmtpSettings,
)
