"""Mail address parsing and the lookup candidates of an address, shared by every backend.

Domains compare case-insensitively and in either IDNA form (``bücher.example`` and
``xn--bcher-kva.example`` are the same domain); the local part compares case-insensitively
unless the directory is configured otherwise.  SMTPUTF8 (RFC 6531) local parts are kept as
UTF-8 text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import idna

# RFC 5321 section 4.5.3.1.1 and 4.5.3.1.2: size limits of the parts (in octets).
_MAX_LOCAL = 64
_MAX_DOMAIN = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LENIENT_ASCII_DOMAIN = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")


@dataclass(frozen=True, slots=True)
class Address:
    local: str
    domain: str   # canonical: lower case, IDNA U-labels (or an address literal)

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


def canonical_domain(domain: str) -> str | None:
    """The domain in lower case with U-labels; None if it is not a usable domain."""
    domain = domain.strip().rstrip(".")
    if not domain or _utf8_len(domain) > _MAX_DOMAIN or _CONTROL.search(domain):
        return None
    if domain.startswith("[") and domain.endswith("]"):
        return domain.lower()       # address literal, RFC 5321 section 4.1.3
    try:
        return str(idna.decode(idna.encode(domain, uts46=True)))
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    low = domain.lower()
    # Names that IDNA 2008 refuses but DNS carries (underscores, odd hyphens): ASCII only.
    return low if _LENIENT_ASCII_DOMAIN.match(low) else None


def _utf8_len(text: str) -> int:
    """Octets of ``text`` in UTF-8; too many to accept when it is not valid Unicode text
    (a lone surrogate)."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return _MAX_DOMAIN + 1


def domain_forms(domain: str) -> tuple[str, ...]:
    """The canonical domain and, when it differs, its ASCII (A-label) form."""
    forms = [domain]
    if not domain.isascii():
        try:
            forms.append(idna.encode(domain, uts46=True).decode("ascii"))
        except (idna.IDNAError, UnicodeError, ValueError):
            pass
    return tuple(forms)


def parse_address(text: str, *, fold_local: bool = True) -> Address | None:
    """Parse ``local@domain`` (optionally in angle brackets); None if it is not an address."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or _CONTROL.search(local) or _utf8_len(local) > _MAX_LOCAL:
        return None
    canon = canonical_domain(domain)
    if canon is None:
        return None
    return Address(local.lower() if fold_local else local, canon)


def principal_emails(values: Iterable[str], *, fold_local: bool = True) -> tuple[str, ...]:
    """A principal's addresses as stored, in canonical form, each once, in order.  A catch-all
    (``@domain``) routes mail but is no address of its own, so it is left out."""
    out: list[str] = []
    for value in values:
        if value.startswith("@"):
            continue
        parsed = parse_address(value, fold_local=fold_local)
        text = str(parsed) if parsed else value
        if text not in out:
            out.append(text)
    return tuple(out)


def strip_subaddress(local: str, separator: str) -> str | None:
    """``user`` for ``user+tag`` (RFC 5233 ``:user``); None when there is no detail part."""
    if not separator:
        return None
    user, sep, _detail = local.partition(separator)
    return user if sep and user else None


def lookup_stages(address: Address, separator: str = "+") -> list[tuple[str, ...]]:
    """The keys to look up, stage by stage: the exact address, then the address without
    its sub-address, then the catch-all ``@domain``.  The first stage that matches wins; each
    stage lists the address in every domain form."""
    forms = domain_forms(address.domain)
    stages = [tuple(f"{address.local}@{d}" for d in forms)]
    user = strip_subaddress(address.local, separator)
    if user is not None:
        stages.append(tuple(f"{user}@{d}" for d in forms))
    stages.append(tuple(f"@{d}" for d in forms))
    return stages
