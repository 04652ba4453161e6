"""The shape of a SASL exchange (RFC 4422 section 3), without I/O.

A mechanism is a state machine: :meth:`Mechanism.start` takes the client's initial
response (None when the client sent none), :meth:`Mechanism.respond` each later response,
and both return the next :data:`Step`:

* :class:`Challenge`: send this to the client and call ``respond`` with its answer;
* :class:`Credentials`: a request to the I/O side (like a parser's "need more"): check this
  login and password against the directory (:class:`server.sasl.Authenticator`), which
  turns it into an outcome;
* an :data:`Outcome`: the exchange is over.

The protocol owns the framing (SMTP's ``334`` lines, IMAP's ``+`` continuations, the
base64 of both: :mod:`server.sasl.framing`) and the wording of every reply: it maps each
outcome to its own reply in one table.  Nothing here knows a protocol.

Room for more: SCRAM-SHA-256 (RFC 7677) needs the account's stored keys rather than a
password check, so it will add one request beside :class:`Credentials` (the salted keys
of an authcid); OAUTHBEARER (RFC 7628) one that asks for a token to be validated.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from server.directory.base import Principal


@dataclass(frozen=True, slots=True)
class Challenge:
    """Server data for the client (the protocol base64-encodes it)."""

    data: bytes


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """A login and password to check; ``authzid`` is the identity asked for ("" for the
    login's own).  The secret never appears in a repr, a log line or an exception."""

    authcid: str
    secret: str
    authzid: str = ""

    def __repr__(self) -> str:
        return f"Credentials(authcid={self.authcid!r}, authzid={self.authzid!r})"


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The client is ``principal`` (also the authorization identity)."""

    principal: Principal
    authcid: str


class FailReason(enum.Enum):
    CREDENTIALS = "credentials"  # unknown login or wrong password
    AUTHZID = "authzid"  # right password, but it may not act as the identity asked for


@dataclass(frozen=True, slots=True)
class Failed:
    """Refused: the policy's answer (SMTP 535, IMAP NO [AUTHENTICATIONFAILED])."""

    reason: FailReason
    authcid: str


@dataclass(frozen=True, slots=True)
class Malformed:
    """The client's syntax (SMTP 501, IMAP BAD); ``detail`` is safe to show."""

    detail: str


@dataclass(frozen=True, slots=True)
class Aborted:
    """The client cancelled with ``*`` (RFC 4954 section 4, RFC 9051 section 6.2.2)."""


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The directory could not answer: a temporary failure (SMTP 454, IMAP NO
    [UNAVAILABLE]), never "bad password"."""


Outcome = Authenticated | Failed | Malformed | Aborted | Unavailable
Step = Challenge | Credentials | Outcome


class Mechanism(Protocol):
    """One exchange of one mechanism (a fresh object per AUTH command)."""

    name: str

    def start(self, initial: bytes | None) -> Step:
        """The first step; ``initial`` is the initial response (b"" for an empty one)."""
        ...

    def respond(self, response: bytes) -> Step:
        """The next step after the client answered a :class:`Challenge`."""
        ...


class SequenceError(RuntimeError):
    """A mechanism was driven out of order (the caller's bug, not the client's)."""


def decode_utf8(data: bytes, what: str) -> str | Malformed:
    """RFC 4616 section 2 (and LOGIN in practice): identities and passwords are UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return Malformed(f"{what} is not UTF-8")


__all__ = [
    "Aborted",
    "Authenticated",
    "Challenge",
    "Credentials",
    "FailReason",
    "Failed",
    "Malformed",
    "Mechanism",
    "Outcome",
    "SequenceError",
    "Step",
    "Unavailable",
    "decode_utf8",
]
