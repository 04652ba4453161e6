"""The ``[outbound]`` settings: delivery of queued mail to remote hosts."""

from __future__ import annotations

from dataclasses import dataclass

from fdb_layers.queue import RetrySettings
from server.config import section, setting

MINUTE = 60
HOUR = 3600


@dataclass(frozen=True, slots=True)
class OutboundSettings:
    """The ``[outbound]`` settings."""

    workers: bool = setting(True,
        "Run a delivery worker in this node process. Any number of nodes may: a message is "
        "leased through the store, so two workers never deliver it at once.")
    resolver: str = setting("",
        "DNS resolver for MX/A/AAAA lookups as host:port (e.g. 127.0.0.1:53); empty uses the "
        "system's resolv.conf.")
    relay: str = setting("",
        "Default next hop (smarthost) as host:port for every remote domain without a route; "
        "empty delivers to each domain's MX hosts.")
    relay_username: str = setting("",
        "Login for AUTH PLAIN at the relay host (sent only over TLS); empty: no AUTH.")
    relay_password: str = setting("", "Password for AUTH at the relay host.")
    routes: list[str] = setting([],
        "Next hops per destination domain, each \"domain=host:port\" (the host's A/AAAA is "
        "used, not its MX); they win over relay.")
    port: int = setting(25, "Port of MX hosts (25; tests use a free port).", minimum=1)
    helo: str = setting("",
        "Name sent in EHLO/HELO; empty means [server] hostname.")
    tls_verify: bool = setting(False,
        "Verify the certificate of hosts that offer STARTTLS (opportunistic TLS otherwise: "
        "a bad certificate still encrypts).")
    require_tls_for_relay: bool = setting(True,
        "Refuse to send AUTH to the relay unless the connection is encrypted.")
    connect_timeout: float = setting(30.0, "Seconds to connect to a host.")
    timeout: float = setting(300.0, "Seconds to wait for any reply (RFC 5321 4.5.3.2).")
    rset_timeout: float = setting(10.0,
        "Seconds to wait for the reply to RSET on a reused connection; on expiry the "
        "connection is dropped and the message goes on a new one (RFC 5321 4.5.3.2 gives "
        "RSET no timeout of its own: a short one does not leave a message waiting for "
        "``timeout`` on a connection the host has silently forgotten).", minimum=0.1)
    batch: int = setting(20, "Messages a worker leases at once.", minimum=1)
    concurrency_per_domain: int = setting(4,
        "Most deliveries at once to one destination domain from one worker.", minimum=1)
    poll_seconds: float = setting(30.0,
        "Seconds between looks at the queue when no wake-up comes (watches may be missed).")
    retry_intervals: list[str] = setting(["120", "300", "600", "900", "1800", "3600", "7200"],
        "Seconds to wait after the 1st, 2nd ... failed attempt; the last one repeats.")
    delay_warning: float = setting(4.0 * HOUR,
        "Seconds in the queue after which a sender hears that a message is delayed (once); "
        "0: never.")
    give_up_after: float = setting(5 * 24.0 * HOUR,
        "Seconds after which undelivered recipients fail and bounce.")
    lease_seconds: float = setting(10.0 * MINUTE,
        "How long a worker holds a message; a worker that dies leaves it to another one after "
        "this.")
    tombstone_seconds: float = setting(7 * 24.0 * HOUR,
        "Finished queue ids are remembered this long (a repeated submission is not queued "
        "again); maintenance forgets older ones.")
    mta_sts: bool = setting(True,
        "Apply the MTA-STS policies of destination domains (RFC 8461) when delivering to "
        "their MX hosts: in enforce mode only to MX hosts the policy names, over TLS with a "
        "certificate valid for the MX name, else the delivery is deferred; in testing mode "
        "failures are logged and counted and the mail goes anyway.")
    mta_sts_port: int = setting(443,
        "Port of the MTA-STS policy hosts. RFC 8461 says 443: change it only in tests.",
        minimum=1)
    mta_sts_timeout: float = setting(60.0, "Seconds to fetch an MTA-STS policy.")
    tls_ca_file: str = setting("",
        "CA certificates (PEM file) that verify MX hosts and MTA-STS policy hosts; empty "
        "uses the system's CA store.")
    dane: bool = setting(True,
        "Apply DANE (RFC 7672) to MX hosts whose TLSA records (_25._tcp.<host>) the resolver "
        "says are DNSSEC-validated (AD bit); it takes precedence over MTA-STS. Sound only "
        "with a validating resolver on a trusted path (resolver = a local unbound).")
    idle_connections_per_hop: int = setting(4,
        "Connections to one next hop (host, address, port) a worker keeps open after a "
        "delivery, for the next message there (RSET, then a new MAIL FROM: RFC 5321); "
        "0: a new connection for every message. Not for MTA-STS or DANE deliveries, which "
        "check each connection.", minimum=0)
    idle_seconds: float = setting(5.0,
        "Seconds an idle kept connection stays open before it is closed with QUIT.")

    def retry(self) -> RetrySettings:
        return RetrySettings(tuple(float(x) for x in self.retry_intervals),
                             float(self.delay_warning), float(self.give_up_after),
                             float(self.lease_seconds))


SECTION = section(
    "outbound",
    "Sending mail to remote domains: accepted submissions to remote recipients are queued "
    "durably before 250, and delivery workers on every node process send them to the next hop "
    "(MX hosts, or a relay), retry deferred ones, and bounce failures to the sender (RFC 3464).",
    OutboundSettings,
)
