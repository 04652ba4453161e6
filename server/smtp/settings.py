"""The ``[smtp]`` settings: listeners, protocol limits and abuse limits of inbound SMTP
(MX on port 25, submission with STARTTLS on 587, submission with implicit TLS on 465).
The certificate is in ``[tls]``, the connection limits in ``[limits]``
(:mod:`server.net.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import section, setting

@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The ``[smtp]`` settings."""

    # -- listeners ------------------------------------------------------------------
    mx_listen: str = setting("127.0.0.1:2525",
        "host:port of the MX listener (25 in production); empty disables it. Port 0 picks a free "
        "port.")
    submission_listen: str = setting("127.0.0.1:5587",
        "host:port of the submission listener with STARTTLS (RFC 6409; 587 in production); empty "
        "disables it.")
    submissions_listen: str = setting("127.0.0.1:5465",
        "host:port of the submission listener with implicit TLS (RFC 8314; 465 in production); "
        "empty disables it.")
    hostname: str = setting("",
        "Name in the greeting, EHLO reply and Received headers; empty means [server] hostname.")
    # -- TLS ------------------------------------------------------------------------
    mx_starttls: bool = setting(True, "Offer STARTTLS on the MX listener.")
    tls_handshake_timeout: float = setting(10.0,
        "Seconds a TLS handshake (implicit TLS or STARTTLS) may take before the connection is "
        "closed. An implicit-TLS connection counts toward the connection limits from its accept, "
        "before its handshake.")
    # -- authentication -------------------------------------------------------------
    auth_require_tls: bool = setting(True,
        "Offer and accept AUTH PLAIN/LOGIN only on an encrypted connection. Turn off only for "
        "tests on a trusted network.")
    submission_check_from: bool = setting(True,
        "Refuse (550 5.7.1) a submitted message whose From: or Sender: header names an address "
        "that is not the authenticated user's (its own addresses, aliases and +tag forms). Turn "
        "off only for sites whose users must send as others (shared mailboxes).")
    mx_auth: bool = setting(False,
        "Also offer AUTH on the MX listener (submission always offers it and requires it before "
        "MAIL).")
    postmaster: str = setting("postmaster",
        "Principal (login name) that receives mail for <Postmaster> and for postmaster@ every "
        "local domain that has no such address of its own (RFC 5321 section 4.5.1: always "
        "accepted). If it does not exist, such mail gets 451 4.3.0 and an ERROR line is logged.")
    # -- message limits ---------------------------------------------------------------
    max_message_size: int = setting(52_428_800,
        "Largest message in octets, advertised as SIZE (RFC 1870): a larger MAIL FROM SIZE= or "
        "DATA gets 552 5.3.4.")
    max_recipients: int = setting(100,
        "Most RCPT TO per transaction; more get 452 4.5.3 (RFC 5321 section 4.5.3.1.8 requires at"
        " least 100).")
    max_line_length: int = setting(0,
        "Longest DATA text line in octets including CRLF (RFC 5321 section 4.5.3.1.6 names 1000);"
        " longer lines get 500 5.5.2 after the data. 0 means no limit beyond max_message_size.")
    max_command_length: int = setting(512,
        "Longest command line in octets including CRLF (RFC 5321 section 4.5.3.1.4); MAIL and "
        "RCPT may be longer by what their parameters add, AUTH up to 12288 (RFC 4954 section 4). "
        "Longer lines get 500 5.5.2.")
    bare_line_endings: str = setting("reject",
        "What to do with a bare CR or LF inside DATA (a vector of SMTP smuggling): 'reject' the "
        "message with 550 5.6.0, or 'normalize' it to CRLF. A bare LF never ends the data either "
        "way.",
        choices=("reject", "normalize"))
    smtputf8: bool = setting(True, "Advertise and accept SMTPUTF8 (RFC 6531) addresses.")
    # -- abuse limits ---------------------------------------------------------------
    auth_failures_per_ip: int = setting(10,
        "Failed AUTH attempts from one client IP per 15 minutes before AUTH is refused (421 "
        "4.7.0, connection closed); malformed AUTH commands and responses count as failures; 0 "
        "means no limit.")
    max_unknown_recipients: int = setting(20,
        "RCPT TO replies 550 5.1.1 (no such user) in one session before it is closed with 421 "
        "4.7.0 (directory harvest); 0 means no limit.")
    unknown_recipient_tarpit_after: int = setting(3,
        "Unknown recipients in one session answered at once; each later one waits "
        "unknown_recipient_delay seconds more than the one before (up to 10 s).")
    unknown_recipient_delay: float = setting(1.0,
        "Seconds added to the reply of each unknown recipient after "
        "unknown_recipient_tarpit_after; 0 turns the tarpit off.")
    unknown_recipients_per_ip: int = setting(100,
        "Unknown recipients from one client IP per hour, over all its sessions and the node's "
        "worker processes, before its RCPT TO are refused (421 4.7.0, connection closed); 0 means"
        " no limit.")
    auth_failures_per_account: int = setting(20,
        "Failed AUTH attempts for one login name per 15 minutes, from any IP, before AUTH for it "
        "is refused (454 4.7.0) even with the right password; 0 means no limit.")
    max_bad_commands: int = setting(20,
        "Replies 500, 501 and 503 (syntax errors, commands out of order) in one session before it"
        " is closed with 421 4.7.0; 0 means no limit. Apart from this, aiosmtpd closes a session "
        "after 5 unknown commands.")
    timeout: float = setting(300.0,
        "Seconds a connection may be idle waiting for a command or for data (RFC 5321 section "
        "4.5.3.2 suggests 5 minutes).")
    data_timeout: float = setting(600.0,
        "Seconds the whole DATA phase may take (RFC 5321 section 4.5.3.2.6 suggests 10 minutes).")
    delivery_timeout: float = setting(300.0,
        "Seconds to wait for the delivery pipeline after the data before answering 451 4.3.0 "
        "(clients wait 10 minutes, RFC 5321 section 4.5.3.2.7). The delivery goes on; a retry "
        "does not store it twice.")


SECTION = section(
    "smtp",
    "Inbound SMTP: the MX listener that receives mail for local domains, and the two submission "
    "listeners where authenticated users send mail.",
    SmtpSettings,
)
