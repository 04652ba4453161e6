"""Building an Envelope from a message header (RFC 5322 §3.6) and parsing its Date (§3.3)."""

from __future__ import annotations

import calendar
import re
from email.utils import parsedate_tz

from server.mime.addresses import AddressList, parse_address_list
from server.mime.charsets import surrogate_text
from server.mime.headers import FieldSpan, FieldValues
from server.mime.model import Envelope

__all__ = ["build_envelope", "parse_date"]

_COMMA = ","
_MIN_TS = -62135596800  # 0001-01-01
_MAX_TS = 253402300799  # 9999-12-31T23:59:59
_SPACES = re.compile(r"\s+")


def parse_date(text: str) -> int | None:
    """RFC 5322 date-time (with obsolete forms) to a UTC POSIX timestamp; None if invalid."""
    if not text or len(text) > 200:
        return None
    try:
        parts = parsedate_tz(_SPACES.sub(" ", surrogate_text(text)).strip())
        if parts is None:
            return None
        year, month, day, hour, minute, sec = parts[:6]
        if not (1 <= month <= 12 and 1 <= day <= 31 and 0 <= hour <= 24 and 0 <= minute <= 59):
            return None
        if not (0 <= sec <= 61 and 1 <= year <= 9999):
            return None
        offset = parts[9] or 0
        ts = calendar.timegm((year, month, day, hour, minute, min(sec, 59), 0, 1, 0)) - offset
    except (ValueError, TypeError, OverflowError, IndexError):
        return None
    return ts if _MIN_TS <= ts <= _MAX_TS else None


class _Values(FieldValues):
    def addresses(self, name: str) -> AddressList:
        text = self.text(name)
        if text is None:
            return ()
        if self.cut(name):  # drop the address the cap cut in half
            text = text[: max(text.rfind(_COMMA), 0)]
        return parse_address_list(text)


# The fields an Envelope holds (the names it may list as ``repeated``).
ENVELOPE_FIELDS = frozenset({"date", "subject", "from", "sender", "reply-to", "to", "cc",
                             "bcc", "in-reply-to", "message-id", "references"})


def build_envelope(buf: bytes, fields: dict[str, FieldSpan], cap: int,
                   repeated: tuple[str, ...] = ()) -> Envelope:
    """Envelope of the message whose header fields (first occurrences) are given;
    ``repeated``: names of fields that occur more than once."""
    v = _Values(buf, fields, cap)
    date = v.text("date")
    return Envelope(
        date=date,
        timestamp=parse_date(date) if date else None,
        subject=v.text("subject"),
        from_=v.addresses("from"),
        sender=v.addresses("sender"),
        reply_to=v.addresses("reply-to"),
        to=v.addresses("to"),
        cc=v.addresses("cc"),
        bcc=v.addresses("bcc"),
        in_reply_to=v.text("in-reply-to"),
        message_id=v.text("message-id"),
        references=v.text("references"),
        truncated=v.truncated,
        repeated=tuple(n for n in repeated if n in ENVELOPE_FIELDS),
    )
