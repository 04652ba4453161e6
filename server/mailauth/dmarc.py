"""DMARC (RFC 7489): the policy is found with authheaders (the From: domain's record,
else its organizational domain's, by the public suffix list: section 6.6.3); the
identifier alignment of section 3.1 is checked here against every passing DKIM
signature and the SPF result."""

from __future__ import annotations

from authheaders import dmarc_per_from
from authheaders.dmarc_lookup import get_org_domain

from server.mailauth.checks import DkimResult, DmarcResult, SpfResult
from server.mailauth.lookup import DnsTempError, Lookup
from server.mailauth.message import NoAuthorDomain, author_domain

_WEAKER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


def _aligned(mode: str, author: str, other: str) -> bool:
    """Section 3.1.1/3.1.2: strict is the same domain, relaxed the same
    organizational domain."""
    if not other:
        return False
    if mode == "s":
        return author == other
    return bool(get_org_domain(author) == get_org_domain(other))


def check_dmarc(lookup: Lookup, message: bytes, spf: SpfResult,
                dkim: tuple[DkimResult, ...]) -> DmarcResult:
    """Blocking: run it in a thread."""
    try:
        author = author_domain(message)
    except NoAuthorDomain as e:
        return DmarcResult("permerror", reason=str(e))
    try:
        _, _, _, policy, record, _ = dmarc_per_from(author, dnsfunc=lookup.dmarc_txt,
                                                    policy_only=True)
    except DnsTempError as e:
        return DmarcResult("temperror", author, reason=str(e))
    except Exception as e:          # a record authheaders cannot parse
        return DmarcResult("permerror", author, reason=type(e).__name__)
    if not record or not record.get("p"):
        return DmarcResult("none", author)
    policy = str(policy).rstrip("\\") or "none"
    if policy not in _WEAKER:
        return DmarcResult("permerror", author, reason=f"unknown policy {policy[:20]}")
    pct = str(record.get("pct", "100"))
    if pct.isdigit() and int(pct) < 100:
        # section 6.6.4: messages outside the sample get the next weaker policy;
        # we apply that weaker one to all of them (never refuse more than asked)
        policy = _WEAKER[policy]
    aligned_spf = spf.result == "pass" and _aligned(
        str(record.get("aspf", "r")), author, spf.mailfrom_domain)
    aligned_dkim = any(d.result == "pass" and _aligned(str(record.get("adkim", "r")),
                                                       author, d.domain.lower())
                       for d in dkim)
    if aligned_spf or aligned_dkim:
        return DmarcResult("pass", author, policy)
    return DmarcResult("fail", author, policy, "no aligned SPF or DKIM pass")
