"""Failed logins per client and per login name, for every protocol that authenticates
(SMTP AUTH, IMAP LOGIN / AUTHENTICATE): past ``per_ip`` failures from one client (an IPv6
/64 counts as one) within the window, that client's attempts are refused before the
directory is asked; past ``per_account`` failures for one login name, attempts at that
login are refused whoever makes them (password spraying from many addresses).

One :class:`FailureLog` per process (the node's parts hold it) is shared by the
protocols: failures over IMAP count against SMTP AUTH from the same client and the other
way round, each protocol applying its own thresholds.  ``on_failure`` lets a node's worker
processes tell each other (``failed_elsewhere``), so that a node is one limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from server.net.limits import Clock, Window, client_key

AUTH_FAILURE_WINDOW = 900.0


def account_key(login: str) -> str:
    return login.strip().casefold()[:320]


class FailureLog:
    """Failure times per client key and per login name, shared by the protocols of a
    process."""

    def __init__(self, clock: Clock = time.monotonic,
                 window: float = AUTH_FAILURE_WINDOW) -> None:
        self.ips = Window(window, clock)
        self.accounts = Window(window, clock)

    def keep(self, per_ip: int, per_account: int) -> None:
        """A user of the log blocks at these counts: keep at least that many events per key
        (and never drop a key that reached them to make room)."""
        self.ips.protect = max(self.ips.protect, per_ip)
        self.accounts.protect = max(self.accounts.protect, per_account)


class AuthFailures:
    def __init__(self, per_ip: int, per_account: int, *, ipv6_prefix: int = 64,
                 clock: Clock = time.monotonic, log: FailureLog | None = None) -> None:
        self.per_ip = per_ip
        self.per_account = per_account
        self.ipv6_prefix = ipv6_prefix
        self.log = log if log is not None else FailureLog(clock)
        self.log.keep(per_ip, per_account)
        self._ips = self.log.ips
        self._accounts = self.log.accounts
        # called with the IP and the login name ("" when none was given) of each failure
        # counted here
        self.on_failure: Callable[[str, str], None] | None = None

    def _ip(self, ip: str) -> str:
        return client_key(ip, self.ipv6_prefix)

    def ip_blocked(self, ip: str) -> bool:
        return bool(self.per_ip) and self._ips.count(self._ip(ip)) >= self.per_ip

    def account_blocked(self, login: str) -> bool:
        return bool(self.per_account) and bool(login) and \
            self._accounts.count(account_key(login)) >= self.per_account

    def failed(self, ip: str, login: str = "") -> None:
        """A failed or malformed attempt from ``ip``, at ``login`` if one was given."""
        self.failed_elsewhere(ip, login)
        if self.on_failure is not None:
            self.on_failure(ip, login)

    def failed_elsewhere(self, ip: str, login: str = "") -> None:
        """A failure another process of the node counted (or this one)."""
        if self.per_ip:
            self._ips.add(self._ip(ip))
        if login and self.per_account:
            self._accounts.add(account_key(login))


__all__ = ["AUTH_FAILURE_WINDOW", "AuthFailures", "FailureLog", "account_key"]
