"""Every reply carries an enhanced status code (RFC 2034 section 3, RFC 3463) except the
greeting and the replies to HELO and EHLO.

Our own replies are written with their codes.  aiosmtpd's built-in replies (for the commands
we do not override) are given theirs by :func:`enhance`: first the table of its known texts,
then a default by reply code.
"""

from __future__ import annotations

import re

_HAS_ENHANCED = re.compile(r"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")

# aiosmtpd's texts that we reword (its text -> ours).
_TABLE: dict[str, str] = {
    "500 Command line too long": "500 5.5.2 Line too long",
    "500 Error: bad syntax": "500 5.5.2 Syntax error",
    "500 Error: strict ASCII mode": "500 5.5.2 Non-ASCII command without SMTPUTF8",
    "221 Bye": "221 2.0.0 Bye",
    "250 OK": "250 2.0.0 OK",
    "220 Ready to start TLS": "220 2.0.0 Ready to start TLS",
    "454 TLS not available": "454 4.7.0 TLS not available",
    "503 Already authenticated": "503 5.5.1 Already authenticated",
    "501 Not enough value": "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
    "501 Too many values": "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
    "554 Command refused due to lack of security": "554 5.7.0 TLS negotiation failed",
    "530 Must issue a STARTTLS command first": "530 5.7.0 Must issue a STARTTLS command first",
    "502 EXPN not implemented": "502 5.5.1 EXPN not implemented",
}

# Default detail by reply code.
_BY_CODE: dict[str, str] = {
    "250": "2.0.0", "251": "2.1.5", "252": "2.5.0",
    "421": "4.7.0", "450": "4.2.0", "451": "4.3.0", "452": "4.3.1", "454": "4.7.0",
    "500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1", "504": "5.5.4",
    "530": "5.7.0", "535": "5.7.8", "550": "5.0.0", "552": "5.3.4", "553": "5.1.3",
    "554": "5.0.0", "555": "5.5.4",
}


def enhance(reply: str) -> str:
    """The reply with an enhanced status code (unchanged if it has one or needs none)."""
    if reply in _TABLE:
        return _TABLE[reply]
    if len(reply) < 3 or reply[0] not in "245" or _HAS_ENHANCED.match(reply):
        return reply
    code = reply[:3]
    detail = _BY_CODE.get(code)
    if detail is None:
        detail = f"{code[0]}.0.0"
    sep = reply[3:4] or " "
    text = reply[4:].removeprefix("Error: ")
    return f"{code}{sep}{detail} {text}".rstrip()
