"""DMARC (RFC 7489): policy discovery (section 6.6.3: the From: domain's record, else
its organizational domain's), the identifier alignment of section 3.1 against every
passing DKIM signature and the SPF result, and the policy that applies.

Organizational domains come from the Public Suffix List (``publicsuffixlist``, which
ships a current list and applies the default ``*`` rule to unlisted suffixes, as
section 3.2 requires).  authheaders was tried: its discovery names the public suffix,
not the organizational domain, for a name under an unlisted suffix, so it is not used."""

from __future__ import annotations

from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from server.mailauth.checks import DkimResult, DmarcResult, SpfResult
from server.mailauth.lookup import DnsTempError, Lookup
from server.mailauth.message import NoAuthorDomain, author_domain

POLICIES = ("none", "quarantine", "reject")
_WEAKER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """Section 3.2: the public suffix plus one label (the domain itself if it is a
    public suffix)."""
    return str(_psl().privatesuffix(domain.lower().rstrip(".")) or domain.lower())


def parse_record(text: str) -> dict[str, str] | None:
    """The tags of a DMARC record (section 6.3), None if it is not one: ``v=DMARC1``
    must come first (section 6.6.3 step 5)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if not part.strip():
            continue
        if not eq:
            return None
        tags.setdefault(name.strip().lower(), value.strip())
    first = text.split(";", 1)[0].replace(" ", "")
    return tags if first == "v=DMARC1" else None


def _record(lookup: Lookup, domain: str) -> dict[str, str] | None:
    """The one DMARC record at ``_dmarc.domain``; several are as none (6.6.3 step 5)."""
    found = [r for r in (parse_record(t.decode("utf-8", "replace"))
                         for t in lookup.txt(f"_dmarc.{domain}")) if r is not None]
    return found[0] if len(found) == 1 else None


def _aligned(mode: str, author: str, other: str) -> bool:
    """Section 3.1.1/3.1.2: strict is the same domain, relaxed the same
    organizational domain."""
    other = other.lower().rstrip(".")
    if not other:
        return False
    if mode == "s":
        return author == other
    return organizational_domain(author) == organizational_domain(other)


def check_dmarc(lookup: Lookup, message: bytes, spf: SpfResult,
                dkim: tuple[DkimResult, ...]) -> DmarcResult:
    """Blocking: run it in a thread."""
    try:
        author = author_domain(message)
    except NoAuthorDomain as e:
        return DmarcResult("permerror", reason=str(e))
    org = organizational_domain(author)
    try:
        record = _record(lookup, author)
        inherited = record is None and org != author
        if inherited:
            record = _record(lookup, org)
    except DnsTempError as e:
        return DmarcResult("temperror", author, reason=str(e))
    if record is None:
        return DmarcResult("none", author)
    policy = record.get("p", "").lower()
    if policy not in POLICIES:
        return DmarcResult("permerror", author, reason="no valid p= tag")
    if inherited and record.get("sp", "").lower() in POLICIES:
        policy = record["sp"].lower()       # section 6.3, sp: for subdomains
    pct = record.get("pct", "100")
    if pct.isdigit() and int(pct) < 100:
        # section 6.6.4: messages outside the sample get the next weaker policy;
        # we apply that weaker one to all of them (never refuse more than asked)
        policy = _WEAKER[policy]
    aligned_spf = spf.result == "pass" and _aligned(
        record.get("aspf", "r").lower(), author, spf.mailfrom_domain)
    aligned_dkim = any(d.result == "pass" and _aligned(record.get("adkim", "r").lower(),
                                                       author, d.domain)
                       for d in dkim)
    if aligned_spf or aligned_dkim:
        return DmarcResult("pass", author, policy)
    return DmarcResult("fail", author, policy, "no aligned SPF or DKIM pass")
