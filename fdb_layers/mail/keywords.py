"""IMAP flags and JMAP keywords: the one place that maps one to the other.

Keywords are stored lowercase (both protocols compare them case-insensitively).
IMAP system flags map to JMAP's ``$`` keywords (RFC 8621 section 4.1.1);
``\\Deleted`` is stored as ``$deleted``.  ``\\Recent`` is not stored (IMAP4rev2
dropped it).
"""

from __future__ import annotations

from collections.abc import Iterable

SEEN = "$seen"
DELETED = "$deleted"

_IMAP_TO_JMAP = {
    "\\seen": "$seen",
    "\\flagged": "$flagged",
    "\\answered": "$answered",
    "\\draft": "$draft",
    "\\deleted": "$deleted",
}
_JMAP_TO_IMAP = {
    "$seen": "\\Seen",
    "$flagged": "\\Flagged",
    "$answered": "\\Answered",
    "$draft": "\\Draft",
    "$deleted": "\\Deleted",
}
MAX_KEYWORD_LENGTH = 255


def keyword_from_imap(flag: str) -> str:
    """``\\Seen`` -> ``$seen``; a keyword atom -> itself, lowercase."""
    low = flag.lower()
    mapped = _IMAP_TO_JMAP.get(low)
    if mapped is not None:
        return mapped
    if low.startswith("\\"):
        raise ValueError(f"unknown system flag {flag!r}")
    return normalise_keyword(flag)


def keyword_to_imap(keyword: str) -> str:
    """``$seen`` -> ``\\Seen``; other keywords unchanged."""
    return _JMAP_TO_IMAP.get(keyword, keyword)


def normalise_keyword(keyword: str) -> str:
    if not keyword or len(keyword) > MAX_KEYWORD_LENGTH or keyword.startswith("\\"):
        raise ValueError(f"invalid keyword {keyword!r}")
    return keyword.lower()


def normalise_keywords(keywords: Iterable[str]) -> tuple[str, ...]:
    """A sorted tuple of distinct lowercase keywords (the stored form)."""
    return tuple(sorted({normalise_keyword(k) for k in keywords}))
