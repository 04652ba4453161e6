"""Credentials against the directory: authzid rules, a directory that is down."""

from __future__ import annotations

from server.directory.base import DirectoryError, Principal
from server.sasl import (
    Authenticated,
    Authenticator,
    Credentials,
    Failed,
    FailReason,
    Unavailable,
)

ALICE = Principal("id-alice", "alice", "individual", ("alice@example.com", "al@example.com"))
BOB = Principal("id-bob", "bob", "individual", ("bob@example.com",))


class Directory:
    def __init__(self) -> None:
        self.error: Exception | None = None
        self.asked: list[str] = []

    async def authenticate(self, login: str, secret: str) -> Principal | None:
        self.asked.append(login)
        if self.error is not None:
            raise self.error
        by_login = {"alice": ALICE, "alice@example.com": ALICE, "bob": BOB}
        p = by_login.get(login)
        return p if p is not None and secret == "secret" else None

    async def get_principal(self, name: str) -> Principal | None:
        return None

    async def resolve_recipient(self, address: str) -> list[Principal]:
        return []

    async def is_local_domain(self, domain: str) -> bool:
        return False

    async def list_domains(self) -> list[str]:
        return []

    async def close(self) -> None:
        pass


async def test_good_and_bad_passwords() -> None:
    auth = Authenticator(Directory())
    assert await auth.verify(Credentials("alice", "secret")) == Authenticated(ALICE, "alice")
    assert await auth.verify(Credentials("alice", "wrong")) == \
        Failed(FailReason.CREDENTIALS, "alice")
    assert await auth.verify(Credentials("nobody", "secret")) == \
        Failed(FailReason.CREDENTIALS, "nobody")


async def test_authzid_must_be_the_same_principal() -> None:
    auth = Authenticator(Directory())
    for same in ("alice", "ALICE", "id-alice", "al@example.com", "Alice@Example.com"):
        assert isinstance(await auth.verify(Credentials("alice@example.com", "secret", same)),
                          Authenticated), same
    for other in ("bob", "bob@example.com", "id-bob", "root", "*"):
        assert await auth.verify(Credentials("alice", "secret", other)) == \
            Failed(FailReason.AUTHZID, "alice"), other


async def test_authzid_with_a_wrong_password_is_a_credentials_failure() -> None:
    auth = Authenticator(Directory())
    assert await auth.verify(Credentials("alice", "wrong", "bob")) == \
        Failed(FailReason.CREDENTIALS, "alice")


async def test_directory_down_is_temporary_never_bad_password() -> None:
    directory = Directory()
    auth = Authenticator(directory)
    directory.error = DirectoryError("ldap server unreachable")
    assert await auth.verify(Credentials("alice", "secret")) == Unavailable()
    directory.error = ConnectionRefusedError()
    assert await auth.verify(Credentials("alice", "wrong")) == Unavailable()
    assert directory.asked == ["alice", "alice"]
