"""Password verification for every stored format, hashing of new passwords."""

from __future__ import annotations

import pytest
from passlib import hash as ph

from server.directory.passwords import hash_password, scheme_of, verify_password

from .hashes import all_hashes

SECRETS = ["correct horse", "pässwörd-ünïcode €"]
HASHES = {secret: all_hashes(secret) for secret in SECRETS}
CASES = [(fmt, secret) for secret in SECRETS for fmt in HASHES[secret]]


@pytest.mark.parametrize(("fmt", "secret"), CASES)
def test_each_format_verifies_the_right_secret_only(fmt: str, secret: str) -> None:
    stored = HASHES[secret][fmt]
    assert verify_password(stored, secret)
    assert not verify_password(stored, secret + "x")
    assert not verify_password(stored, secret.upper())
    assert not verify_password(stored, "")


def test_every_listed_format_is_covered() -> None:
    formats = set(HASHES[SECRETS[0]])
    for needed in ("bcrypt-2a", "bcrypt-2b", "bcrypt-2y", "sha512-crypt-rounds",
                   "sha256-crypt-rounds", "{SSHA}", "{SHA}", "{SSHA256}", "{SSHA512}",
                   "{CRYPT}sha512", "argon2id", "argon2i", "argon2d", "pbkdf2-sha256",
                   "{PBKDF2-SHA512}", "md5-crypt"):
        assert needed in formats


def test_rounds_are_read_from_the_hash() -> None:
    stored = HASHES[SECRETS[0]]["sha512-crypt-rounds"]
    assert stored.startswith("$6$rounds=12345$")
    assert verify_password(stored, SECRETS[0])


@pytest.mark.parametrize("stored", ["{PLAIN}hunter2", "{CLEARTEXT}hunter2", "hunter2"])
def test_plain_text_only_when_allowed(stored: str) -> None:
    assert not verify_password(stored, "hunter2")
    assert verify_password(stored, "hunter2", allow_plaintext=True)
    assert not verify_password(stored, "hunter3", allow_plaintext=True)


@pytest.mark.parametrize("stored", [
    "", "{SSHA}!!!not base64", "{SSHA}" + "QUJD", "{SHA}QUJD", "$6$", "$6$salt$short",
    "$2b$04$garbage", "$argon2id$broken", "{UNKNOWN}abc", "$9$abc$def", "{PBKDF2-MD4}1$a$b",
    "$2x$04$abcdefghijklmnopqrstuuBKrMn0ixjf0xEJwe4xz3Ayk8Dlt1tj2", "{",
])
def test_malformed_or_unknown_hashes_never_match_and_never_raise(stored: str) -> None:
    assert not verify_password(stored, "anything")
    assert not verify_password(stored, "anything", allow_plaintext=False)


def test_traditional_des_crypt_is_refused() -> None:
    stored = ph.des_crypt.hash("password")      # reads only 8 characters
    assert not verify_password(stored, "password")
    assert not verify_password(stored, "password-and-more")


def test_hash_password_round_trip() -> None:
    for scheme, prefix in (("bcrypt", "$2b$"), ("argon2", "$argon2id$")):
        stored = hash_password("s3cret é", scheme)
        assert stored.startswith(prefix)
        assert verify_password(stored, "s3cret é")
        assert not verify_password(stored, "s3cret e")
    assert hash_password("same") != hash_password("same")   # salted


def test_hash_password_refuses_what_bcrypt_would_truncate() -> None:
    with pytest.raises(ValueError):
        hash_password("x" * 73, "bcrypt")
    assert verify_password(hash_password("x" * 100, "argon2"), "x" * 100)
    with pytest.raises(ValueError):
        hash_password("x", "md5")


def test_scheme_of_names_the_format_without_the_secret() -> None:
    assert scheme_of("{SSHA}abcdef") == "SSHA"
    assert scheme_of("$6$rounds=5000$salt$hash") == "6"
    assert scheme_of("$argon2id$v=19$...") == "argon2id"
    assert scheme_of("hunter2") == "plain"


def test_new_bcrypt_hashes_are_cost_12_outside_the_tests(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Every test makes hashes at cost 4 (tests/conftest.py's cheap_bcrypt); the product's
    own cost stays 12, so a weaker default cannot slip in unseen."""
    monkeypatch.undo()              # the autouse cheap_bcrypt patch of this test
    from server.directory import passwords
    assert passwords.BCRYPT_ROUNDS == 12
    assert hash_password("correct horse").startswith("$2b$12$")
