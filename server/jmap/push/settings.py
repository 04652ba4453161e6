"""The push settings of ``[jmap]`` (``push_*``, declared in :mod:`server.jmap.settings`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from server.config import SettingValue


@dataclass(frozen=True, slots=True)
class PushSettings:
    max_connections: int = 8
    ping_min: int = 5
    allowed_hosts: tuple[str, ...] = ("*",)
    attempts: int = 5
    retry_delay: float = 2.0

    @classmethod
    def from_settings(cls, values: Mapping[str, SettingValue]) -> PushSettings:
        connections, ping_min = values["push_max_connections"], values["push_ping_min"]
        hosts, attempts = values["push_allowed_hosts"], values["push_attempts"]
        delay = values["push_retry_delay"]
        assert isinstance(connections, int) and isinstance(ping_min, int)
        assert isinstance(hosts, list) and isinstance(attempts, int)
        assert isinstance(delay, int | float)
        return cls(connections, ping_min, tuple(str(h).lower() for h in hosts), attempts,
                   float(delay))

    def allows_host(self, host: str) -> bool:
        """A host listed is allowed; with ``*``, any other host too except loopback,
        private and link-local addresses and ``localhost`` (no pushes into the server's
        own network unless listed by name)."""
        host = host.lower().strip("[]")
        if host in self.allowed_hosts:
            return True
        return "*" in self.allowed_hosts and not _internal(host)


def _internal(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False
