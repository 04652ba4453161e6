"""LMTP (RFC 2033): final delivery from a front MTA (Postfix's ``lmtp`` transport) into
local mailboxes, with one reply per recipient after the data.

LMTP is SMTP's dialect, so it lives in the SMTP family and shares its pure parsers
(``server.smtp.wire``: MAIL/RCPT paths and parameters, DATA framing), its refusal table
(``server.smtp.refusals``), its trace fields and its recipient policy
(``server.smtp.handler``); STYLE's rule that protocol packages do not import each other
holds.  It does not use aiosmtpd: :mod:`.connection` is a plain ``asyncio.Protocol``
taking a context, as a node service's connection handler will.

Modules: ``settings`` ([lmtp]), ``wire`` (command lines), ``session`` (the state
machine), ``connection`` (the asyncio protocol), ``listener`` (loopback TCP or Unix
socket: the node's LMTP service, :func:`build`, and :func:`start_lmtp` on its own).
"""

from .listener import LmtpConfigError, LmtpService, start_lmtp

__all__ = ["LmtpConfigError", "LmtpService", "start_lmtp"]
