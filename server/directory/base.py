"""The directory seam: who exists, how they log in, and who receives mail for an address.

Every node asks the directory at request time; nothing about a principal except its ``id`` is
copied into the store (DESIGN.md, "Data model").  Backends (``sql.py``, ``ldap.py``) implement
:class:`Directory`; ``cache.py`` and ``metrics.py`` wrap any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

PrincipalType = Literal["individual", "group"]


@dataclass(frozen=True, slots=True)
class Principal:
    id: str                     # stable account id (used as our account key)
    name: str                   # login name
    type: PrincipalType
    emails: tuple[str, ...]     # first is the primary address; includes aliases
    quota: int = 0              # bytes, 0 = unlimited
    member_of: tuple[str, ...] = ()
    description: str = ""


@runtime_checkable
class Directory(Protocol):
    async def authenticate(self, login: str, secret: str) -> Principal | None:
        """The principal whose login and secret match; None for a bad login or password."""
        ...

    async def get_principal(self, name: str) -> Principal | None:
        ...

    async def resolve_recipient(self, address: str) -> list[Principal]:
        """Individual principals that receive mail for ``address``: the exact address, an
        alias, a plus-address (``user+tag@d`` -> ``user@d``), a catch-all ``@domain``; groups
        and lists are expanded to their members (recursively, cycle-safe, each member once).
        An empty list means there is no such recipient."""
        ...

    async def is_local_domain(self, domain: str) -> bool:
        ...

    async def list_domains(self) -> list[str]:
        ...

    async def close(self) -> None:
        ...


@runtime_checkable
class PasswordVersions(Protocol):
    """A directory that can say, cheaply and without checking a password, which password a
    login has now: a value that changes whenever the password does (a digest of the stored
    hash, a modification stamp).  The credential cache (:mod:`server.sasl.cache`) keys its
    entries by it, so a password change in the directory takes effect at once."""

    async def password_version(self, login: str) -> str | None:
        """None: no such login, or no version to give (nothing is then cached)."""
        ...


def password_versions(directory: object) -> PasswordVersions | None:
    """``directory`` if it gives password versions, else None.  Asked once per wrapper
    (at its making), not per login: ``isinstance`` with a runtime-checkable protocol
    compares attribute names, ~16 us each time."""
    return directory if isinstance(directory, PasswordVersions) else None


class DirectoryError(Exception):
    """The directory could not answer (server down, bad query, bad configuration): our fault,
    to be reported as a temporary failure (451 / NO [UNAVAILABLE]), never as "no such user"."""
