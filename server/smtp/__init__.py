"""Inbound SMTP on aiosmtpd: the MX listener (port 25) and submission (587 with STARTTLS,
465 with implicit TLS).

``await start_smtp(config, directory, delivery)`` opens the listeners configured in
``[smtp]`` and returns an :class:`SmtpService` (``.ports``, ``.close()``).  Modules:
``settings`` ([smtp]), ``service`` (SMTP as a service of the node, and on its own),
``listener`` (listener contexts, TLS), ``session`` (the protocol, on aiosmtpd),
``auth`` (AUTH on :mod:`server.sasl`), ``handler`` (policy and delivery), ``limits``
(abuse limits), ``wire`` (pure parsers: MAIL/RCPT arguments and parameters, DATA
framing), ``replies``, ``trace``, ``logs``; ``lmtp/`` (RFC 2033, on the same parsers,
refusals and policy).
"""

from server.smtp.service import SmtpService, start_smtp

__all__ = ["SmtpService", "start_smtp"]
