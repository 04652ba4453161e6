"""The Authentication-Results header field (RFC 8601): ours, built with ``authres``
and prepended; incoming ones that claim our authserv-id removed (section 5), so a
forged copy never reads as our verdict."""

from __future__ import annotations

import re
from collections.abc import Sequence

from authres import (
    DKIMAuthenticationResult,
    SPFAuthenticationResult,
)
from authres.arc import ARCAuthenticationResult
from authres.dmarc import DMARCAuthenticationResult

from server.mailauth.checks import Verdict

FIELD = b"authentication-results"
_COMMENT_UNSAFE = re.compile(r"[^\x20-\x27\x2a-\x5b\x5d-\x7e]")  # no ( ) \ or controls


def _comment(text: str) -> str | None:
    text = _COMMENT_UNSAFE.sub(" ", text).strip()[:200]
    return text or None


def results(verdict: Verdict) -> list[object]:
    out: list[object] = []
    s = verdict.spf
    out.append(SPFAuthenticationResult(
        result=s.result, result_comment=_comment(s.reason),
        smtp_mailfrom=s.mailfrom_domain or None, smtp_helo=s.helo or None))
    if not verdict.dkim:
        out.append(DKIMAuthenticationResult(result="none"))
    for d in verdict.dkim:
        out.append(DKIMAuthenticationResult(
            result=d.result, result_comment=_comment(d.reason), header_d=d.domain or None,
            header_s=d.selector or None, header_a=d.algorithm or None))
    m = verdict.dmarc
    out.append(DMARCAuthenticationResult(
        result=m.result, result_comment=_comment(m.reason),
        header_from=m.header_from or None, policy=m.policy or None))
    out.append(ARCAuthenticationResult(result=verdict.arc.result,
                                       result_comment=_comment(verdict.arc.reason)))
    return out


def header(authserv_id: str, verdict: Verdict) -> bytes:
    """``Authentication-Results: id; spf=...; dkim=...; dmarc=...; arc=...`` folded
    one method per line, ending in CRLF."""
    parts = [str(r) for r in results(verdict)]     # authres renders each method
    text = f"Authentication-Results: {authserv_id};\r\n\t" + ";\r\n\t".join(parts) + "\r\n"
    return text.encode("utf-8")


def _without_comments(text: bytes) -> bytes:
    """``text`` with its comments (RFC 5322 section 3.2.2: nested, with quoted-pairs)
    made spaces; an unclosed comment runs to the end."""
    out = bytearray()
    depth = 0
    escaped = False
    for byte in text:
        if depth:
            if escaped:
                escaped = False
            elif byte == 0x5C:              # backslash: quoted-pair
                escaped = True
            elif byte == 0x28:
                depth += 1
            elif byte == 0x29:
                depth -= 1
                if not depth:
                    out.append(0x20)
        elif byte == 0x28:
            depth = 1
        else:
            out.append(byte)
    return bytes(out)


def authserv_id_of(value: bytes) -> str:
    """The authserv-id of a field's value (RFC 8601 section 2.2): the first token,
    comments (CFWS) removed; "" if there is none."""
    text = _without_comments(value.replace(b"\r\n", b" "))
    token = text.split(b";", 1)[0].split()
    return token[0].decode("utf-8", "replace").lower() if token else ""


def strip_ours(message: bytes, authserv_ids: Sequence[str]) -> bytes:
    """``message`` without the Authentication-Results fields whose authserv-id is one
    of ours (section 5: they cannot be ours, a message arriving from outside).  Only
    the header section is touched; its other fields keep their bytes and order."""
    ours = {a.lower() for a in authserv_ids}
    end = message.find(b"\r\n\r\n")
    head, rest = (message, b"") if end < 0 else (message[:end + 2], message[end + 2:])
    if FIELD not in head.lower():
        return message
    lines = head.split(b"\r\n")
    out: list[bytes] = []
    field: list[bytes] = []

    def flush() -> None:
        if not field:
            return
        name, colon, value = field[0].partition(b":")
        drop = colon and name.strip().lower() == FIELD and \
            authserv_id_of(b"\r\n".join([value, *field[1:]])) in ours
        if not drop:
            out.extend(field)
        field.clear()

    for line in lines[:-1] if head.endswith(b"\r\n") else lines:
        if line[:1] in (b" ", b"\t") and field:
            field.append(line)
            continue
        flush()
        field.append(line)
    flush()
    kept = b"".join(line + b"\r\n" for line in out)
    if not head.endswith(b"\r\n"):
        kept = kept[:-2]
    return kept + rest
