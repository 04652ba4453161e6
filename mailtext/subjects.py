"""Base subjects (RFC 5256 section 2.1) and their comparison form (RFC 5051).

One implementation for JMAP threading (``fdb_layers.mail.threads``), IMAP THREAD and SORT
SUBJECT (``server.mime``), so that they group the same messages together.

* :func:`extract_base_subject` follows section 2.1 step by step on a subject whose
  encoded words are already decoded; it keeps case and characters.  Every step works
  with positions and removes what it matches once, so the time is linear in the
  subject's length, whatever its shape (``"Re: " * 5000``, ``"[" * 10000``...).
* :func:`casemap` is the i;unicode-casemap canonical form (RFC 5051 section 2): each
  character to its *simple* titlecase mapping (UnicodeData.txt), then NFKD.  Two
  subjects are equal for the collation when their forms are equal, and the form's
  code point order is the collation's order (SORT).  It is not ``str.casefold``:
  the simple mappings leave "ß" alone, so "Straße" and "Strasse" differ, as they do
  in other RFC 5051 implementations; NFKD makes "ｆｏｏ" equal to "FOO" and a
  precomposed "é" equal to "e" with a combining accent.
* :func:`base_subject` is the comparison form of the base subject: what RFC 5256
  compares, and what the store keeps per thread.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_SUBJECT_LENGTH", "base_subject", "casemap", "extract_base_subject"]

MAX_SUBJECT_LENGTH = 8_192  # longer subjects are cut before extraction

_WSP = re.compile(r"\s+")  # step 1: tabs, continuations, runs of spaces (Unicode spaces too)
# subj-blob = "[" *BLOBCHAR "]" *WSP (after step 1, WSP is one space at most)
_BLOB = re.compile(r"\[[^\[\]]*\] ?")
# subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"  (ABNF strings: ASCII, any case)
_REFWD = re.compile(r"(?:re|fwd?) ?(?:\[[^\[\]]*\] ?)?:", re.IGNORECASE | re.ASCII)
_FWD_HDR = "[fwd:"  # subj-fwd-hdr, compared in lower case
_TRAILER = "(fwd)"  # subj-trailer, with WSP


def extract_base_subject(subject: str) -> str:
    """The base subject of RFC 5256 section 2.1, case and characters kept."""
    s = _WSP.sub(" ", subject[:MAX_SUBJECT_LENGTH])  # step 1
    start, end = 0, len(s)
    while True:
        # step 2: remove trailing subj-trailer ("(fwd)" / WSP) repeatedly
        while end > start:
            if s[end - 1] == " ":
                end -= 1
            elif end - start >= len(_TRAILER) and s[end - 5 : end].lower() == _TRAILER:
                end -= 5
            else:
                break
        # steps 3-5: remove subj-leader (*subj-blob subj-refwd / WSP) and a leading
        # subj-blob when something remains, until neither applies.  Blobs before a
        # subj-refwd go one at a time by step 4, which always leaves the refwd.
        while start < end:
            if s[start] == " ":
                start += 1
                continue
            m = _REFWD.match(s, start, end)
            if m is not None:
                start = m.end()
                continue
            m = _BLOB.match(s, start, end)
            if m is not None and m.end() < end:
                start = m.end()
                continue
            break
        # step 6: "[fwd:" subject "]" -> subject, and again from step 2
        if end - start >= len(_FWD_HDR) + 1 and s[end - 1] == "]" and (
            s[start : start + len(_FWD_HDR)].lower() == _FWD_HDR
        ):
            start, end = start + len(_FWD_HDR), end - 1
            continue
        return s[start:end]


def _simple_title(c: str) -> str:
    # str.title applies the full mappings; where the full mapping of a character is
    # one character it is also its simple mapping, and where it is several (ß -> "Ss",
    # ligatures) the simple mapping is the character itself.
    t = c.title()
    return t if len(t) == 1 else c


def casemap(text: str) -> str:
    """The i;unicode-casemap canonical form of ``text`` (RFC 5051 section 2), made
    its own form: NFKD may give letters that titlecase again ("ﬁ" -> "fi",
    "ǅ" -> "Dž"), so the two steps repeat until nothing changes (at most three
    rounds in practice).  Strings equal for RFC 5051 have equal forms; the
    repetition only adds that "ﬁ" equals "FI"."""
    if text.isascii():
        return text.upper()
    for _ in range(_MAX_ROUNDS):
        mapped = unicodedata.normalize("NFKD", "".join(map(_simple_title, text)))
        if mapped == text:
            break
        text = mapped
    return text


_MAX_ROUNDS = 8


def base_subject(subject: str) -> str:
    """The comparison form of the RFC 5256 base subject: the extraction runs on
    the subject's :func:`casemap` form, so that the result is its own base subject
    and its own form (and "Ｒｅ：", which NFKD makes "RE:", is a leader too)."""
    return extract_base_subject(casemap(subject[:MAX_SUBJECT_LENGTH]))
