"""Which mechanisms a node offers, and which of them a connection may use now.

A mechanism that carries the password in clear (PLAIN, LOGIN) is offered only where
plaintext authentication is allowed: over TLS, or where the site says so.  SCRAM-SHA-256
(RFC 7677) would register with ``plaintext=False``, and only when the directory can give
its stored keys; OAUTHBEARER (RFC 7628) likewise once a token validator exists.  So what
is advertised is exactly what works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .login import Login
from .mechanism import Mechanism
from .plain import Plain


@dataclass(frozen=True, slots=True)
class MechanismSpec:
    name: str                           # as advertised, upper case
    factory: Callable[[], Mechanism]    # a fresh state machine per exchange
    plaintext: bool                     # the secret crosses the wire as it is


PLAIN = MechanismSpec("PLAIN", Plain, plaintext=True)
LOGIN = MechanismSpec("LOGIN", Login, plaintext=True)


class Registry:
    """The node's mechanisms, in the order they are advertised."""

    def __init__(self, specs: Iterable[MechanismSpec] = (LOGIN, PLAIN)) -> None:
        self._specs: dict[str, MechanismSpec] = {}
        for spec in specs:
            if spec.name != spec.name.upper() or spec.name in self._specs:
                raise ValueError(f"mechanism name {spec.name!r} must be upper case and unique")
            self._specs[spec.name] = spec

    @property
    def names(self) -> tuple[str, ...]:
        """Every registered mechanism."""
        return tuple(self._specs)

    def usable(self, *, plaintext_allowed: bool) -> tuple[str, ...]:
        """What to advertise on a connection (SMTP ``AUTH``, IMAP ``AUTH=``)."""
        return tuple(n for n, s in self._specs.items() if plaintext_allowed or not s.plaintext)

    def start(self, name: str, *, plaintext_allowed: bool) -> Mechanism | None:
        """A fresh exchange of ``name`` (any case), or None if it is not usable here."""
        spec = self._specs.get(name.upper())
        if spec is None or (spec.plaintext and not plaintext_allowed):
            return None
        return spec.factory()


__all__ = ["LOGIN", "PLAIN", "MechanismSpec", "Registry"]
