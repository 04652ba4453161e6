"""Password hashes: verify every format directories hold, hash new secrets with bcrypt/argon2.

Formats (the scheme is read from the stored value, never guessed from the secret):

- crypt(3) strings: bcrypt ``$2a$ $2b$ $2y$``, SHA-512-crypt ``$6$`` and SHA-256-crypt ``$5$``
  (with ``rounds=``), argon2 ``$argon2id$ $argon2i$ $argon2d$`` (RFC 9106), PBKDF2 in the
  passlib form ``$pbkdf2$ $pbkdf2-sha256$ $pbkdf2-sha512$`` (RFC 8018), and MD5-crypt ``$1$``
  (verification only).  Traditional DES crypt is refused: it reads 8 characters;
- RFC 2307 / OpenLDAP prefixes: ``{SSHA} {SHA} {SSHA256} {SHA256} {SSHA512} {SHA512} {SMD5}
  {MD5}``, ``{CRYPT}`` followed by any crypt(3) string, ``{PBKDF2-SHA512}`` (and -SHA256, -SHA1)
  in the passlib/slapd form, slapd's ``{ARGON2}``, and Dovecot's ``{BLF-CRYPT}
  {SHA512-CRYPT} {SHA256-CRYPT} {MD5-CRYPT} {ARGON2ID} {ARGON2I}`` prefixes;
- ``{PLAIN}``/``{CLEARTEXT}`` or a value without a scheme: plain text, accepted only when
  ``allow_plaintext`` is set.

Every comparison is constant-time (``hmac.compare_digest`` or the library's own).  Secrets and
hashes are never logged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import logging
from collections.abc import Callable

import argon2
import bcrypt
from passlib import hash as passlib_hash

log = logging.getLogger(__name__)

DEFAULT_SCHEME = "bcrypt"
HASH_SCHEMES = ("bcrypt", "argon2")

_BCRYPT_MAX = 72       # bcrypt uses the first 72 bytes of the secret
BCRYPT_ROUNDS = 12     # cost of new bcrypt hashes (log2 of the iterations)
_argon2 = argon2.PasswordHasher()

# {SCHEME} -> (hash function, digest size in bytes, salted)
_LDAP_DIGESTS: dict[str, tuple[Callable[[bytes], hashlib._Hash], int, bool]] = {
    "SHA": (hashlib.sha1, 20, False),
    "SSHA": (hashlib.sha1, 20, True),
    "SHA256": (hashlib.sha256, 32, False),
    "SSHA256": (hashlib.sha256, 32, True),
    "SHA384": (hashlib.sha384, 48, False),
    "SSHA384": (hashlib.sha384, 48, True),
    "SHA512": (hashlib.sha512, 64, False),
    "SSHA512": (hashlib.sha512, 64, True),
    "MD5": (hashlib.md5, 16, False),
    "SMD5": (hashlib.md5, 16, True),
}
_CRYPT_PREFIXES = ("CRYPT", "BLF-CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT",
                   "ARGON2", "ARGON2ID", "ARGON2I", "ARGON2D")
_PLAIN_PREFIXES = ("PLAIN", "CLEARTEXT", "CLEAR")


def hash_password(secret: str, scheme: str = DEFAULT_SCHEME) -> str:
    """A new hash of ``secret`` (bcrypt or argon2id) for storing in a directory."""
    if scheme == "bcrypt":
        raw = secret.encode("utf-8")
        if len(raw) > _BCRYPT_MAX:
            raise ValueError("bcrypt uses at most 72 bytes of a password; use argon2")
        return bcrypt.hashpw(raw, bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")
    if scheme == "argon2":
        return _argon2.hash(secret)
    raise ValueError(f"unknown password scheme {scheme!r} (use one of {', '.join(HASH_SCHEMES)})")


def verify_password(stored: str, secret: str, *, allow_plaintext: bool = False) -> bool:
    """Whether ``secret`` matches the stored value; False for an unknown or broken format."""
    if not stored:
        return False
    try:
        return _verify(stored, secret, allow_plaintext)
    except (ValueError, TypeError, binascii.Error, argon2.exceptions.InvalidHashError):
        log.warning("stored password hash is malformed (scheme %s)", scheme_of(stored))
        return False


def scheme_of(stored: str) -> str:
    """A short, secret-free name of the stored format, for logs and metrics."""
    if stored.startswith("{"):
        return stored[1:stored.find("}")].upper() if "}" in stored else "unknown"
    if stored.startswith("$"):
        return stored.split("$")[1] or "unknown"
    return "plain"


def _verify(stored: str, secret: str, allow_plaintext: bool) -> bool:
    if stored.startswith("{") and "}" in stored:
        end = stored.index("}")
        prefix, rest = stored[1:end].upper(), stored[end + 1:]
        if prefix in _LDAP_DIGESTS:
            return _verify_ldap_digest(prefix, rest, secret)
        if prefix in _CRYPT_PREFIXES:
            return _verify_crypt(rest, secret)
        if prefix.startswith("PBKDF2"):
            return _verify_ldap_pbkdf2(stored, secret)
        if prefix in _PLAIN_PREFIXES:
            return allow_plaintext and _equal(rest.encode(), secret.encode())
        log.warning("unknown password scheme (scheme %s)", prefix)
        return False
    if stored.startswith("$"):
        return _verify_crypt(stored, secret)
    return allow_plaintext and _equal(stored.encode(), secret.encode())


def _verify_crypt(stored: str, secret: str) -> bool:
    """A crypt(3)-style ``$id$...`` string.  Traditional DES crypt (8 significant
    characters) is not accepted."""
    if stored.startswith(("$2a$", "$2b$", "$2y$", "$2x$")):
        if stored.startswith("$2x$"):
            return False   # the buggy pre-2011 variant: refuse rather than guess
        raw = secret.encode("utf-8")[:_BCRYPT_MAX]
        return bcrypt.checkpw(raw, stored.encode("ascii"))
    if stored.startswith("$argon2"):
        try:
            return _argon2.verify(stored, secret)
        except argon2.exceptions.VerifyMismatchError:
            return False
        except argon2.exceptions.VerificationError:
            return False
    handler = _CRYPT_HANDLERS.get(stored.split("$")[1] if stored.startswith("$") else "")
    if handler is not None:
        return bool(handler.verify(secret, stored))
    log.warning("unknown crypt scheme (scheme %s)", scheme_of(stored))
    return False


_CRYPT_HANDLERS = {
    "6": passlib_hash.sha512_crypt,
    "5": passlib_hash.sha256_crypt,
    "1": passlib_hash.md5_crypt,
    "pbkdf2": passlib_hash.pbkdf2_sha1,
    "pbkdf2-sha256": passlib_hash.pbkdf2_sha256,
    "pbkdf2-sha512": passlib_hash.pbkdf2_sha512,
}


def _verify_ldap_digest(prefix: str, encoded: str, secret: str) -> bool:
    """RFC 2307-style ``{SSHA}base64(digest || salt)`` and the unsalted ``{SHA}`` forms."""
    func, size, salted = _LDAP_DIGESTS[prefix]
    raw = base64.b64decode(encoded.strip(), validate=True)
    if salted:
        if len(raw) <= size:
            raise ValueError("salted digest without salt")
        digest, salt = raw[:size], raw[size:]
    else:
        if len(raw) != size:
            raise ValueError("digest of the wrong size")
        digest, salt = raw, b""
    return _equal(func(secret.encode("utf-8") + salt).digest(), digest)


def _verify_ldap_pbkdf2(stored: str, secret: str) -> bool:
    """``{PBKDF2}``/``{PBKDF2-SHA256}``/``{PBKDF2-SHA512}`` as passlib and slapd's pw-pbkdf2
    module write them (``rounds$salt$checksum`` in adapted base64)."""
    prefix = stored[1:stored.index("}")].upper()
    handler = {
        "PBKDF2": passlib_hash.ldap_pbkdf2_sha1,
        "PBKDF2-SHA1": passlib_hash.ldap_pbkdf2_sha1,
        "PBKDF2-SHA256": passlib_hash.ldap_pbkdf2_sha256,
        "PBKDF2-SHA512": passlib_hash.ldap_pbkdf2_sha512,
    }.get(prefix)
    if handler is None:
        log.warning("unknown password scheme (scheme %s)", prefix)
        return False
    if prefix == "PBKDF2-SHA1":
        stored = "{PBKDF2}" + stored[stored.index("}") + 1:]
    return bool(handler.verify(secret, stored))


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def dummy_verify(scheme: str = DEFAULT_SCHEME) -> None:
    """Spend about the time of a real check of a hash of ``scheme`` (the one the site
    stores), so an unknown login, an account without a password or a group is not told
    apart from a wrong password by its latency."""
    if scheme == "argon2":
        with contextlib.suppress(argon2.exceptions.VerifyMismatchError):
            _argon2.verify(_dummy_argon2(), "x")
        return
    bcrypt.checkpw(b"x", _dummy_hash(BCRYPT_ROUNDS))


@functools.cache
def _dummy_argon2() -> str:
    return _argon2.hash("fdbmail-dummy")


@functools.cache
def _dummy_hash(rounds: int) -> bytes:
    return bcrypt.hashpw(b"fdbmail-dummy", bcrypt.gensalt(rounds))
