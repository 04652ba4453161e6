"""PLAIN (RFC 4616): ``[authzid] UTF8NUL authcid UTF8NUL passwd`` in one message.

Section 2: the message may come as the initial response or after an empty challenge; the
authcid and the password must not be empty, no field contains NUL, and all three are
UTF-8.  Whether the authzid is acceptable is decided after the password is checked
(:class:`server.sasl.Authenticator`): it must name the same principal.
"""

from __future__ import annotations

from .mechanism import Challenge, Credentials, Malformed, SequenceError, Step, decode_utf8

# RFC 4616 section 2: each of authzid, authcid and passwd is 1*SAFE of up to 255 octets.
MAX_FIELD = 255


def parse_message(message: bytes) -> Credentials | Malformed:
    """``message`` (RFC 4616 section 2) as credentials, or why it is malformed."""
    parts = message.split(b"\0")
    if len(parts) != 3:
        return Malformed("PLAIN response must have three NUL-separated fields")
    authzid, authcid, passwd = parts
    if not authcid or not passwd:
        return Malformed("PLAIN response needs a login and a password")
    if any(len(p) > MAX_FIELD for p in parts):
        return Malformed(f"PLAIN response field longer than {MAX_FIELD} octets")
    fields = [decode_utf8(p, "PLAIN response") for p in parts]
    for f in fields:
        if isinstance(f, Malformed):
            return f
    zid, cid, pwd = (str(f) for f in fields)
    return Credentials(cid, pwd, zid)


class Plain:
    name = "PLAIN"

    def __init__(self) -> None:
        self._waiting = False

    def start(self, initial: bytes | None) -> Step:
        if initial is None:
            self._waiting = True
            return Challenge(b"")
        return parse_message(initial)

    def respond(self, response: bytes) -> Step:
        if not self._waiting:
            raise SequenceError("PLAIN expects no response now")
        self._waiting = False
        return parse_message(response)
