"""The outcome of the checks on one message: frozen records, one per method, with the
result words of RFC 8601 section 2.7 (and RFC 7489 11.2, RFC 8617 9)."""

from __future__ import annotations

from dataclasses import dataclass

ACCEPT = "accept"
QUARANTINE = "quarantine"
REJECT = "reject"


@dataclass(frozen=True, slots=True)
class SpfResult:
    """pass, fail, softfail, neutral, none, temperror, permerror (RFC 7208 section 2.6)."""

    result: str
    mailfrom_domain: str        # the checked identity's domain (HELO's if MAIL FROM <>)
    helo: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DkimResult:
    """One signature: pass, fail, neutral, temperror, permerror."""

    result: str
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DmarcResult:
    """pass, fail, none, temperror, permerror; ``policy`` the one that applies
    (none, quarantine, reject) when a record was found."""

    result: str
    header_from: str = ""
    policy: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ArcResult:
    """The chain validation status: none, pass, fail (RFC 8617 section 4.1.2)."""

    result: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    spf: SpfResult
    dkim: tuple[DkimResult, ...]
    dmarc: DmarcResult
    arc: ArcResult
    action: str = ACCEPT        # what [mailauth] dmarc_policy makes of the DMARC result
