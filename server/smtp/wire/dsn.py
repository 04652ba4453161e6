"""The DSN parameters (RFC 3461 section 4), checked without I/O: RET and ENVID on
MAIL, NOTIFY and ORCPT on RCPT.  ENVID and ORCPT's address are xtext (section 4):
they are kept decoded, and encoded again when passed to the next hop."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ENVID = 100     # RFC 3461 section 4.4
MAX_ORCPT = 500     # RFC 3461 section 4.2: the parameter's value
NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})

_XTEXT = re.compile(rb"(?:[!-*,-<>-~]|\+[0-9A-F]{2})*")
_ADDR_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")   # an atom, in practice


class DsnParamError(ValueError):
    """A malformed DSN parameter; ``reply`` is the 501 to send."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class MailDsn:
    ret: str = ""           # "FULL", "HDRS" or "" (not given)
    envid: str = ""         # decoded; "" when not given


@dataclass(frozen=True, slots=True)
class RcptDsn:
    notify: tuple[str, ...] = ()    # () not given; ("NEVER",) or some of NOTIFY_VALUES
    orcpt: str = ""                 # "addr-type;address", decoded; "" when not given


def xtext_decode(value: str) -> str:
    """RFC 3461 section 4: "+" and two upper-case hex digits for an octet."""
    raw = value.encode("ascii", "replace")
    if not value.isascii() or _XTEXT.fullmatch(raw) is None:
        raise ValueError(value)
    out = re.sub(rb"\+([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    return out.decode("utf-8", "surrogateescape")




def mail_dsn(params: dict[str, str | None]) -> MailDsn:
    """RET and ENVID of a MAIL command's parameters (others are not looked at)."""
    ret = params.get("RET", "")
    if ret is None or ret.upper() not in ("", "FULL", "HDRS") or \
            ("RET" in params and not ret):
        raise DsnParamError("501 5.5.4 RET must be FULL or HDRS")
    envid = ""
    if "ENVID" in params:
        value = params["ENVID"]
        if not value or len(value) > MAX_ENVID:
            raise DsnParamError(f"501 5.5.4 ENVID must be 1 to {MAX_ENVID} characters")
        try:
            envid = xtext_decode(value)
        except ValueError:
            raise DsnParamError("501 5.5.4 ENVID must be xtext") from None
    return MailDsn((ret or "").upper(), envid)


def rcpt_dsn(params: dict[str, str | None]) -> RcptDsn:
    """NOTIFY and ORCPT of a RCPT command's parameters (others are not looked at)."""
    notify: tuple[str, ...] = ()
    if "NOTIFY" in params:
        value = (params["NOTIFY"] or "").upper()
        items = tuple(value.split(","))
        if items != ("NEVER",) and (not set(items) <= NOTIFY_VALUES
                                     or len(set(items)) != len(items)):
            raise DsnParamError("501 5.5.4 NOTIFY must be NEVER or a list of SUCCESS, "
                                "FAILURE, DELAY")
        notify = items
    orcpt = ""
    if "ORCPT" in params:
        value = params["ORCPT"] or ""
        kind, semi, address = value.partition(";")
        if not semi or not address or len(value) > MAX_ORCPT or \
                _ADDR_TYPE.fullmatch(kind) is None:
            raise DsnParamError("501 5.5.4 ORCPT must be addr-type;xtext")
        try:
            orcpt = f"{kind};{xtext_decode(address)}"
        except ValueError:
            raise DsnParamError("501 5.5.4 ORCPT must be addr-type;xtext") from None
    return RcptDsn(notify, orcpt)
