"""The credential cache (issue 12): a second login with the same password does not hash it
again; a password changed in the SQL directory takes effect at once; only successes are
cached; entries expire and the cache is bounded; the secret is never a key."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.config import load_config
from server.directory import open_directory
from server.directory.base import Principal
from server.directory.settings import DirectorySettings
from server.directory.sql import SqlDirectory
from server.sasl import Authenticated, Authenticator, CredentialCache, Credentials, Failed
from tests.server.imap.test_quota import add_account


class CountingDirectory(SqlDirectory):
    """The real SQL directory, counting the password checks it makes."""

    hashes = 0

    async def authenticate(self, login: str, secret: str) -> Principal | None:
        self.hashes += 1
        return await super().authenticate(login, secret)


def _setup(tmp_path: Path) -> tuple[CountingDirectory, Path]:
    config_path = tmp_path / "fdbmail.toml"
    config_path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n')
    add_account(tmp_path, "alice")
    config = load_config(config_path, env={})
    return CountingDirectory(config.get(DirectorySettings), config.data_dir), config_path


def _passwd(config_path: Path, name: str, password: str) -> None:
    import io
    import sys

    from server.cli import main as cli
    old = sys.stdin
    sys.stdin = io.StringIO(password + "\n")
    try:
        assert cli(["-c", str(config_path), "directory", "passwd", name,
                    "--password-stdin"]) == 0
    finally:
        sys.stdin = old


async def test_second_login_is_not_hashed_and_a_password_change_is_seen_at_once(
        tmp_path: Path) -> None:
    directory, config_path = _setup(tmp_path)
    auth = Authenticator(directory, CredentialCache())
    try:
        good = Credentials("alice", "correct horse")
        assert isinstance(await auth.verify(good), Authenticated)
        assert directory.hashes == 1
        for _ in range(3):
            assert isinstance(await auth.verify(good), Authenticated)
        assert directory.hashes == 1                  # served from the cache
        # failures are never cached: each wrong password is checked
        for _ in range(2):
            assert isinstance(await auth.verify(Credentials("alice", "wrong")), Failed)
        assert directory.hashes == 3
        _passwd(config_path, "alice", "new battery")
        assert isinstance(await auth.verify(good), Failed)      # at once, within the TTL
        assert isinstance(await auth.verify(Credentials("alice", "new battery")),
                          Authenticated)
    finally:
        await directory.close()


async def test_logins_that_arrive_together_share_one_password_check(tmp_path: Path) -> None:
    """A client opening 20 connections at once with the same password (the queue bench's
    submission load) costs one hash, not 20; a wrong password at the same time is checked
    on its own and fails, and a waiter that goes away leaves the others their answer."""
    directory, _ = _setup(tmp_path)
    auth = Authenticator(directory, CredentialCache())
    try:
        good = Credentials("alice", "correct horse")
        quitter = asyncio.ensure_future(auth.verify(good))
        await asyncio.sleep(0)          # under way: it started the check
        quitter.cancel()
        outcomes = await asyncio.gather(*(auth.verify(good) for _ in range(20)),
                                        auth.verify(Credentials("alice", "wrong")))
        assert all(isinstance(o, Authenticated) for o in outcomes[:20])
        assert isinstance(outcomes[20], Failed)
        assert directory.hashes == 2
        assert isinstance(await auth.verify(good), Authenticated)   # then from the cache
        assert directory.hashes == 2
    finally:
        await directory.close()


async def test_the_wrapped_node_directory_forwards_password_versions(tmp_path: Path) -> None:
    _, config_path = _setup(tmp_path)
    directory = await open_directory(load_config(config_path, env={}))
    auth = Authenticator(directory, CredentialCache())
    try:
        assert isinstance(await auth.verify(Credentials("alice", "correct horse")),
                          Authenticated)
        assert auth.cache is not None and len(auth.cache) == 1
    finally:
        await directory.close()


async def test_a_password_version_by_name_or_address_is_one_and_changes_with_the_password(
        tmp_path: Path) -> None:
    """The version is read by the 'name' query alone (no emails, no memberships): a login
    by name and by the account's address give the same one, a changed password another,
    an unknown login none."""
    directory, config_path = _setup(tmp_path)
    try:
        version = await directory.password_version("alice")
        assert version is not None
        assert await directory.password_version("alice@example.test") == version
        assert await directory.password_version("nobody") is None
        assert await directory.password_version("nobody@example.test") is None
        _passwd(config_path, "alice", "new battery")
        changed = await directory.password_version("alice@example.test")
        assert changed is not None and changed != version
        assert await directory.password_version("alice") == changed
    finally:
        await directory.close()


def test_entries_expire_are_bounded_and_keyed_without_the_secret() -> None:
    now = [0.0]
    cache = CredentialCache(ttl=10, size=2, clock=lambda: now[0])
    p = Principal("id", "alice", "individual", ())
    k1 = cache.key("alice", "pw", "v1")
    # the secret is not in the key (a longer one than "pw": two random bytes of a 32-byte
    # digest spell "pw" once in ~2,000 runs)
    secret = "a secret of some length"
    assert secret.encode() not in cache.key("alice", secret, "v1") and len(k1) == 32
    assert k1 != cache.key("alice", "pw", "v2") != cache.key("alice", "pw2", "v1")
    assert k1 != CredentialCache().key("alice", "pw", "v1")     # a key per process
    cache.put(k1, p)
    assert cache.get(k1) == p
    now[0] = 10.0
    assert cache.get(k1) is None                                 # expired
    for i in range(5):
        cache.put(cache.key("u", str(i), "v"), p)
    assert len(cache) == 2

