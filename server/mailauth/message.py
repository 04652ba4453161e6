"""What the checks and the signer read of a message: its header fields, the
RFC5322.From domains (RFC 7489 section 3.1.1), without parsing the body."""

from __future__ import annotations

from email.utils import getaddresses

from dkim import MessageFormatError, rfc822_parse


class NoAuthorDomain(ValueError):
    """No single usable From: domain (RFC 7489 section 6.6.1)."""


def header_fields(message: bytes) -> list[tuple[bytes, bytes]]:
    """(name, raw value with its folding) of every field, in order; none for a
    header section dkimpy cannot read (then nothing in it can be authenticated).  Only
    the header section is given to dkimpy, which splits all it gets into lines: a
    message's body is most of its size (a third of the cost of queueing a 10 KB
    submission went to splitting bodies)."""
    try:
        headers, _ = rfc822_parse(_header_section(message))
    except (MessageFormatError, IndexError):  # dkimpy 1.1: IndexError on a leading " "
        return []
    return [(bytes(n), bytes(v)) for n, v in headers]


def _header_section(message: bytes) -> bytes:
    """``message`` up to and with the line end before its first empty line (dkimpy's
    end of the header section: a line empty once split on CRLF or LF); all of it when it
    has no empty line."""
    if message.startswith((b"\r\n", b"\n")):
        return b""
    ends = [i for i in (message.find(b"\n\r\n"), message.find(b"\n\n")) if i >= 0]
    return message[:min(ends) + 1] if ends else message


def from_domains(message: bytes) -> list[str]:
    """The domains of every address of every From: field, lower-case, in order."""
    out = []
    for name, value in header_fields(message):
        if name.strip().lower() != b"from":
            continue
        text = value.replace(b"\r\n", b"").decode("utf-8", "replace").strip()
        for _, address in getaddresses([text]):
            local, at, domain = address.rpartition("@")
            if not at or not local or not domain:
                raise NoAuthorDomain(f"From: address without a domain: {address!r}")
            out.append(domain.rstrip(".").lower())
    return out


def author_domain(message: bytes) -> str:
    """The one From: domain DMARC and signing use; :class:`NoAuthorDomain` when
    there are none or several different ones."""
    domains = set(from_domains(message))
    if len(domains) != 1:
        raise NoAuthorDomain("no From: domain" if not domains else "several From: domains")
    return domains.pop()
