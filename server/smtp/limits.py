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

__all__ = ["BoundedLog", "Clock", "Limits", "LimitSettings", "client_key",
           "fit_descriptors", "tarpit_delay"]

AUTH_FAILURE_WINDOW = 900.0
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

    def __init__(self, settings: LimitSettings, clock: Clock = time.monotonic) -> None:
        super().__init__(settings, clock)
        self._auth_failures = Window(AUTH_FAILURE_WINDOW, clock)
        self._auth_failures.protect = settings.auth_failures_per_ip
        self._account_failures = Window(AUTH_FAILURE_WINDOW, clock)
        self._account_failures.protect = settings.auth_failures_per_account
        self._unknown_recipients = Window(UNKNOWN_RECIPIENT_WINDOW, clock)
        self._unknown_recipients.protect = settings.unknown_recipients_per_ip
        # Called with the IP of each failure counted here (a node's worker
        # processes tell each other, through the main process: one node, one limit).
        # (called with the IP and the login name, or "" for a malformed attempt)
        self.on_auth_failure: Callable[[str, str], None] | None = None
        self.on_unknown_recipient: Callable[[str], None] | None = None   # likewise

    def auth_blocked(self, ip: str) -> bool:
        limit = self.settings.auth_failures_per_ip
        return bool(limit) and self._auth_failures.count(self.key(ip)) >= limit

    def account_blocked(self, login: str) -> bool:
        limit = self.settings.auth_failures_per_account
        return bool(limit) and bool(login) and \
            self._account_failures.count(_account_key(login)) >= limit

    def auth_failed(self, ip: str, login: str = "") -> None:
        """A failed or malformed AUTH from ``ip``, for ``login`` if one was given."""
        self.auth_failed_elsewhere(ip, login)
        if self.on_auth_failure is not None:
            self.on_auth_failure(ip, login)

    def auth_failed_elsewhere(self, ip: str, login: str = "") -> None:
        """A failure another process of the node counted (or this one)."""
        if self.settings.auth_failures_per_ip:
            self._auth_failures.add(self.key(ip))
        if login and self.settings.auth_failures_per_account:
            self._account_failures.add(_account_key(login))

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


def _account_key(login: str) -> str:
    return login.strip().casefold()[:320]


def tarpit_delay(unknown: int, free: int, step: float) -> float:
    """Seconds to wait before the reply to a session's ``unknown``-th unknown recipient:
    none for the first ``free``, then ``step`` more for each, up to TARPIT_MAX_DELAY."""
    if unknown <= free or step <= 0:
        return 0.0
    return min(TARPIT_MAX_DELAY, step * (unknown - free))
