"""SMTP's abuse limits of one node, on top of the node's connection limits
(:mod:`server.net.limits`): failed AUTH per IP and per login name, unknown recipients per
IP (directory harvest), and the tarpit that slows a harvesting session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from server.net.limits import (BoundedLog, Clock, ConnectionLimits,
                               ConnectionLimitSettings, Window, client_key,
                               fit_descriptors)
from server.sasl.limits import AUTH_FAILURE_WINDOW, AuthFailures, FailureLog

__all__ = ["AUTH_FAILURE_WINDOW", "BoundedLog", "Clock", "Limits", "LimitSettings", "client_key",
           "fit_descriptors", "tarpit_delay"]

UNKNOWN_RECIPIENT_WINDOW = 3600.0
TARPIT_MAX_DELAY = 10.0


@dataclass(frozen=True, slots=True)
class LimitSettings(ConnectionLimitSettings):
    auth_failures_per_ip: int = 10          # per AUTH_FAILURE_WINDOW
    unknown_recipients_per_ip: int = 100    # per UNKNOWN_RECIPIENT_WINDOW
    auth_failures_per_account: int = 20     # per AUTH_FAILURE_WINDOW, per login name


class Limits(ConnectionLimits):
    """Shared by every SMTP listener of a node."""

    settings: LimitSettings

    def __init__(self, settings: LimitSettings, clock: Clock = time.monotonic,
                 failure_log: FailureLog | None = None) -> None:
        super().__init__(settings, clock)
        # failed AUTH per IP and per login name: the mechanism every protocol shares, and
        # in a node the failures of its other protocols (``failure_log``)
        self.auth_failures = AuthFailures(settings.auth_failures_per_ip,
                                          settings.auth_failures_per_account,
                                          ipv6_prefix=settings.ipv6_prefix, clock=clock,
                                          log=failure_log)
        self._unknown_recipients = Window(UNKNOWN_RECIPIENT_WINDOW, clock)
        self._unknown_recipients.protect = settings.unknown_recipients_per_ip
        # Called with the IP of each unknown recipient counted here (a node's worker
        # processes tell each other, through the main process: one node, one limit).
        self.on_unknown_recipient: Callable[[str], None] | None = None

    @property
    def on_auth_failure(self) -> Callable[[str, str], None] | None:
        """Called with the IP and the login name (or "") of each failure counted here."""
        return self.auth_failures.on_failure

    @on_auth_failure.setter
    def on_auth_failure(self, hook: Callable[[str, str], None] | None) -> None:
        self.auth_failures.on_failure = hook

    def auth_blocked(self, ip: str) -> bool:
        return self.auth_failures.ip_blocked(ip)

    def account_blocked(self, login: str) -> bool:
        return self.auth_failures.account_blocked(login)

    def auth_failed(self, ip: str, login: str = "") -> None:
        """A failed or malformed AUTH from ``ip``, for ``login`` if one was given."""
        self.auth_failures.failed(ip, login)

    def auth_failed_elsewhere(self, ip: str, login: str = "") -> None:
        """A failure another process of the node counted (or this one)."""
        self.auth_failures.failed_elsewhere(ip, login)

    # -- directory harvest: replies "no such user" --------------------------------------

    def harvest_blocked(self, ip: str) -> bool:
        limit = self.settings.unknown_recipients_per_ip
        return bool(limit) and self._unknown_recipients.count(self.key(ip)) >= limit

    def unknown_recipient(self, ip: str) -> None:
        if self.settings.unknown_recipients_per_ip:
            self._unknown_recipients.add(self.key(ip))
            if self.on_unknown_recipient is not None:
                self.on_unknown_recipient(ip)

    def unknown_recipient_elsewhere(self, ip: str) -> None:
        """One another process of the node counted."""
        if self.settings.unknown_recipients_per_ip:
            self._unknown_recipients.add(self.key(ip))


def tarpit_delay(unknown: int, free: int, step: float) -> float:
    """Seconds to wait before the reply to a session's ``unknown``-th unknown recipient:
    none for the first ``free``, then ``step`` more for each, up to TARPIT_MAX_DELAY."""
    if unknown <= free or step <= 0:
        return 0.0
    return min(TARPIT_MAX_DELAY, step * (unknown - free))
