"""The ``[tls]`` and ``[limits]`` settings, shared by every listener of a node, and the
typed values the node reads from them."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import Config, Section, Setting
from server.net.limits import ConnectionLimitSettings, fit_descriptors

TLS = Section(
    "tls",
    "The certificate of every TLS listener (SMTP STARTTLS and implicit TLS now; IMAP, "
    "LMTP and HTTPS as they come).",
    (
        Setting("certificate", "", "PEM certificate chain; empty means a self-signed "
                "certificate generated on first run into <data_dir>/tls/ (for development "
                "only).", formerly=("smtp.tls_cert",)),
        Setting("key", "", "PEM private key matching certificate; empty together with "
                "certificate.", formerly=("smtp.tls_key",)),
        Setting("reload", 0.0, "Seconds between checks of the certificate and key files: "
                "when either changed (a renewal), new connections get the new certificate "
                "without a restart. 0 reads them at start only.", minimum=0),
    ),
)

LIMITS = Section(
    "limits",
    "Connection limits of the node, over every listener of every service (each worker "
    "process's connections included: the main process counts them). A refused "
    "connection gets its protocol's reply (SMTP 421 4.7.0) and is closed.",
    (
        Setting("max_connections", 1000, "Most open connections of this node over all "
                "listeners.", formerly=("smtp.max_connections",)),
        Setting("max_connections_per_ip", 20, "Most open connections from one client IP; 0 "
                "means no limit.", formerly=("smtp.max_connections_per_ip",)),
        Setting("connection_rate_per_ip", 120, "Most new connections from one client IP per "
                "minute; 0 means no limit.", formerly=("smtp.connection_rate_per_ip",)),
        Setting("ipv6_prefix", 64, "Per-IP limits count an IPv6 client by its network of "
                "this prefix length (a client is usually given a whole /64); 128 counts "
                "each address.", minimum=0, formerly=("smtp.ipv6_prefix",)),
    ),
)

SECTIONS = (TLS, LIMITS)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    certificate: str
    key: str
    reload: float

    @classmethod
    def from_config(cls, config: Config) -> TlsSettings:
        t = config.tls
        return cls(str(t.certificate), str(t.key), float(t.reload))


def connection_limit_settings(config: Config) -> ConnectionLimitSettings:
    """The [limits], max_connections fitted to this process's descriptor limit."""
    limits = config.limits
    return ConnectionLimitSettings(
        max_connections=fit_descriptors(int(limits.max_connections)),
        max_connections_per_ip=int(limits.max_connections_per_ip),
        connection_rate_per_ip=int(limits.connection_rate_per_ip),
        ipv6_prefix=int(limits.ipv6_prefix))
