"""The base subject of RFC 5256 §2.1, for IMAP SORT SUBJECT and THREAD.

The one implementation lives in :mod:`mailtext.subjects`, shared with JMAP threading in
``fdb_layers.mail.threads`` (which may not import ``server``): both group messages the same way.
``base_subject`` gives the i;unicode-casemap (RFC 5051) comparison form of the base subject;
``extract_base_subject`` the base subject as written.
"""

from __future__ import annotations

from mailtext.subjects import base_subject, casemap, extract_base_subject

__all__ = ["base_subject", "casemap", "extract_base_subject"]
