"""The base subject of RFC 5256 §2.1, for IMAP SORT SUBJECT and THREAD (and JMAP threading).

Works on the decoded subject (encoded words already decoded, step 1 is white space only) and
compares case-insensitively by returning the base in lower case (i;unicode-casemap, RFC 5051,
is approximated by str.casefold).
"""

from __future__ import annotations

import re

__all__ = ["base_subject"]

_WSP = re.compile(r"\s+")
# step 2: subj-trailer = "(fwd)" / WSP
_TRAILER = re.compile(r"(?:\s|\(fwd\))+$", re.IGNORECASE)
# step 3: subj-leader = (*subj-blob subj-refwd) / WSP
#   subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"; subj-blob = "[" *BLOBCHAR "]" *WSP
_BLOB = r"\[[^\[\]]*\]\s*"
_LEADER = re.compile(rf"(?:(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:|\s)", re.IGNORECASE)
_BLOB_PREFIX = re.compile(_BLOB)
# step 6: subj-fwd-hdr = "[fwd:", subj-fwd-trl = "]"
_FWD = re.compile(r"^\[fwd:(.*)\]$", re.IGNORECASE | re.DOTALL)
_MAX_ROUNDS = 10_000
_MAX_LENGTH = 8_192


def base_subject(subject: str) -> str:
    """RFC 5256 §2.1 base subject of a decoded subject, case-folded."""
    text = _WSP.sub(" ", subject[:_MAX_LENGTH])  # step 1
    for _ in range(_MAX_ROUNDS):
        text = _TRAILER.sub("", text)  # step 2
        while True:  # steps 3-5
            before = text
            m = _LEADER.match(text)
            while m is not None and m.end() > 0:
                text = text[m.end() :]
                m = _LEADER.match(text)
            m = _BLOB_PREFIX.match(text)
            if m is not None and text[m.end() :]:  # step 4: only if something remains
                text = text[m.end() :]
            if text == before:
                break
        fwd = _FWD.match(text)  # step 6
        if fwd is None:
            break
        text = fwd.group(1)
    return text.casefold()
