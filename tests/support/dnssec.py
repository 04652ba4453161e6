"""A validating resolver for tests: Debian's unbound with the validator module, serving
a DNSSEC-signed zone (signed by the test with dnspython's ``dns.dnssec.sign_zone``) as
an ``auth-zone`` it validates as if fetched from upstream, with the zone's key as the
trust anchor.  Answers from the zone carry the AD bit; with ``trusted=False`` no trust
anchor is configured (the zone is insecure: no AD).  Every other name is refused, so
nothing leaves 127.0.0.1."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import dns.rdataset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.dns import Records, UnboundServer

with warnings.catch_warnings():     # dnspython's DSA algorithm warns when imported
    warnings.simplefilter("ignore")
    import dns.dnssec
    from dns.dnssectypes import Algorithm


class SignedZoneServer(UnboundServer):
    def __init__(self, zone: str, records: Records, directory: Path, binary: str, *,
                 trusted: bool = True, tamper: tuple[str, str, str] | None = None) -> None:
        self.zone = zone.lower().rstrip(".")
        self.trusted = trusted
        self.tamper = tamper        # (name, type, value) changed after signing: bogus
        self.key = ec.generate_private_key(ec.SECP256R1())
        super().__init__(records, directory, binary)

    def _zone_text(self) -> tuple[str, str]:
        """The signed zone file and the trust anchor (its DNSKEY)."""
        origin = f"{self.zone}."
        lines = [f"$ORIGIN {origin}", "$TTL 60",
                 f"@ SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 60",
                 f"@ NS ns.{origin}", f"ns.{origin} A 127.0.0.1"]
        for (name, rdtype), values in sorted(self.records.items()):
            lines += [f"{name}. {rdtype} {value}" for value in values]
        zone = dns.zone.from_text("\n".join(lines) + "\n", origin, relativize=False)
        dnskey = dns.dnssec.make_dnskey(self.key.public_key(), Algorithm.ECDSAP256SHA256,
                                        flags=257)
        with zone.writer() as txn:
            dns.dnssec.sign_zone(zone, txn=txn, keys=[(self.key, dnskey)], add_dnskey=True,
                                 dnskey_ttl=60, inception=time.time() - 3600,
                                 expiration=time.time() + 30 * 86400)
        if self.tamper is not None:
            name, rdtype, value = self.tamper
            with zone.writer() as txn:
                txn.replace(f"{name}.", dns.rdataset.from_text("IN", rdtype, 60, value))
        return zone.to_text(), f"{origin} 60 IN DNSKEY {dnskey.to_text()}\n"

    def _config(self) -> str:
        zone_text, anchor = self._zone_text()
        zone_file = self.directory / "signed.zone"
        zone_file.write_text(zone_text)
        anchor_file = self.directory / "anchor"
        anchor_file.write_text(anchor)
        lines = [
            "server:", "  interface: 127.0.0.1", f"  port: {self.port}",
            "  do-daemonize: no", '  username: ""', '  chroot: ""',
            f'  directory: "{self.directory}"', '  pidfile: ""', "  use-syslog: no",
            f'  logfile: "{self.directory / "unbound.log"}"', "  do-ip6: no",
            "  do-tcp: yes", "  access-control: 127.0.0.0/8 allow",
            '  module-config: "validator iterator"', "  num-threads: 1",
            '  local-zone: "." refuse', f'  local-zone: "{self.zone}." transparent',
        ]
        if self.trusted:
            lines.append(f'  trust-anchor-file: "{anchor_file}"')
        else:
            lines.append(f'  domain-insecure: "{self.zone}."')
        lines += ["auth-zone:", f'  name: "{self.zone}."', f'  zonefile: "{zone_file}"',
                  "  for-upstream: yes", "  for-downstream: no", "  fallback-enabled: no",
                  "remote-control:", "  control-enable: no", ""]
        return "\n".join(lines)

