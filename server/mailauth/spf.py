"""SPF (RFC 7208) with pyspf: the MAIL FROM identity, or HELO's when the reverse-path
is null (section 2.4).  Bounded: pyspf keeps the 10-lookup and 2-void-lookup limits
of section 4.6.4 (permerror past them) and ``querytime`` bounds the whole evaluation
(temperror past it); each lookup is bounded by the resolver's lifetime."""

from __future__ import annotations

import spf

from server.mailauth.checks import SpfResult
from server.mailauth.lookup import Lookup, spf_lookups

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")


def check_spf(lookup: Lookup, ip: str, mail_from: str, helo: str,
              total_timeout: float) -> SpfResult:
    """Blocking: run it in a thread."""
    identity_domain = mail_from.rpartition("@")[2].lower() if mail_from else helo.lower()
    with spf_lookups(lookup):
        try:
            q = spf.query(i=ip, s=mail_from, h=helo, timeout=lookup.timeout,
                          querytime=total_timeout)
            result, _code, explanation = q.check()
        except Exception as e:     # pyspf raises for inputs it cannot take (a bad IP)
            return SpfResult("permerror", identity_domain, helo, type(e).__name__)
    result = str(result).lower()
    if result not in RESULTS:       # pyspf's older words
        result = {"error": "temperror", "unknown": "permerror"}.get(result, "permerror")
    return SpfResult(result, identity_domain, helo, str(explanation))
