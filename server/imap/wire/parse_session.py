"""Commands of any state and of connection set-up (RFC 9051 §6.1, §6.2, §6.3.1; RFC 5161 ENABLE,
RFC 2971 ID, RFC 4978 COMPRESS, RFC 8437 UNAUTHENTICATE, RFC 2177 IDLE, RFC 2342 NAMESPACE)."""

from __future__ import annotations

import re
from collections.abc import Callable

from server.imap.wire.commands import (
    Authenticate, Capability, Command, Compress, Enable, Id, Idle, Login, Logout, Namespace,
    Noop, StartTLS, Unauthenticate,
)
from server.imap.wire.lexer import Cursor

__all__ = ["PARSERS"]

_BASE64 = re.compile(rb"=|(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_ID_FIELD_MAX = 30  # RFC 2971 §3.3: at most 30 field-value pairs
_ID_TEXT_MAX = 1024  # ... fields at most 30 octets, values at most 1024


def authenticate(cur: Cursor, tag: str) -> Command:
    """authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp] (RFC 9051 §9, RFC 4959)."""
    cur.sp()
    mechanism = cur.atom("a SASL mechanism").upper()
    initial = None
    if cur.take(b" "):
        m = _BASE64.match(cur.buf, cur.pos)
        if m is None or not m.group():
            raise cur.fail("initial response must be base64 or =")
        cur.pos = m.end()
        initial = m.group().decode("ascii")
    return Authenticate(tag, mechanism, initial)


def login(cur: Cursor, tag: str) -> Command:
    """login = "LOGIN" SP userid SP password."""
    cur.sp()
    user = cur.text_astring()
    cur.sp()
    return Login(tag, user, cur.text_astring())


def enable(cur: Cursor, tag: str) -> Command:
    """enable = "ENABLE" 1*(SP capability) (RFC 5161 §4)."""
    caps = []
    while cur.take(b" "):
        caps.append(cur.atom("a capability").upper())
    if not caps:
        raise cur.fail("ENABLE needs at least one capability")
    return Enable(tag, tuple(caps))


def id_params(cur: Cursor, tag: str) -> Command:
    """id = "ID" SP id-params-list; id-params-list = "(" *(string SP nstring) ")" / nil."""
    cur.sp()
    if cur.nil():
        return Id(tag, None)
    params: list[tuple[str, str | None]] = []
    if not cur.paren_list():
        while True:
            field = cur.string()
            cur.sp()
            value = cur.nstring()
            if len(field) > _ID_TEXT_MAX or (value is not None and len(value) > _ID_TEXT_MAX):
                raise cur.fail("ID field or value too long")
            params.append(
                (
                    field.decode("utf-8", "surrogateescape"),
                    None if value is None else value.decode("utf-8", "surrogateescape"),
                )
            )
            if cur.take(b")"):
                break
            cur.sp()
    if len(params) > _ID_FIELD_MAX:
        raise cur.fail("too many ID fields")
    return Id(tag, tuple(params))


def compress(cur: Cursor, tag: str) -> Command:
    """compress = "COMPRESS" SP algorithm (RFC 4978 §4)."""
    cur.sp()
    return Compress(tag, cur.atom("a compression algorithm").upper())


PARSERS: dict[str, Callable[[Cursor, str], Command]] = {
    "CAPABILITY": lambda cur, tag: Capability(tag),
    "NOOP": lambda cur, tag: Noop(tag),
    "LOGOUT": lambda cur, tag: Logout(tag),
    "STARTTLS": lambda cur, tag: StartTLS(tag),
    "AUTHENTICATE": authenticate,
    "LOGIN": login,
    "ENABLE": enable,
    "ID": id_params,
    "COMPRESS": compress,
    "UNAUTHENTICATE": lambda cur, tag: Unauthenticate(tag),
    "IDLE": lambda cur, tag: Idle(tag),
    "NAMESPACE": lambda cur, tag: Namespace(tag),
}
