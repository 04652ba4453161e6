"""The ``[tls]`` and ``[limits]`` settings, shared by every listener of a node."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import Config, section, setting
from server.net.limits import ConnectionLimitSettings, fit_descriptors


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The ``[tls]`` settings."""

    certificate: str = setting("",
        "PEM certificate chain; empty means a self-signed certificate generated on first run "
        "into <data_dir>/tls/ (for development only).", formerly=("smtp.tls_cert",))
    key: str = setting("",
        "PEM private key matching certificate; empty together with certificate.",
        formerly=("smtp.tls_key",))
    reload: float = setting(0.0,
        "Seconds between checks of the certificate and key files: when either changed (a "
        "renewal), new connections get the new certificate without a restart. 0 reads them at "
        "start only.", minimum=0)


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """The ``[limits]`` settings."""

    max_connections: int = setting(1000,
        "Most open connections of this node over all listeners.",
        formerly=("smtp.max_connections",))
    max_connections_per_ip: int = setting(20,
        "Most open connections from one client IP; 0 means no limit.",
        formerly=("smtp.max_connections_per_ip",))
    connection_rate_per_ip: int = setting(120,
        "Most new connections from one client IP per minute; 0 means no limit.",
        formerly=("smtp.connection_rate_per_ip",))
    ipv6_prefix: int = setting(64,
        "Per-IP limits count an IPv6 client by its network of this prefix length (a client is "
        "usually given a whole /64); 128 counts each address.", minimum=0,
        formerly=("smtp.ipv6_prefix",))


TLS = section(
    "tls",
    "The certificate of every TLS listener (SMTP STARTTLS and implicit TLS now; IMAP, "
    "LMTP and HTTPS as they come).",
    TlsSettings)

LIMITS = section(
    "limits",
    "Connection limits of the node, over every listener of every service (each worker "
    "process's connections included: the main process counts them). A refused "
    "connection gets its protocol's reply (SMTP 421 4.7.0) and is closed.",
    LimitsSettings)

SECTIONS = (TLS, LIMITS)


def connection_limit_settings(config: Config) -> ConnectionLimitSettings:
    """The [limits], max_connections fitted to this process's descriptor limit."""
    limits = config.get(LimitsSettings)
    return ConnectionLimitSettings(
        max_connections=fit_descriptors(limits.max_connections),
        max_connections_per_ip=limits.max_connections_per_ip,
        connection_rate_per_ip=limits.connection_rate_per_ip,
        ipv6_prefix=limits.ipv6_prefix)
