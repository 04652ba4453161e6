"""The Received trace field added on receipt (RFC 5321 section 4.4); final delivery adds
Return-Path (:func:`server.delivery.routing.local_request`)."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from email.utils import format_datetime

_SAFE_HELO = re.compile(r"[\x21-\x7e\u0080-\ud7ff\ue000-\U0010ffff]{1,255}")


def with_protocol(*, esmtp: bool, tls: bool, authenticated: bool, utf8: bool) -> str:
    """The ``with`` keyword of RFC 3848 and RFC 6531 section 3.7.3 (ESMTPSA, UTF8SMTPS...)."""
    if not esmtp:
        return "SMTP"
    base = "UTF8SMTP" if utf8 else "ESMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def address_literal(ip: str) -> str:
    """``[192.0.2.1]`` or ``[IPv6:2001:db8::1]`` (section 4.1.3)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "[unknown]"
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped
        return f"[{mapped}]" if mapped else f"[IPv6:{addr.compressed}]"
    return f"[{addr}]"


def received(
    *,
    helo: str,
    peer_ip: str,
    by: str,
    protocol: str,
    id: str,
    recipient: str | None,
    when: datetime,
    tls: str | None = None,
) -> bytes:
    """A folded ``Received:`` field ending in CRLF (UTF-8 only for SMTPUTF8 names)."""
    helo_text = helo if _SAFE_HELO.fullmatch(helo) else "unknown"
    lines = [
        f"Received: from {helo_text} ({address_literal(peer_ip)})",
        f"\tby {by} (fdbmail) with {protocol}" + (f" ({tls})" if tls else ""),
        f"\tid {id}" + (f" for <{recipient}>" if recipient else "") + ";",
        f"\t{format_datetime(when)}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
