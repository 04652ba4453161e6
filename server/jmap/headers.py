"""``header:{name}[:as{Form}][:all]`` properties of Email and EmailBodyPart (RFC 8621
sections 4.1.2 and 4.1.3): parsing the property name, checking that the form may be used
for that header field, and rendering raw field values in each form.

Every renderer takes the raw octets after the field's colon (folding kept) and never
raises: a value that does not parse in a form gives that form's "cannot parse" value
(null), as section 4.1.2 says."""

from __future__ import annotations

import datetime
import email.utils
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from server.mime import parse_address_list, parse_msg_ids
from server.mime.addresses import Address, AddressList, Group
from server.mime.charsets import surrogate_text
from server.mime.encoded_words import decode_header_value, header_text

from .errors import invalid_arguments
from .json import JsonObject, JsonValue

PREFIX = "header:"

# Section 4.1.2: the header fields each form may be used with, besides any field that
# RFC 5322 and RFC 2369 do not define (those take every form).
_ADDRESS_FIELDS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc", "resent-from",
                             "resent-sender", "resent-reply-to", "resent-to", "resent-cc",
                             "resent-bcc"})
_ALLOWED: dict[str, frozenset[str]] = {
    "asText": frozenset({"subject", "comments", "keywords", "list-id"}),
    "asAddresses": _ADDRESS_FIELDS,
    "asGroupedAddresses": _ADDRESS_FIELDS,
    "asMessageIds": frozenset({"message-id", "in-reply-to", "references",
                               "resent-message-id"}),
    "asDate": frozenset({"date", "resent-date"}),
    "asURLs": frozenset({"list-help", "list-unsubscribe", "list-subscribe", "list-post",
                         "list-owner", "list-archive"}),
}
# The fields RFC 5322 (section 3.6) and RFC 2369 define; List-Id (RFC 2919) is named by
# section 4.1.2.2 too.  Only the forms listed above apply to them (and asRaw to all).
_DEFINED = frozenset().union(*_ALLOWED.values(), {"return-path", "received"})
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 section 3.6.8 ftext
_URL = re.compile(r"<([^<>]*)>")


@dataclass(frozen=True, slots=True)
class HeaderProperty:
    """One parsed ``header:`` property: the field name (lowercased), the form and
    whether every instance is wanted (``:all``)."""

    name: str
    form: str
    all: bool


def parse_header_property(prop: str) -> HeaderProperty | None:
    """The parsed property, None if ``prop`` is not a ``header:`` property; a form that
    does not exist or is forbidden for the field is ``invalidArguments`` (4.1.3)."""
    if not prop.startswith(PREFIX):
        return None
    pieces = prop[len(PREFIX):].split(":")
    want_all = len(pieces) > 1 and pieces[-1] == "all"
    if want_all:
        pieces.pop()
    if len(pieces) > 2 or not pieces[0] or not _FIELD_NAME.fullmatch(pieces[0]):
        raise invalid_arguments(f"invalid header property {prop!r}")
    name = pieces[0].lower()
    form = pieces[1] if len(pieces) == 2 else "asRaw"
    if form != "asRaw":
        allowed = _ALLOWED.get(form)
        if allowed is None:
            raise invalid_arguments(f"{prop!r}: unknown header form {form!r}")
        if name in _DEFINED and name not in allowed:
            raise invalid_arguments(f"{prop!r}: {form} cannot be used for {pieces[0]}")
    return HeaderProperty(name, form, want_all)


# -- the forms ------------------------------------------------------------------------


def as_raw(value: bytes) -> str:
    """4.1.2.1: the octets as they are; invalid UTF-8 as U+FFFD, NUL dropped."""
    return value.replace(b"\x00", b"").decode("utf-8", "replace")


def as_text(value: bytes) -> str:
    """4.1.2.2: unfolded, encoded words decoded, white space trimmed."""
    return decode_header_value(value)


def email_address(a: Address) -> JsonObject:
    """An EmailAddress (4.1.2.3): the display name (null without one) and the address."""
    return {"name": a.name or None, "email": a.email}


def addresses(items: AddressList) -> list[JsonValue]:
    """EmailAddress[] with groups flattened (4.1.2.3)."""
    out: list[JsonValue] = []
    for item in items:
        members: Sequence[Address] = item.members if isinstance(item, Group) else (item,)
        out.extend(email_address(a) for a in members)
    return out


def grouped_addresses(items: AddressList) -> list[JsonValue]:
    """EmailAddressGroup[] (4.1.2.4): each group, and each run of addresses outside any
    group as a group with a null name."""
    out: list[JsonValue] = []
    loose: list[JsonValue] = []
    for item in items:
        if isinstance(item, Group):
            if loose:
                out.append({"name": None, "addresses": loose})
                loose = []
            out.append({"name": item.name or None,
                        "addresses": [email_address(a) for a in item.members]})
        else:
            loose.append(email_address(item))
    if loose:
        out.append({"name": None, "addresses": loose})
    return out


def as_message_ids(value: bytes) -> list[JsonValue] | None:
    """4.1.2.5: the ids without angle brackets; null if none parse."""
    ids = parse_msg_ids(surrogate_text(header_text(value)))
    return list(ids) if ids else None


def parse_date(text: str) -> str | None:
    """An RFC 5322 date-time as an RFC 3339 Date keeping its offset (4.1.2.6), or None."""
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:  # "-0000": the time is UTC (RFC 5322 section 3.3)
        parsed = parsed.replace(tzinfo=datetime.UTC)
    offset = parsed.utcoffset() or datetime.timedelta(0)
    text = parsed.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def as_date(value: bytes) -> str | None:
    return parse_date(surrogate_text(header_text(value)).strip())


def as_urls(value: bytes) -> list[JsonValue] | None:
    """4.1.2.7: the URLs in angle brackets (RFC 2369), white space removed; null if none."""
    urls = ["".join(u.split()) for u in _URL.findall(surrogate_text(header_text(value)))]
    return list[JsonValue](urls) if urls else None


def _addresses_form(value: bytes) -> list[JsonValue]:
    return addresses(parse_address_list(header_text(value)))


def _grouped_form(value: bytes) -> list[JsonValue]:
    return grouped_addresses(parse_address_list(header_text(value)))


FORMS: dict[str, Callable[[bytes], JsonValue]] = {
    "asRaw": as_raw, "asText": as_text, "asAddresses": _addresses_form,
    "asGroupedAddresses": _grouped_form, "asMessageIds": as_message_ids,
    "asDate": as_date, "asURLs": as_urls,
}


def header_value(prop: HeaderProperty, fields: Sequence[tuple[str, bytes]]) -> JsonValue:
    """The value of ``prop`` over a header's fields ((name as written, raw value) pairs,
    in order): the last instance, or every one with ``:all`` (section 4.1.3); null (or
    an empty array) when the field is absent."""
    render = FORMS[prop.form]
    values = [render(v) for n, v in fields if n.lower() == prop.name]
    if prop.all:
        return values
    return values[-1] if values else None


def raw_headers(fields: Sequence[tuple[str, bytes]]) -> list[JsonValue]:
    """EmailHeader[] (4.1.2): every field in order, its name as written, its raw value."""
    return [{"name": n, "value": as_raw(v)} for n, v in fields]
