"""The ``[mailauth]`` settings: DKIM signing of submissions, and the SPF / DKIM /
DMARC / ARC checks on mail that arrives at the MX listener.  DNS lookups use
``[outbound] resolver``."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import section, setting


@dataclass(frozen=True, slots=True)
class MailauthSettings:
    """The ``[mailauth]`` settings."""

    dkim_sign: bool = setting(True,
        "Sign submitted mail for remote recipients with the keys of its From: domain "
        "(`fdbmail dkim generate DOMAIN` makes them); a domain without keys is sent unsigned.")
    dkim_key_cache_seconds: float = setting(60.0,
        "Seconds a node keeps a domain's DKIM keys before reading them from the store again "
        "(a new key is used within this time).", minimum=0)
    check_inbound: bool = setting(True,
        "Check SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489) and ARC (RFC 8617) on mail "
        "from outside (the MX listener without AUTH) and prepend the results as an "
        "Authentication-Results header (RFC 8601).")
    trusted_networks: list[str] = setting(["127.0.0.0/8", "::1/128"],
        "Client networks (CIDR) whose mail the MX does not check, like Postfix's mynetworks "
        "and OpenDKIM's InternalHosts: local MTAs and relays of our own. Forged "
        "Authentication-Results with our authserv-id are removed from their mail all the same.")
    authserv_id: str = setting("",
        "The authserv-id of our Authentication-Results headers (RFC 8601 section 2.5); "
        "incoming copies with it are removed. Empty means the SMTP hostname.")
    dmarc_policy: str = setting("honour",
        "What a DMARC failure does when the sender's domain asks for p=reject or "
        "p=quarantine: 'honour' refuses rejected mail (550 5.7.1) and files quarantined "
        "mail in Junk; 'quarantine' files both in Junk; 'report' only records the result.",
        choices=("honour", "quarantine", "report"))
    dns_timeout: float = setting(5.0,
        "Seconds one DNS lookup of a check may take; a timeout gives temperror.", minimum=0.1)
    spf_timeout: float = setting(20.0,
        "Seconds the whole SPF evaluation may take (RFC 7208 section 4.6.4 suggests at least "
        "20); beyond it temperror. The 10-lookup limit of section 4.6.4 always holds.",
        minimum=0.1)


SECTION = section(
    "mailauth",
    "Mail authentication: DKIM signatures on what local users send, and SPF, DKIM, DMARC "
    "and ARC checks on what arrives from outside.",
    MailauthSettings,
)
