"""The arguments of MAIL FROM and RCPT TO (RFC 5321 section 4.1.2, RFC 6531 section 3.3).

``Reverse-path [SP Mail-parameters]`` and ``Forward-path [SP Rcpt-parameters]``.  A few
deviations that real clients need and that cost nothing: spaces after the colon are skipped
(``MAIL FROM: <a@b>``) and a path without angle brackets is read as a bare mailbox.  A
source route (``<@relay:user@host>``, section 4.1.1.3) is accepted and dropped.  Non-ASCII
local parts and domains are parsed here; whether they are allowed (SMTPUTF8) is the caller's
decision, since it depends on the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Atext of RFC 5322 section 3.2.3, extended by UTF8-non-ascii (RFC 6531 section 3.3).
_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\ud7ff\ue000-\U0010ffff"
_DOT_STRING = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
# Quoted-string (RFC 5321 section 4.1.2): qtextSMTP or quoted-pairSMTP.
_QUOTED_STRING = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\ud7ff\ue000-\U0010ffff]'
                            r'|\\[\x20-\x7e])*"')
_U8 = r"\u0080-\ud7ff\ue000-\U0010ffff"     # UTF8-non-ascii (no surrogate escapes)
_LABEL = rf"[A-Za-z0-9{_U8}](?:[A-Za-z0-9_\-{_U8}]*[A-Za-z0-9{_U8}])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# address-literal (section 4.1.3): IPv4, "IPv6:..." or a General-address-literal.
_ADDRESS_LITERAL = re.compile(r"\[(?:[0-9.]+|[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+)\]")
_AT_DOMAIN = re.compile(rf"@(?:{_DOMAIN.pattern}|{_ADDRESS_LITERAL.pattern})")
# esmtp-keyword and esmtp-value (section 4.1.2; RFC 6531 section 3.3 adds UTF-8 to values).
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\ud7ff\ue000-\U0010ffff]+")
_UNQUOTE_OK = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")

MAX_LOCAL_PART = 64      # section 4.5.3.1.1
MAX_DOMAIN = 255         # section 4.5.3.1.2
MAX_PATH = 256           # section 4.5.3.1.3


class PathError(ValueError):
    """The argument is not valid; ``reply`` is the SMTP reply to send."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class PathArgument:
    """A parsed ``MAIL FROM:`` or ``RCPT TO:`` argument.

    ``address`` is ``local@domain`` with the local part unquoted when quoting was not
    needed; ``""`` for the null reverse-path ``<>``; ``"postmaster"`` for ``<Postmaster>``.
    ``params`` maps upper-cased keywords to their value (``None`` for a bare keyword).
    """

    address: str
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2] if "@" in self.address else ""

    @property
    def is_ascii(self) -> bool:
        return self.address.isascii()


def parse_mail(arg: str) -> PathArgument:
    """``"FROM:" Reverse-path [SP Mail-parameters]``: the text after ``MAIL``."""
    rest = _strip_keyword(arg, "FROM:", "501 5.5.2 Syntax: MAIL FROM:<address> [parameters]")
    if rest.startswith("<>"):
        return PathArgument("", esmtp_params(rest[2:]))
    address, rest = _path(rest, "501 5.1.7 Bad sender address syntax")
    return PathArgument(address, esmtp_params(rest))


def parse_rcpt(arg: str) -> PathArgument:
    """``"TO:" Forward-path [SP Rcpt-parameters]``: the text after ``RCPT``."""
    rest = _strip_keyword(arg, "TO:", "501 5.5.2 Syntax: RCPT TO:<address> [parameters]")
    if rest[:12].lower() == "<postmaster>":
        return PathArgument("postmaster", esmtp_params(rest[12:]))
    address, rest = _path(rest, "501 5.1.3 Bad recipient address syntax")
    return PathArgument(address, esmtp_params(rest))


def esmtp_params(text: str) -> dict[str, str | None]:
    """``Mail-parameters = esmtp-param *(SP esmtp-param)`` after the path (with its SP)."""
    if not text:
        return {}
    if not text.startswith(" "):
        raise PathError("501 5.5.2 Syntax error after the address")
    params: dict[str, str | None] = {}
    for item in text.split(" "):
        if not item:
            continue            # be lenient about repeated spaces
        keyword, eq, value = item.partition("=")
        if not _KEYWORD.fullmatch(keyword) or (eq and not _VALUE.fullmatch(value)):
            raise PathError("501 5.5.4 Bad parameter syntax")
        key = keyword.upper()
        if key in params:
            raise PathError(f"501 5.5.4 Parameter {key} given twice")
        params[key] = value if eq else None
    return params


def mailbox(text: str) -> str | None:
    """``Mailbox = Local-part "@" ( Domain / address-literal )`` normalised, or None."""
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return None
    if _DOT_STRING.fullmatch(local):
        pass
    elif _QUOTED_STRING.fullmatch(local):
        inner = re.sub(r"\\(.)", r"\1", local[1:-1])
        if _UNQUOTE_OK.fullmatch(inner):
            local = inner           # "john"@x is john@x
    else:
        return None
    if not (_DOMAIN.fullmatch(domain) or _ADDRESS_LITERAL.fullmatch(domain)):
        return None
    if len(local.encode("utf-8")) > MAX_LOCAL_PART or len(domain.encode("utf-8")) > MAX_DOMAIN:
        return None
    return f"{local}@{domain}"


def _strip_keyword(arg: str, keyword: str, reply: str) -> str:
    if arg[: len(keyword)].upper() != keyword:
        raise PathError(reply)
    return arg[len(keyword):].lstrip(" ")


def _path(text: str, reply: str) -> tuple[str, str]:
    """``Path = "<" [ A-d-l ":" ] Mailbox ">"`` (or a bare mailbox); (address, rest)."""
    if text.startswith("<"):
        end = _closing_bracket(text)
        if end < 0:
            raise PathError(reply)
        inner, rest = text[1:end], text[end + 1:]
        inner = _drop_source_route(inner)
    else:
        inner, _, rest = text.partition(" ")
        rest = " " + rest if rest else ""
    if len(inner.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise PathError(reply)
    address = mailbox(inner)
    if address is None:
        raise PathError(reply)
    return address, rest


def _closing_bracket(text: str) -> int:
    """Index of the ``>`` that closes the path, skipping quoted strings."""
    quoted = False
    i = 1
    while i < len(text):
        c = text[i]
        if quoted and c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == ">" and not quoted:
            return i
        i += 1
    return -1


def _drop_source_route(inner: str) -> str:
    """``A-d-l ":"`` (section 4.1.2; to be accepted and ignored, section 4.1.1.3)."""
    if not inner.startswith("@"):
        return inner
    route, colon, rest = inner.partition(":")
    if not colon or not all(_AT_DOMAIN.fullmatch(hop) for hop in route.split(",")):
        return "\0"     # not a mailbox, rejected by the caller
    return rest
