"""IMAP ENVELOPE, BODY and BODYSTRUCTURE wire syntax (RFC 9051 §7.5.2, §9; RFC 3501 §7.4.2).

Strings are quoted when they are 7-bit text without CR/LF, otherwise sent as literals; NUL octets
are dropped (CHAR8 excludes them). With utf8=True (UTF8=ACCEPT, RFC 6855; IMAP4rev2 quoted
strings) valid UTF-8 may be quoted too. Header text is sent as written: encoded words are left
for the client to decode, and undecodable octets go out exactly as they were received.

Conventions where the RFC leaves a choice, following common servers:
- types, subtypes, encodings, parameter and disposition names are upper-cased;
- a text part without a charset parameter reports ("CHARSET" "US-ASCII") (RFC 2045 §5.2);
- an address without a domain reports "MISSING_DOMAIN", since a NIL host marks group syntax;
- a multipart with no parts, or a message/rfc822 whose message was not parsed (encoded body,
  depth cap), is reported as APPLICATION/OCTET-STREAM, which every client can fetch whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from server.mime.addresses import Address, AddressList, Group
from server.mime.model import Envelope, MessageSummary, Part
from server.mime.params import Params

__all__ = ["render_envelope", "render_bodystructure", "render_envelope_of", "imap_string"]

_QUOTABLE = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*")
_QUOTE_ESCAPE = re.compile(rb'(["\\])')
_CTL = re.compile(rb"[\x00-\x1f\x7f]")
_NIL = b"NIL"
_MISSING_DOMAIN = "MISSING_DOMAIN"
_MISSING_MAILBOX = "MISSING_MAILBOX"
_ENCAPSULATED = ("RFC822", "GLOBAL")  # body-type-msg subtypes (RFC 9051 §9 media-message)


def _octets(text: str) -> bytes:
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    return data.replace(b"\x00", b"")


def imap_string(text: str, utf8: bool = False) -> bytes:
    """An IMAP string: quoted when possible, else a literal (RFC 9051 §4.3)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return b'"%s"' % text.encode("ascii")  # the common case, as _string would quote it
    return _string(text, utf8)


def _string(text: str, utf8: bool) -> bytes:
    data = _octets(text)
    quotable = _QUOTABLE.fullmatch(data) is not None
    if not quotable and utf8 and not _CTL.search(data.replace(b"\t", b"")):
        try:
            data.decode("utf-8")
            quotable = True
        except UnicodeDecodeError:
            quotable = False
    if quotable:
        return b'"' + _QUOTE_ESCAPE.sub(rb"\\\1", data) + b'"'
    return b"{%d}\r\n" % len(data) + data


def _nstring(text: str | None, utf8: bool) -> bytes:
    return _NIL if text is None else imap_string(text, utf8)


# -- ENVELOPE ---------------------------------------------------------------------------


def _address(a: Address, utf8: bool) -> bytes:
    return b"(%s NIL %s %s)" % (
        _nstring(a.raw_name, utf8),
        imap_string(a.mailbox if a.mailbox is not None else _MISSING_MAILBOX, utf8),
        imap_string(a.host if a.host is not None else _MISSING_DOMAIN, utf8),
    )


def _address_list(items: AddressList, utf8: bool) -> bytes:
    if not items:
        return _NIL
    out = [b"("]
    for item in items:
        if isinstance(item, Group):
            # RFC 9051 §7.5.2: group start has a NIL host and the name as mailbox; end is all NIL
            out.append(b"(NIL NIL %s NIL)" % imap_string(item.raw_name, utf8))
            out.extend(_address(m, utf8) for m in item.members)
            out.append(b"(NIL NIL NIL NIL)")
        else:
            out.append(_address(item, utf8))
    out.append(b")")
    return b"".join(out)


def render_envelope_of(env: Envelope, utf8: bool = False) -> bytes:
    """The parenthesised envelope of one message."""
    from_ = _address_list(env.from_, utf8)
    # "If the Sender or Reply-To lines are absent ... or are present but empty, the server sets
    # the corresponding member of the envelope to be the same value as the from member."
    sender = _address_list(env.sender, utf8) if env.sender else from_
    reply_to = _address_list(env.reply_to, utf8) if env.reply_to else from_
    return b"(%s)" % b" ".join(
        (
            _nstring(env.date, utf8),
            _nstring(env.subject, utf8),
            from_,
            sender,
            reply_to,
            _address_list(env.to, utf8),
            _address_list(env.cc, utf8),
            _address_list(env.bcc, utf8),
            _nstring(env.in_reply_to, utf8),
            _nstring(env.message_id, utf8),
        )
    )


def render_envelope(summary: MessageSummary, utf8: bool = False) -> bytes:
    """FETCH ENVELOPE data of the top-level message."""
    return render_envelope_of(summary.envelope, utf8)


# -- BODY / BODYSTRUCTURE -----------------------------------------------------------------


def _params(params: Params, utf8: bool) -> bytes:
    if not params:
        return _NIL
    items = b" ".join(
        imap_string(name.upper(), utf8) + b" " + imap_string(value, utf8) for name, value in params
    )
    return b"(" + items + b")"


def _disposition(part: Part, utf8: bool) -> bytes:
    if part.disposition is None:
        return _NIL
    return b"(%s %s)" % (
        imap_string(part.disposition.upper(), utf8),
        _params(part.disposition_params, utf8),
    )


def _language(part: Part, utf8: bool) -> bytes:
    if not part.language:
        return _NIL
    if len(part.language) == 1:
        return imap_string(part.language[0], utf8)
    return b"(" + b" ".join(imap_string(t, utf8) for t in part.language) + b")"


def _ext(part: Part, utf8: bool, params: bool) -> bytes:
    head = _params(part.params, utf8) if params else _nstring(part.md5, utf8)
    return b" ".join(
        (head, _disposition(part, utf8), _language(part, utf8), _nstring(part.location, utf8))
    )


class _Renderer:
    def __init__(self, summary: MessageSummary, extensible: bool, utf8: bool,
                 envelope_of: Callable[[Envelope], Envelope] | None = None) -> None:
        self.parts = summary.parts
        self.children: list[list[int]] = [[] for _ in summary.parts]
        for i, p in enumerate(summary.parts):
            if p.parent >= 0:
                self.children[p.parent].append(i)
        self.extensible = extensible
        self.utf8 = utf8
        self.envelope_of = envelope_of

    def body(self, index: int) -> bytes:
        part = self.parts[index]
        kids = self.children[index]
        utf8 = self.utf8
        if part.is_multipart and kids:
            out = b"(" + b"".join(self.body(k) for k in kids)
            out += b" " + imap_string(part.subtype.upper(), utf8)
            if self.extensible:
                out += b" " + _ext(part, utf8, params=True)
            return out + b")"
        kind, sub, params = part.type.upper(), part.subtype.upper(), part.params
        nested = kids[0] if part.type == "message" and kids else None
        if part.is_multipart or (nested is None and kind == "MESSAGE" and sub in _ENCAPSULATED):
            kind, sub = "APPLICATION", "OCTET-STREAM"
        if kind == "TEXT" and not any(name == "charset" for name, _ in params):
            params = params + (("charset", "US-ASCII"),)
        fields = [
            imap_string(kind, utf8),
            imap_string(sub, utf8),
            _params(params, utf8),
            _nstring(part.id, utf8),
            _nstring(part.description, utf8),
            imap_string(part.encoding.upper(), utf8),
            b"%d" % part.size,
        ]
        if nested is not None:
            envelope = self.parts[nested].envelope or Envelope()
            if self.envelope_of is not None:
                envelope = self.envelope_of(envelope)
            fields.append(render_envelope_of(envelope, utf8))
            fields.append(self.body(nested))
            fields.append(b"%d" % part.lines)
        elif kind == "TEXT":
            fields.append(b"%d" % part.lines)
        if self.extensible:
            fields.append(_ext(part, utf8, params=False))
        return b"(" + b" ".join(fields) + b")"


def render_bodystructure(
    summary: MessageSummary, extensible: bool = True, utf8: bool = False,
    envelope_of: Callable[[Envelope], Envelope] | None = None,
) -> bytes:
    """FETCH BODYSTRUCTURE (extensible=True) or BODY (extensible=False) data;
    ``envelope_of`` rewrites the envelopes of encapsulated messages (IMAP's downgrade for
    clients without UTF8=ACCEPT)."""
    return _Renderer(summary, extensible, utf8, envelope_of).body(0)
