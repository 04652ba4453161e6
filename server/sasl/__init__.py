"""SASL (RFC 4422) for every protocol of a node: SMTP AUTH now, IMAP AUTHENTICATE and
ManageSieve later.

* :mod:`.mechanism`: the sans-IO shape of an exchange (steps and outcomes);
* :mod:`.plain` (RFC 4616) and :mod:`.login` (draft-murchison-sasl-login): the
  mechanisms, pure state machines;
* :mod:`.authenticator`: credentials checked against the directory, authzid rules;
* :mod:`.registry`: what is offered, and only where it is usable;
* :mod:`.framing`: the base64 and ``*`` that SMTP and IMAP share.

A protocol drives it like this (its own framing and replies around it)::

    mechanism = registry.start(name, plaintext_allowed=tls or allow_clear)
    step = mechanism.start(initial)
    while isinstance(step, Challenge):
        step = mechanism.respond(await read_response(step.data))
    if isinstance(step, Credentials):
        step = await authenticator.verify(step)
    reply = TABLE[type(step)]
"""

from .authenticator import Authenticator, same_principal
from .cache import CredentialCache
from .framing import decode_base64, decode_initial, decode_response, encode_challenge
from .mechanism import (
    Aborted,
    Authenticated,
    Challenge,
    Credentials,
    Failed,
    FailReason,
    Malformed,
    Mechanism,
    Outcome,
    SequenceError,
    Step,
    Unavailable,
)
from .registry import LOGIN, PLAIN, MechanismSpec, Registry

__all__ = [
    "LOGIN",
    "PLAIN",
    "Aborted",
    "Authenticated",
    "Authenticator",
    "Challenge",
    "CredentialCache",
    "Credentials",
    "FailReason",
    "Failed",
    "Malformed",
    "Mechanism",
    "MechanismSpec",
    "Outcome",
    "Registry",
    "SequenceError",
    "Step",
    "Unavailable",
    "decode_base64",
    "decode_initial",
    "decode_response",
    "encode_challenge",
    "same_principal",
]
