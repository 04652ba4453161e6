"""ENVELOPE for a client that has not enabled UTF8=ACCEPT (or IMAP4rev2): RFC 6855 section 7
and 8 leave the server to present internationalized header fields in a form the base
protocol allows, with RFC 6857 / RFC 6858 as the algorithms to follow.

What this does, per field, to text that is UTF-8 (text that is not valid UTF-8, old 8-bit
mail, is left as it was received):

* the subject and display names become RFC 2047 encoded words (``=?UTF-8?B?...?=``), which
  every client decodes (RFC 6857 section 3.1.8 / 3.1.4);
* a domain becomes its A-label (IDNA), so the address stays usable;
* an address whose local part is not ASCII cannot be written in RFC 5322 syntax: it becomes an
  empty group whose display name is the encoded address (RFC 6857 section 3.1.3), so the user
  still sees who it was.

Pure: an :class:`Envelope` in, an :class:`Envelope` out.
"""

from __future__ import annotations

import base64
from dataclasses import replace

from server.mime.addresses import Address, AddressList, Group
from server.mime.model import Envelope

__all__ = ["downgrade_envelope", "needs_downgrade", "encoded_words"]

_CHUNK = 45  # octets per encoded word: the word stays within 75 characters (RFC 2047 §2)


def _utf8(text: str) -> bool:
    """Non-ASCII text that is valid UTF-8 (no undecodable octets kept as surrogates)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encoded_words(text: str) -> str:
    """``text`` as RFC 2047 encoded words (B encoding), split on character boundaries."""
    words: list[str] = []
    chunk = b""
    for ch in text:
        octets = ch.encode("utf-8")
        if len(chunk) + len(octets) > _CHUNK:
            words.append(chunk.decode("utf-8"))
            chunk = b""
        chunk += octets
    if chunk:
        words.append(chunk.decode("utf-8"))
    return " ".join("=?UTF-8?B?" + base64.b64encode(w.encode("utf-8")).decode("ascii") + "?="
                    for w in words)


def _text(value: str | None) -> str | None:
    return encoded_words(value) if value is not None and _utf8(value) else value


def _host(host: str | None) -> str | None:
    if host is None or not _utf8(host):
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _address(a: Address) -> Address | Group:
    if a.mailbox is not None and _utf8(a.mailbox):
        shown = a.email if a.name is None else f"{a.name} <{a.email}>"
        return Group(encoded_words(shown), ())
    return Address(_text(a.raw_name), a.mailbox, _host(a.host))


def _addresses(items: AddressList) -> AddressList:
    out: list[Address | Group] = []
    for item in items:
        if isinstance(item, Group):
            out.append(Group(_text(item.raw_name) or "",
                             tuple(m for m in map(_address, item.members)
                                   if isinstance(m, Address))))
        else:
            out.append(_address(item))
    return tuple(out)


def _envelope_texts(env: Envelope) -> list[str]:
    texts = [t for t in (env.subject,) if t is not None]
    for items in (env.from_, env.sender, env.reply_to, env.to, env.cc, env.bcc):
        for item in items:
            members = item.members if isinstance(item, Group) else (item,)
            texts += [item.raw_name or ""]
            for m in members:
                texts += [m.raw_name or "", m.mailbox or "", m.host or ""]
    return texts


def needs_downgrade(env: Envelope) -> bool:
    return any(_utf8(t) for t in _envelope_texts(env))


def downgrade_envelope(env: Envelope) -> Envelope:
    """The envelope a legacy client gets (see the module's docstring); unchanged when all of
    it is ASCII."""
    if not needs_downgrade(env):
        return env
    return replace(env, subject=_text(env.subject), from_=_addresses(env.from_),
                   sender=_addresses(env.sender), reply_to=_addresses(env.reply_to),
                   to=_addresses(env.to), cc=_addresses(env.cc), bcc=_addresses(env.bcc))
