"""Mailbox names on the wire: modified UTF-7 (RFC 3501 §5.1.3, RFC 9051 §5.1.3) for IMAP4rev1
clients, UTF-8 for IMAP4rev2 and UTF8=ACCEPT (RFC 6855 §3).

Decoding is strict: an encoded run that is not the shortest form, that encodes printable
US-ASCII, that is empty (``&-`` only stands for ``&``), that has non-zero padding bits, or that
leaves a lone surrogate is refused, as are octets outside printable US-ASCII. Every valid name
then has exactly one encoding, so the codec is a bijection.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata

__all__ = ["MailboxNameError", "encode_mutf7", "decode_mutf7", "decode_mailbox", "encode_mailbox"]


class MailboxNameError(ValueError):
    """A mailbox name that is not valid in the encoding the session uses."""


def _is_direct(ch: str) -> bool:
    """Printable US-ASCII other than '&' is represented as itself (RFC 3501 §5.1.3)."""
    return "\x20" <= ch <= "\x7e"


def _b64_encode(run: str) -> bytes:
    raw = run.encode("utf-16-be")
    return base64.b64encode(raw, altchars=b"+,").rstrip(b"=")


def encode_mutf7(name: str) -> bytes:
    """Modified UTF-7 of a mailbox name (RFC 3501 §5.1.3)."""
    out = bytearray()
    run: list[str] = []
    for ch in name:
        if _is_direct(ch):
            if run:
                out += b"&" + _b64_encode("".join(run)) + b"-"
                run = []
            out += b"&-" if ch == "&" else ch.encode("ascii")
        else:
            run.append(ch)
    if run:
        out += b"&" + _b64_encode("".join(run)) + b"-"
    return bytes(out)


def _b64_decode(chunk: bytes) -> str:
    if not chunk or any(c not in _B64_CHARS for c in chunk):
        raise MailboxNameError("invalid modified base64 run")
    if len(chunk) % 4 == 1:
        raise MailboxNameError("truncated modified base64 run")
    padded = chunk + b"=" * (-len(chunk) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"+,", validate=True)
    except binascii.Error as exc:
        raise MailboxNameError("invalid modified base64 run") from exc
    if len(raw) % 2:
        raise MailboxNameError("modified base64 run is not whole UTF-16")
    if base64.b64encode(raw, altchars=b"+,").rstrip(b"=") != chunk:
        raise MailboxNameError("non-zero padding bits in modified base64 run")
    try:
        text = raw.decode("utf-16-be")  # strict: lone surrogates are refused
    except UnicodeDecodeError as exc:
        raise MailboxNameError("modified base64 run is not valid UTF-16") from exc
    if any(_is_direct(ch) for ch in text):
        raise MailboxNameError("printable US-ASCII must not be base64-encoded")
    return text


_B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def decode_mutf7(data: bytes) -> str:
    """The mailbox name a modified UTF-7 string stands for; MailboxNameError if not canonical."""
    out: list[str] = []
    i = 0
    after_run = False
    while i < len(data):
        c = data[i]
        if c == 0x26:  # '&'
            end = data.find(b"-", i + 1)
            if end < 0:
                raise MailboxNameError("unterminated modified base64 run")
            if end == i + 1:
                out.append("&")
                after_run = False
            else:
                if after_run:
                    # two adjacent runs have one shortest form: a single run
                    raise MailboxNameError("adjacent modified base64 runs")
                out.append(_b64_decode(data[i + 1 : end]))
                after_run = True
            i = end + 1
            continue
        if not 0x20 <= c <= 0x7E:
            raise MailboxNameError("mailbox name octet outside printable US-ASCII")
        out.append(chr(c))
        after_run = False
        i += 1
    return "".join(out)


def decode_mailbox(data: bytes, utf8: bool) -> str:
    """A mailbox name as the client sent it: UTF-8 when ``utf8`` (IMAP4rev2, UTF8=ACCEPT), else
    modified UTF-7. ``INBOX`` in any case is ``INBOX`` (RFC 9051 §5.1).

    A UTF-8 name is Net-Unicode (RFC 9051 §5.1, RFC 5198), so in Normalization Form C: a
    denormalized one is taken as its NFC form, in every command (CREATE then SELECT of the
    same denormalized name open one mailbox), as §5.1 lets a server do.  A modified UTF-7
    name is kept exactly as sent (appendix A.1)."""
    if utf8:
        try:
            name = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MailboxNameError("mailbox name is not valid UTF-8") from exc
        if any(ch < "\x20" or ch == "\x7f" for ch in name):
            raise MailboxNameError("control character in mailbox name")
        name = unicodedata.normalize("NFC", name)
    else:
        name = decode_mutf7(data)
    if name.upper() == "INBOX":
        return "INBOX"
    return name


def encode_mailbox(name: str, utf8: bool) -> bytes:
    """The wire form of a mailbox name for a session in UTF-8 mode or not."""
    return name.encode("utf-8") if utf8 else encode_mutf7(name)
