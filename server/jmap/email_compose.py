"""An RFC 5322 message from Email/set's create object (RFC 8621 section 4.6): pure, no
I/O (the attachments' bytes are given).

The message is built with Python's ``email`` package under the SMTP policy: CRLF line
ends, header lines folded under 78 characters, non-ASCII header text as encoded words
(RFC 2047), text bodies in UTF-8 with quoted-printable or base64 where they need it,
attachments in base64.  Date, Message-ID and MIME-Version are added when missing.

Everything the client may give is checked here; a bad value is a
:class:`~server.jmap.errors.SetError` ``invalidProperties`` naming the property."""

from __future__ import annotations

import base64
import datetime
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime

from .errors import MethodError, SetError
from .headers import parse_header_property
from .json import JsonObject, JsonValue
from .mail import parse_utc_date

ADDRESS_HEADERS = {"from": "From", "to": "To", "cc": "Cc", "bcc": "Bcc",
                   "replyTo": "Reply-To", "sender": "Sender"}
ID_HEADERS = {"messageId": "Message-ID", "inReplyTo": "In-Reply-To",
              "references": "References"}
# every property that stands for a header field of the message
TOP_FIELDS = {**ADDRESS_HEADERS, **ID_HEADERS, "subject": "Subject", "sentAt": "Date"}
ENVELOPE = ("mailboxIds", "keywords", "receivedAt")
BODY = ("bodyStructure", "textBody", "htmlBody", "attachments", "bodyValues")
SERVER_SET = ("id", "blobId", "threadId", "size", "hasAttachment", "preview", "headers")
# what a create may give besides header:* (RFC 8621 section 4.6)
CREATE_PROPERTIES = frozenset({*ENVELOPE, *BODY, *ADDRESS_HEADERS, *ID_HEADERS, "subject",
                               "sentAt"})
PART_PROPERTIES = ("partId", "blobId", "type", "charset", "disposition", "cid",
                   "language", "location", "name", "subParts", "size")


def _invalid(prop: str, description: str) -> SetError:
    return SetError("invalidProperties", description, properties=(prop,))


@dataclass(frozen=True, slots=True)
class Composed:
    raw: bytes
    attachment_bytes: int  # the bytes of the parts taken from blobs
    generated: tuple[str, ...]  # "messageId", "sentAt": their header made by the server


def blob_ids_of(values: JsonObject) -> list[str]:
    """Every ``blobId`` the create object's body parts name (to be read first)."""
    found: list[str] = []

    def walk(part: JsonValue) -> None:
        if isinstance(part, dict):
            if isinstance(part.get("blobId"), str):
                found.append(str(part["blobId"]))
            walk(part.get("subParts"))
        elif isinstance(part, list):
            for p in part:
                walk(p)

    for name in ("bodyStructure", "textBody", "htmlBody", "attachments"):
        walk(values.get(name))
    return list(dict.fromkeys(found))


def compose(values: JsonObject, blobs: Mapping[str, bytes], *, now: float,
            domain: str) -> Composed:
    """The message of ``values`` (the create object, envelope properties included,
    ignored here); ``blobs``: the bytes of every blob it names (see
    :func:`blob_ids_of`); ``domain`` ends a generated Message-ID."""
    given = sorted(p for p in SERVER_SET if p in values)
    if given:
        raise SetError("invalidProperties", "these properties are set by the server",
                       properties=tuple(given))
    unknown = sorted(p for p in values if p not in CREATE_PROPERTIES
                     and not p.startswith("header:"))
    if unknown:  # RFC 8620 section 5.3: a property the type does not have is invalid
        raise SetError("invalidProperties", "unknown properties", properties=tuple(unknown))
    builder = _Builder(values.get("bodyValues"), blobs)
    if "bodyStructure" in values:
        mixed = [p for p in ("textBody", "htmlBody", "attachments") if p in values]
        if mixed:
            raise SetError("invalidProperties", "bodyStructure excludes textBody, htmlBody "
                           "and attachments", properties=("bodyStructure", *mixed))
        message = builder.part(values["bodyStructure"], "bodyStructure", top=True)
    else:
        message = builder.simple(values)
    top = _as_message(message)
    _no_field_twice(values, top)
    generated = _headers(top, values, now=now, domain=domain)
    builder.check_all_values_used()
    return Composed(top.as_bytes(policy=policy.SMTP), builder.attachment_bytes, generated)


def _no_field_twice(values: JsonObject, top: EmailMessage) -> None:
    """Section 4.6: "the bodyStructure EmailBodyPart MUST NOT contain a property
    representing a header field that is already defined on the top-level Email
    object"; the same holds for the one textBody or htmlBody part that is the whole
    message (its fields and the Email's are one header)."""
    defined = {_field_of(k) for k in values if k.startswith("header:")
               if not _field_of(k).startswith("content-")}  # refused anyway (_headers)
    defined.update(field.lower() for prop, field in TOP_FIELDS.items()
                   if values.get(prop) is not None)
    both = sorted(defined & {name.lower() for name in top.keys()})
    if both:
        given = tuple(p for p in BODY[:4] if p in values)
        raise SetError("invalidProperties", f"the Email and its body part both give "
                       f"{both[0]}", properties=given or ("bodyStructure",))


def _as_message(part: MIMEPart) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    for name, value in part.items():
        if name.lower() != "mime-version":
            message[name] = value
    payload = part.get_payload()
    message.set_payload(payload)
    return message


class _Builder:
    def __init__(self, body_values: JsonValue, blobs: Mapping[str, bytes]) -> None:
        if body_values is None:
            body_values = {}
        if not isinstance(body_values, dict):
            raise _invalid("bodyValues", "bodyValues must be an object")
        self.values: dict[str, str] = {}
        for part_id, value in body_values.items():
            if not isinstance(value, dict) or not isinstance(value.get("value"), str) or \
                    value.get("isEncodingProblem", False) or value.get("isTruncated", False):
                raise _invalid("bodyValues", f"bodyValues/{part_id} must be "
                               "{value: String} (not truncated, no encoding problem)")
            self.values[part_id] = str(value["value"])
        self.used: set[str] = set()
        self.blobs = blobs
        self.attachment_bytes = 0

    def check_all_values_used(self) -> None:
        unused = sorted(set(self.values) - self.used)
        if unused:
            raise _invalid("bodyValues", f"bodyValues not used by any part: {unused}")

    def simple(self, values: JsonObject) -> MIMEPart:
        """textBody / htmlBody / attachments (RFC 8621 4.6): text and HTML as
        multipart/alternative; inline attachments (a ``cid``, no ``attachment``
        disposition) with the HTML as multipart/related; the rest as multipart/mixed."""
        attachments = values.get("attachments", [])
        if not isinstance(attachments, list):
            raise _invalid("attachments", "attachments must be a list of parts")
        inline = [a for a in attachments if isinstance(a, dict) and
                  isinstance(a.get("cid"), str) and a.get("disposition") != "attachment"]
        bodies: list[MIMEPart] = []
        for prop, subtype in (("textBody", "plain"), ("htmlBody", "html")):
            given = values.get(prop)
            if given is None:
                continue
            if not isinstance(given, list) or len(given) != 1:
                raise _invalid(prop, f"{prop} must hold exactly one part")
            part = self.part(given[0], prop)
            if part.get_content_type() != f"text/{subtype}":
                raise _invalid(prop, f"the part of {prop} must be text/{subtype}")
            if subtype == "html" and inline:
                related = [self.part(a, "attachments", attachment=True, inline=True)
                           for a in inline]
                part = self._multipart("related", [part, *related])
            bodies.append(part)
        if "htmlBody" not in values:
            inline = []  # no HTML to refer to them: plain attachments
        if not bodies:
            bodies.append(self._text("", "plain"))
        body = bodies[0] if len(bodies) == 1 else self._multipart("alternative", bodies)
        rest = [a for a in attachments if not any(a is i for i in inline)]
        if not rest:
            return body
        return self._multipart("mixed", [body, *(self.part(a, "attachments", attachment=True)
                                                 for a in rest)])

    def part(self, spec: JsonValue, prop: str, *, top: bool = False,
             attachment: bool = False, inline: bool = False) -> MIMEPart:
        if not isinstance(spec, dict):
            raise _invalid(prop, "a body part must be an object")
        unknown = [k for k in spec if k not in PART_PROPERTIES and not k.startswith("header:")]
        if unknown:
            raise _invalid(prop, f"unknown body part properties: {sorted(unknown)}")
        if any(k.lower().startswith("header:content-transfer-encoding") for k in spec):
            raise _invalid(prop, "Content-Transfer-Encoding is chosen by the server")
        kind = spec.get("type")
        if kind is not None and (not isinstance(kind, str) or kind.count("/") != 1):
            raise _invalid(prop, f"bad type {kind!r}")
        subparts = spec.get("subParts")
        if subparts is not None:
            if not isinstance(subparts, list) or not subparts:
                raise _invalid(prop, "subParts must be a non-empty list")
            subtype = "mixed"
            if isinstance(kind, str):
                main, _, subtype = kind.lower().partition("/")
                if main != "multipart":
                    raise _invalid(prop, "a part with subParts must be multipart/*")
            part = self._multipart(subtype, [self.part(s, prop) for s in subparts])
        elif isinstance(spec.get("partId"), str):
            part_id = str(spec["partId"])
            # section 4.6: partId and blobId "MUST NOT both be given"; charset and size
            # "MUST be omitted if a partId is given"
            if "blobId" in spec or "charset" in spec or "size" in spec:
                raise _invalid(prop, "a part with partId has no blobId, charset or size")
            if part_id not in self.values:
                raise _invalid(prop, f"no bodyValues for partId {part_id!r}")
            self.used.add(part_id)
            main, _, subtype = (kind or "text/plain").lower().partition("/")
            if main != "text":
                raise _invalid(prop, "a part with partId must be text/*")
            part = self._text(self.values[part_id], subtype)
        elif isinstance(spec.get("blobId"), str):
            data = self.blobs.get(str(spec["blobId"]))
            if data is None:  # the caller reports blobNotFound before composing
                raise _invalid(prop, f"no such blob {spec['blobId']!r}")
            self.attachment_bytes += len(data)
            main, _, subtype = (kind or "application/octet-stream").lower().partition("/")
            part = MIMEPart(policy=policy.SMTP)
            charset = spec.get("charset")
            if main == "text" and isinstance(charset, str):
                part.set_content(data, main, subtype)
                part.set_param("charset", charset)
            else:
                part.set_content(data, main, subtype)
        else:
            raise _invalid(prop, "a body part needs partId, blobId or subParts")
        self._part_headers(part, spec, prop, attachment=attachment and not top,
                           inline=inline)
        return part

    def _part_headers(self, part: MIMEPart, spec: JsonObject, prop: str, *,
                      attachment: bool, inline: bool = False) -> None:
        name, disposition = spec.get("name"), spec.get("disposition")
        if disposition is None and (attachment or name is not None):
            disposition = "inline" if inline else "attachment" if attachment else None
        if disposition is not None or name is not None:
            if not isinstance(disposition or "attachment", str) or \
                    (name is not None and not isinstance(name, str)):
                raise _invalid(prop, "disposition and name must be strings")
            params = {"filename": name} if isinstance(name, str) else {}
            del part["Content-Disposition"]
            part.add_header("Content-Disposition", str(disposition or "attachment"), **params)
            if isinstance(name, str):
                part.set_param("name", name)
        for key, header in (("cid", "Content-ID"), ("location", "Content-Location")):
            value = spec.get(key)
            if value is not None:
                if not isinstance(value, str):
                    raise _invalid(prop, f"{key} must be a string")
                part[header] = f"<{value}>" if key == "cid" else value
        language = spec.get("language")
        if language is not None:
            if not isinstance(language, list) or not all(isinstance(x, str) for x in language):
                raise _invalid(prop, "language must be a list of strings")
            part["Content-Language"] = ", ".join(str(x) for x in language)
        _one_property_per_field(spec, prop)
        for key, value in spec.items():
            if key.startswith("header:"):
                _raw_header(part, key, value, prop)

    def _text(self, text: str, subtype: str) -> MIMEPart:
        part = MIMEPart(policy=policy.SMTP)
        part.set_content(text, subtype=subtype, charset="utf-8", cte=_text_encoding(text))
        return part

    def _multipart(self, subtype: str, parts: list[MIMEPart]) -> MIMEPart:
        container = MIMEPart(policy=policy.SMTP)
        container.set_type(f"multipart/{subtype}")
        container.set_boundary("=_" + secrets.token_hex(12))
        container.set_payload(list(parts))
        del container["MIME-Version"]  # set_type's; only the message has one
        return container


def _text_encoding(text: str) -> str:
    """7bit for short ASCII lines; else quoted-printable for mostly ASCII text, base64 for
    the rest (the ``email`` package's own choice fails on some C1 controls)."""
    data = text.encode("utf-8", "surrogatepass")
    lines = text.splitlines()
    if data.isascii() and all(len(line) <= 78 for line in lines) and "\r" not in text:
        return "7bit"
    high = sum(1 for b in data if b > 0x7e or b < 0x20 and b not in (9, 10))
    return "base64" if high * 3 > len(data) else "quoted-printable"


def _raw_header(part: MIMEPart, key: str, value: JsonValue, prop: str) -> None:
    """``header:Name[:form][:all]`` (RFC 8621 section 4.1.3): the forms Raw, Text,
    Addresses, MessageIds, Date and URLs; with ``:all`` a list of values, one field each."""
    where = key if prop == "" else prop
    name, _, rest = key[len("header:"):].partition(":")
    form, _, tail = rest.partition(":")
    if form == "all" and not tail:
        form, tail = "", "all"
    if not name or any(not "\x21" <= c <= "\x7e" or c == ":" for c in name) or \
            form not in _FORMS or tail not in ("", "all"):
        raise _invalid(where, f"{key}: not a header property we can set")
    try:  # section 4.6: "MUST NOT be specified in parsed forms that are forbidden"
        parse_header_property(key)
    except MethodError as e:
        raise _invalid(where, e.description or key) from None
    values = value if tail == "all" else [value]
    if not isinstance(values, list):
        raise _invalid(where, f"{key}: :all takes a list of values")
    del part[name]
    try:
        for one in values:
            if form == "asAddresses":
                _set_addresses(part, name, one, where)
            else:
                part[name] = _FORMS[form](one, where)
    except ValueError as e:  # a field RFC 5322 allows once (Subject, Date...) given twice
        raise _invalid(where, f"{key}: {e}") from None


def _field_of(key: str) -> str:
    return key[len("header:"):].partition(":")[0].lower()


def _one_property_per_field(values: JsonObject, where: str) -> None:
    """Section 4.6: "There MUST NOT be two properties that represent the same header
    field (e.g., "header:from" and "from") within the Email or particular
    EmailBodyPart" - here two ``header:`` properties of one field, in any case or form
    (the convenience properties are checked by the caller)."""
    seen: dict[str, str] = {}
    for key in values:
        if key.startswith("header:"):
            other = seen.setdefault(_field_of(key), key)
            if other != key:
                raise SetError("invalidProperties", f"{other} and {key} name one header",
                               properties=(where,) if where else (other, key))


def _text_value(value: JsonValue, where: str) -> str:
    if not isinstance(value, str) or "\r" in value or "\n" in value:
        raise _invalid(where, "a header value is a string on one line")
    return value.strip()


def _date_value(value: JsonValue, where: str) -> str:
    try:
        when = parse_utc_date(value, where)
    except Exception:
        raise _invalid(where, "not a Date") from None
    return format_datetime(datetime.datetime.fromtimestamp(when, datetime.UTC))


def _urls_value(value: JsonValue, where: str) -> str:
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and v and not any(c in v for c in " <>\r\n") for v in value):
        raise _invalid(where, "a list of URLs")
    return ", ".join(f"<{v}>" for v in value)


def _encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 encoded words (UTF-8, base64), each at most 75 characters and
    holding whole characters (section 5); spaces travel inside the encoded text, so they
    survive, whereas whitespace between encoded words is dropped when decoding (6.2)."""
    words: list[bytes] = []
    chunk = b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > 45:  # 45 bytes: 60 base64 characters
            words.append(chunk)
            chunk = b""
        chunk += encoded
    if chunk or not words:
        words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words]


def _fold(tokens: list[str], name: str) -> str:
    """Tokens joined by spaces, folded before a token that would pass 78 characters."""
    lines: list[str] = []
    line = ""
    width = len(name) + 2  # "Name: "
    for token in tokens:
        if line and width + len(line) + 1 + len(token) > 78:
            lines.append(line)
            line, width = token, 1  # the continuation line's leading space
        else:
            line = f"{line} {token}" if line else token
    lines.append(line)
    return "\r\n ".join(lines)


def _address_tokens(name: str | None, email: str) -> list[str]:
    """One address as folding units: a plain ASCII name as Python quotes it, any other as
    encoded words of our own (Python's folder loses a space between two encoded words it
    splits a phrase into), then ``<email>``."""
    if not name:
        return [email]
    if name.isascii() and name.isprintable() and len(name) <= 60:
        return [str(Address(display_name=name, addr_spec=email))]
    return [*_encoded_words(name), f"<{email}>"]


def _address_list_tokens(value: JsonValue, prop: str) -> list[str]:
    """An address list's folding units, addresses separated by commas."""
    tokens: list[str] = []
    for i, (name, email) in enumerate(_address_items(value, prop)):
        if i:
            tokens[-1] += ","
        tokens.extend(_address_tokens(name, email))
    return tokens


def _addresses(value: JsonValue, prop: str) -> str:
    """An address list on one line (checks the ``asAddresses`` form; the field itself is
    written folded by :func:`_set_addresses`)."""
    return " ".join(_address_list_tokens(value, prop))


def _set_addresses(part: MIMEPart, header: str, value: JsonValue, prop: str) -> None:
    """Add an address field, folded here and set raw, so that Python's folder never
    re-splits our encoded words (see :func:`_address_tokens`)."""
    part.set_raw(header, _fold(_address_list_tokens(value, prop), header))


def _address_items(value: JsonValue, prop: str) -> list[tuple[str | None, str]]:
    if not isinstance(value, list) or not value:
        raise _invalid(prop, f"{prop} must be a non-empty list of EmailAddress")
    out: list[tuple[str | None, str]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("email"), str) or \
                not (item.get("name") is None or isinstance(item.get("name"), str)):
            raise _invalid(prop, f"{prop}: each address is {{name, email}}")
        email = str(item["email"])
        local, at, domain = email.rpartition("@")
        if not at or not local or not domain or any(c in email for c in " <>\r\n,"):
            raise _invalid(prop, f"{prop}: {email!r} is not an email address")
        name = item.get("name")
        try:
            if not domain.isascii():  # an IDN travels as its A-label (RFC 5890)
                email = f"{local}@{domain.encode('idna').decode('ascii')}"
            Address(display_name=str(name or ""), addr_spec=email)
        except (ValueError, IndexError, UnicodeError):
            raise _invalid(prop, f"{prop}: {email!r} is not an email address") from None
        out.append((str(name) if name else None, email))
    return out


def _message_ids(value: JsonValue, prop: str) -> str:
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and v and not any(c in v for c in " <>\r\n") for v in value):
        raise _invalid(prop, f"{prop} must be a non-empty list of message ids")
    return " ".join(f"<{v}>" for v in value)


_FORMS: dict[str, Callable[[JsonValue, str], str]] = {
    "": _text_value, "asRaw": _text_value, "asText": _text_value,
    "asAddresses": _addresses, "asMessageIds": _message_ids, "asDate": _date_value,
    "asURLs": _urls_value,
}


def _headers(message: EmailMessage, values: JsonObject, *, now: float,
             domain: str) -> tuple[str, ...]:
    """Sets the message's header fields; returns the properties whose header the server
    generated (a Date, a Message-ID)."""
    generated: list[str] = []
    header_keys = {k for k in values if k.startswith("header:")}
    _one_property_per_field(values, "")
    for key in header_keys:
        name = _field_of(key)
        clash = [p for p, h in (*ADDRESS_HEADERS.items(), *ID_HEADERS.items(),
                                ("subject", "Subject"), ("sentAt", "Date"))
                 if h.lower() == name and p in values]
        if clash:
            raise SetError("invalidProperties", f"{key} and {clash[0]} name one header",
                           properties=(key, clash[0]))
        # section 4.6: "Header fields beginning with "Content-" MUST NOT be specified on
        # the Email object, only on EmailBodyPart objects"
        if name.startswith("content-") or name == "mime-version":
            raise _invalid(key, f"{key} is not a header of the Email object")
        _raw_header(message, key, values[key], "")
    for prop, header in ADDRESS_HEADERS.items():
        if values.get(prop) is not None:
            _set_addresses(message, header, values[prop], prop)
    for prop, header in ID_HEADERS.items():
        if values.get(prop) is not None:
            message[header] = _message_ids(values[prop], prop)
    subject = values.get("subject")
    if subject is not None:
        if not isinstance(subject, str) or "\r" in subject or "\n" in subject:
            raise _invalid("subject", "subject must be a string on one line")
        message["Subject"] = subject
    sent = values.get("sentAt")
    if sent is not None:
        message["Date"] = _date_value(sent, "sentAt")
    elif "Date" not in message:
        message["Date"] = format_datetime(datetime.datetime.fromtimestamp(
            now, datetime.UTC))
        generated.append("sentAt")
    if "Message-ID" not in message:
        message["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
        generated.append("messageId")
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    return tuple(generated)
